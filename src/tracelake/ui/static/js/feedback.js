// Trace page: tags (add, remove) and assessments (list, add human feedback, remove).
import { del, get, patch, post } from "./api.js";
import { h, icon, toast } from "./dom.js";
import { brief, relative } from "./format.js";

export function setupFeedback(traceId, initial, { selectedSpan, onSpanLink }) {
  const tagsEl = document.getElementById("tags");
  const listEl = document.getElementById("assessments");
  const form = document.getElementById("feedback-form");
  const error = document.getElementById("feedback-error");
  const tagForm = document.getElementById("tag-form");
  let thumb = null;

  function renderTags(tags) {
    const entries = Object.entries(tags);
    tagsEl.replaceChildren(...(entries.length ? entries.map(([k, v]) => h("span", { class: "chip tag", "data-key": k },
      `${k}=${v}`, h("button", { type: "button", class: "chip-x", "aria-label": `Remove tag ${k}`, onclick: () => removeTag(k) }, icon("x"))))
      : [h("span", { class: "muted small" }, "none")]));
  }

  function renderAssessments(list) {
    if (!list.length) {
      listEl.replaceChildren(h("p", { class: "muted small" }, "No feedback yet."));
      return;
    }
    listEl.replaceChildren(...list.map((a) => {
      const v = a.value;
      const kind = v === true ? "good" : v === false ? "bad" : "neutral";
      const valueNode = typeof v === "boolean" ? h("span", { class: `chip assess ${kind}` }, icon(v ? "thumb-up" : "thumb-down"), v ? "yes" : "no")
        : h("span", { class: "chip assess neutral" }, brief(v, 60));
      return h("div", { class: `assessment${a.valid ? "" : " overridden"}`, "data-id": a.id },
        h("div", { class: "assessment-main" }, h("strong", null, a.name), valueNode,
          h("span", { class: "muted small" }, `${a.kind} · ${a.source}${a.source_id ? " · " + a.source_id : ""} · ${relative(a.time)}`),
          a.span_id ? h("button", { type: "button", class: "linkish small", onclick: () => onSpanLink(a.span_id) }, "on span") : null,
          h("button", { type: "button", class: "chip-x", "aria-label": `Delete ${a.name}`, onclick: () => removeAssessment(a.id) }, icon("x"))),
        a.rationale ? h("div", { class: "rationale" }, a.rationale) : null);
    }));
  }

  async function refresh() {
    const res = await get(`/api/tracelake/traces/${traceId}`);
    renderTags(res.trace.tags);
    renderAssessments(res.trace.assessments);
  }

  async function removeTag(key) {
    try { await del(`/api/2.0/mlflow/traces/${traceId}/tags`, { key }); await refresh(); toast(`Removed tag ${key}`); }
    catch (err) { toast(err.message, "error"); }
  }

  async function removeAssessment(id) {
    try { await del(`/api/3.0/mlflow/traces/${traceId}/assessments/${id}`); await refresh(); }
    catch (err) { toast(err.message, "error"); }
  }

  tagForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = tagForm.elements.key.value.trim();
    if (!key) return;
    try {
      await patch(`/api/2.0/mlflow/traces/${traceId}/tags`, { key, value: tagForm.elements.value.value });
      tagForm.reset();
      await refresh();
    } catch (err) { toast(err.message, "error"); }
  });

  for (const b of form.querySelectorAll("[data-thumb]")) {
    b.addEventListener("click", () => {
      thumb = thumb === b.dataset.thumb ? null : b.dataset.thumb;
      for (const other of form.querySelectorAll("[data-thumb]")) other.setAttribute("aria-pressed", String(other.dataset.thumb === thumb));
    });
  }

  function parseValue(text) {
    const t = text.trim();
    if (t === "") return thumb === null ? undefined : thumb === "up";
    if (t === "true" || t === "false") return t === "true";
    if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
    return t;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const value = parseValue(form.elements.value.value);
    if (value === undefined) {
      error.textContent = "Choose thumbs up or down, or enter a value.";
      error.hidden = false;
      return;
    }
    const assessment = {
      assessment_name: form.elements.name.value.trim() || "user_feedback",
      trace_id: traceId,
      source: { source_type: "HUMAN", source_id: "web-ui" },
      feedback: { value },
    };
    const comment = form.elements.comment.value.trim();
    if (comment) assessment.rationale = comment;
    const span = form.elements.on_span.checked ? selectedSpan() : null;
    if (span) assessment.span_id = span;
    try {
      await post(`/api/3.0/mlflow/traces/${traceId}/assessments`, { assessment });
      form.elements.value.value = "";
      form.elements.comment.value = "";
      thumb = null;
      for (const b of form.querySelectorAll("[data-thumb]")) b.setAttribute("aria-pressed", "false");
      await refresh();
      toast("Feedback saved");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });

  renderTags(initial.tags);
  renderAssessments(initial.assessments);
}
