// Sessions page: more sessions on demand (keyset pages from /api/tracelake/…/sessions).
import { get } from "./api.js";
import { h, pageData, toast } from "./dom.js";
import { compact, duration, relative } from "./format.js";

const { experiment_id: experimentId } = pageData();
const body = document.getElementById("sessions-body");
const more = document.getElementById("more-sessions");

function row(s) {
  return h("tr", null,
    h("td", { class: "mono" }, h("a", { href: `/experiments/${experimentId}/sessions/${encodeURIComponent(s.id)}` }, s.id)),
    h("td", { class: "preview" }, s.last_request || ""),
    h("td", { class: "num" }, String(s.turns)),
    h("td", null, h("time", { title: new Date(s.last).toLocaleString() }, relative(s.last))),
    h("td", { class: "num" }, duration(s.last - s.first)),
    h("td", { class: "num" }, s.errors ? h("span", { class: "rate bad" }, String(s.errors)) : "0"),
    h("td", { class: "num" }, compact(s.tokens)),
    h("td", null, s.user || ""));
}

more.addEventListener("click", async () => {
  more.disabled = true;
  try {
    const page = await get(`/api/tracelake/experiments/${experimentId}/sessions`, { page_token: more.dataset.token });
    for (const s of page.sessions) body.appendChild(row(s));
    more.dataset.token = page.next_page_token || "";
    more.hidden = !page.next_page_token;
  } catch (err) {
    toast(err.message, "error");
  } finally {
    more.disabled = false;
  }
});
