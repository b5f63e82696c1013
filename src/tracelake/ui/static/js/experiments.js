// Experiments page: create, rename in place, filter by name.
import { post } from "./api.js";
import { h, toast } from "./dom.js";

const table = document.getElementById("experiments");
const createForm = document.getElementById("create-form");
const createError = document.getElementById("create-error");

createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = createForm.elements.name.value.trim();
  if (!name) return;
  createError.hidden = true;
  try {
    await post("/api/2.0/mlflow/experiments/create", { name });
    toast(`Created experiment “${name}”`);
    location.reload();
  } catch (err) {
    createError.textContent = err.message;
    createError.hidden = false;
  }
});

document.getElementById("exp-filter").addEventListener("input", (event) => {
  const q = event.target.value.trim().toLowerCase();
  for (const row of table.tBodies[0].rows) {
    if (!row.dataset.name) continue;
    row.hidden = q !== "" && !row.dataset.name.toLowerCase().includes(q);
  }
});

table.addEventListener("click", (event) => {
  const button = event.target.closest("button.rename");
  if (button) startRename(button.closest("tr"));
});

function startRename(row) {
  const cell = row.querySelector(".name-cell");
  if (cell.querySelector("form")) return;
  const saved = Array.from(cell.childNodes);
  const input = h("input", { class: "input small", value: row.dataset.name, "aria-label": "New name", maxlength: 500, required: true });
  const error = h("span", { class: "form-error inline", role: "alert" });
  const cancel = () => { cell.replaceChildren(...saved); };
  const form = h("form", { class: "inline-form rename-form" }, input,
    h("button", { class: "btn small primary", type: "submit" }, "Save"),
    h("button", { class: "btn small ghost", type: "button", onclick: cancel }, "Cancel"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const newName = input.value.trim();
    if (!newName || newName === row.dataset.name) return cancel();
    try {
      await post("/api/2.0/mlflow/experiments/update", { experiment_id: row.dataset.id, new_name: newName });
      row.dataset.name = newName;
      cancel();
      cell.querySelector(".exp-link").textContent = newName;
      row.querySelector("button.rename").setAttribute("aria-label", `Rename ${newName}`);
      toast(`Renamed to “${newName}”`);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  input.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
  cell.replaceChildren(form);
  input.focus();
  input.select();
}

