// Trace page: span tree beside a waterfall (one virtualised list; only visible rows exist),
// paged span loading, keyboard navigation, #span= deep links, and the selected span's detail.
import { get } from "./api.js";
import { clear, h, icon, pageData, typeIcon, toast } from "./dom.js";
import { setupFeedback } from "./feedback.js";
import { duration } from "./format.js";
import { SpanModel } from "./spanmodel.js";
import { renderDetail } from "./spandetail.js";
import { VirtualList } from "./virtual.js";

const ROW_HEIGHT = 28;
const FIRST_PAGE = 2000; // as FIRST_SPAN_PAGE in ui/views.py
const NEXT_PAGE = 10000;
const INDENT = 14;

const data = pageData();
const trace = data.trace;
const model = new SpanModel();
const treeEl = document.getElementById("span-tree");
const detailEl = document.getElementById("detail");
const statusEl = document.getElementById("tree-status");
let selected = -1;
let wantedSpan = spanFromHash();
let allLoaded = false;

// -- rows -------------------------------------------------------------------------------

function createRow() {
  const caret = h("button", { type: "button", class: "caret", tabindex: "-1", "aria-label": "Toggle children" }, icon("chevron"));
  const typeSlot = h("span", { class: "type-slot" });
  const name = h("span", { class: "span-name" });
  const dur = h("span", { class: "span-dur" });
  const indent = h("span", { class: "indent" });
  const bar = h("span", { class: "wf-bar" });
  const barLabel = h("span", { class: "wf-label" });
  const el = h("div", { class: "span-row", role: "treeitem" },
    h("span", { class: "tree-cell" }, indent, caret, typeSlot, name, dur),
    h("span", { class: "wf-cell" }, bar, barLabel));
  el._parts = { caret, typeSlot, name, dur, indent, bar, barLabel };
  caret.addEventListener("click", (event) => {
    event.stopPropagation();
    if (model.toggle(el._span)) { list.setCount(model.visible.length); }
  });
  el.addEventListener("click", () => select(el._span, { focus: true }));
  return el;
}

function renderRow(el, k) {
  const i = model.visible[k];
  const p = el._parts;
  el._span = i;
  el.dataset.spanId = model.ids[i];
  const type = model.type(i);
  const hasKids = model.hasChildren(i);
  const open = hasKids && !model.collapsed.has(i);
  const error = model.status[i] === "ERROR";
  el.className = "span-row" + (i === selected ? " is-selected" : "") + (error ? " is-error" : "") +
    (model.errorBelow[i] ? " has-error-below" : "");
  el.setAttribute("aria-level", String(model.depth[i] + 1));
  el.setAttribute("aria-selected", String(i === selected));
  if (hasKids) el.setAttribute("aria-expanded", String(open)); else el.removeAttribute("aria-expanded");
  p.indent.style.width = `${Math.min(model.depth[i], 40) * INDENT}px`;
  p.caret.style.visibility = hasKids ? "visible" : "hidden";
  p.caret.classList.toggle("open", open);
  if (p.typeSlot._type !== type) { p.typeSlot._type = type; p.typeSlot.replaceChildren(typeIcon(type)); }
  p.typeSlot.title = type;
  p.name.textContent = model.name(i);
  const dus = model.dur[i];
  p.dur.textContent = dus === null ? "…" : duration(dus / 1000);
  const span = model.t1 - model.t0;
  const left = ((model.start[i] - model.t0) / span) * 100;
  const width = dus === null ? 100 - left : (dus / span) * 100;
  p.bar.style.left = `${left}%`;
  p.bar.style.width = `max(2px, ${width}%)`;
  p.bar.className = `wf-bar t-${type}` + (error ? " is-error" : "");
  p.barLabel.textContent = dus === null ? "" : duration(dus / 1000);
  // After the bar when there is room, else inside it (wide bars) or before it.
  const end = left + width;
  const inside = end > 80 && width >= 12;
  p.barLabel.classList.toggle("inside", inside);
  p.barLabel.style.left = end <= 80 ? `calc(${end}% + 4px)` : "auto";
  p.barLabel.style.right = end <= 80 ? "auto" : inside ? `calc(${100 - end}% + 6px)` : `calc(${100 - left}% + 4px)`;
}

const list = new VirtualList(treeEl, { rowHeight: ROW_HEIGHT, createRow, renderRow, overscan: 12 });

// -- selection, keyboard, deep links ----------------------------------------------------

function spanFromHash() {
  const m = /^#span=([0-9a-fA-F]{1,16})$/.exec(location.hash);
  return m ? m[1].toLowerCase() : null;
}

let detailTimer = 0;
let detailAbort = null;
const detailCache = new Map();

function select(i, { focus = false, scroll = true, updateHash = true } = {}) {
  if (i < 0 || i >= model.size) return;
  selected = i;
  model.reveal(i);
  list.setCount(model.visible.length);
  if (scroll) list.scrollToIndex(model.position[i]);
  list.refresh();
  if (focus) treeEl.focus({ preventScroll: true });
  const row = list.rowAt(model.position[i]);
  treeEl.setAttribute("aria-activedescendant", "");
  if (row) { row.id = "span-row-active"; treeEl.setAttribute("aria-activedescendant", row.id); }
  if (updateHash) history.replaceState(null, "", `#span=${model.ids[i]}`);
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => showDetail(i), detailCache.has(model.ids[i]) ? 0 : 60);
}

async function showDetail(i) {
  const id = model.ids[i];
  if (detailAbort) detailAbort.abort();
  let span = detailCache.get(id);
  if (!span) {
    detailAbort = new AbortController();
    detailEl.setAttribute("aria-busy", "true");
    try {
      span = (await get(`/api/tracelake/traces/${trace.id}/spans/${id}`, null, detailAbort.signal)).span;
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(detailEl).appendChild(h("p", { class: "form-error" }, err.message));
      return;
    } finally {
      detailEl.removeAttribute("aria-busy");
    }
    detailCache.set(id, span);
    if (detailCache.size > 200) detailCache.delete(detailCache.keys().next().value);
  }
  if (model.ids[selected] !== id) return;
  detailEl.replaceChildren(...renderDetail(span, { offsetMs: (model.start[i] - model.t0) / 1000 }));
  detailEl.dataset.spanId = id;
}

treeEl.addEventListener("keydown", (event) => {
  if (!model.size) return;
  const pos = selected === -1 ? -1 : model.position[selected];
  const visible = model.visible;
  const page = Math.max(1, Math.floor(treeEl.clientHeight / ROW_HEIGHT) - 1);
  let next = null;
  switch (event.key) {
    case "ArrowDown": next = visible[Math.min(visible.length - 1, pos + 1)]; break;
    case "ArrowUp": next = visible[Math.max(0, pos - 1)]; break;
    case "PageDown": next = visible[Math.min(visible.length - 1, pos + page)]; break;
    case "PageUp": next = visible[Math.max(0, pos - page)]; break;
    case "Home": next = visible[0]; break;
    case "End": next = visible[visible.length - 1]; break;
    case "ArrowRight":
      if (selected === -1) next = visible[0];
      else if (model.hasChildren(selected) && model.collapsed.has(selected)) { model.toggle(selected, true); next = selected; }
      else if (model.hasChildren(selected)) next = model.firstChild(selected);
      break;
    case "ArrowLeft":
      if (selected === -1) break;
      if (model.hasChildren(selected) && !model.collapsed.has(selected)) { model.toggle(selected, false); next = selected; }
      else if (model.parent[selected] !== -1) next = model.parent[selected];
      break;
    case "Enter": case " ":
      if (selected !== -1) { model.toggle(selected); next = selected; }
      break;
    default: return;
  }
  event.preventDefault();
  if (next !== null && next !== undefined) select(next);
});

window.addEventListener("hashchange", () => {
  const id = spanFromHash();
  if (id && model.index.has(id)) select(model.index.get(id), { updateHash: false });
});

// -- loading ----------------------------------------------------------------------------

function updateStatus() {
  const total = Math.max(trace.spans || 0, model.size);
  statusEl.textContent = allLoaded ? `${model.size.toLocaleString("en-US")} spans` :
    `Loading spans… ${model.size.toLocaleString("en-US")} of ${total.toLocaleString("en-US")}`;
  document.getElementById("wf-total").textContent = model.size ? duration((model.t1 - model.t0) / 1000) : "";
}

function afterPage() {
  list.setCount(model.visible.length);
  updateStatus();
  if (wantedSpan && model.index.has(wantedSpan)) {
    select(model.index.get(wantedSpan), { focus: false, updateHash: false });
    wantedSpan = null;
  } else if (selected === -1 && !wantedSpan && model.size) {
    select(model.visible[0], { updateHash: false, scroll: false });
  }
}

async function load() {
  let token = null;
  let limit = FIRST_PAGE;
  let embedded = data.spans || null; // the first page comes with the HTML
  try {
    do {
      const page = embedded || await get(`/api/tracelake/traces/${trace.id}/spans`, { limit, page_token: token });
      embedded = null;
      model.addPage(page);
      token = page.next_page_token || null;
      allLoaded = !token;
      afterPage();
      if (limit === FIRST_PAGE) {
        treeEl.dataset.ready = "true";
        performance.mark("tracelake:tree-ready"); // read by bench/ui_trace.py
      }
      limit = NEXT_PAGE;
    } while (token);
    treeEl.dataset.loaded = "true";
    performance.mark("tracelake:tree-loaded");
    if (wantedSpan) { toast(`Span ${wantedSpan} is not in this trace`, "error"); wantedSpan = null; }
    if (!model.size) statusEl.textContent = "This trace has no spans yet.";
  } catch (err) {
    statusEl.textContent = `Could not load spans: ${err.message}`;
  }
}

setupFeedback(trace.id, trace, {
  selectedSpan: () => (selected === -1 ? null : model.ids[selected]),
  onSpanLink: (id) => { if (model.index.has(id)) select(model.index.get(id), { focus: true }); },
});
load();
