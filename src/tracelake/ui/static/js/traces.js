// Traces page: a virtualised table with filter bar, quick filters, sort, keyset paging,
// live update (polling the change sequence), selection, delete and JSON export.
import { ApiError, get, post } from "./api.js";
import { h, icon, pageData, toast } from "./dom.js";
import { addClause, findClause, hasClause, keyRef, quote, removeClause, replaceClause } from "./filters.js";
import { brief, compact, cost, dateTime, duration, relative } from "./format.js";
import { VirtualList } from "./virtual.js";

const ROW_HEIGHT = 44;
const POLL_MS = 2000;
const DEFAULT_ORDER = "timestamp_ms DESC";
const data = pageData();
const experimentId = data.experiment_id;
const base = `/api/tracelake/experiments/${experimentId}`;

const state = {
  filter: data.filter || "",
  order: data.order || DEFAULT_ORDER,
  rows: [],
  byId: new Map(),
  nextToken: data.next_page_token || null,
  seq: data.seq || 0,
  selected: new Set(),
  loading: false,
  generation: 0,
  live: true,
  pending: 0, // new traces not shown (non-default order)
};

const grid = document.getElementById("trace-grid");
const filterInput = document.getElementById("filter");
const filterError = document.getElementById("filter-error");
const status = document.getElementById("grid-status");
const loadMoreBtn = document.getElementById("load-more");
const liveBadge = document.getElementById("live");
const empty = h("div", { class: "grid-empty muted" });
grid.parentElement.insertBefore(empty, grid.nextSibling);

// -- rows -------------------------------------------------------------------------------

function createRow() {
  const cells = {
    check: h("input", { type: "checkbox", "aria-label": "Select trace" }),
    time: h("span", { class: "c-time" }),
    name: h("a", { class: "c-name trace-link" }),
    req: h("span", { class: "c-req preview" }),
    resp: h("span", { class: "c-resp preview" }),
    state: h("span", { class: "state" }),
    lat: h("span", { class: "c-lat num" }),
    tok: h("span", { class: "c-tok num" }),
    cost: h("span", { class: "c-cost num" }),
    tags: h("span", { class: "c-tags chips" }),
  };
  const el = h("div", { class: "grid-row", role: "row" },
    h("span", { class: "c-check" }, cells.check), cells.time, cells.name, cells.req, cells.resp,
    h("span", { class: "c-state" }, cells.state), cells.lat, cells.tok, cells.cost, cells.tags);
  el._cells = cells;
  cells.check.addEventListener("change", () => toggleSelect(el._row.id, cells.check.checked));
  el.addEventListener("click", (event) => {
    if (event.target.closest("input, a, button, .chip")) return;
    location.assign(traceUrl(el._row.id));
  });
  return el;
}

function traceUrl(id) {
  return `/experiments/${experimentId}/traces/${id}`;
}

function renderRow(el, i) {
  const row = state.rows[i];
  const c = el._cells;
  el._row = row;
  el.dataset.id = row.id;
  el.classList.toggle("is-error", row.state === "ERROR");
  el.classList.toggle("is-selected", state.selected.has(row.id));
  el.classList.toggle("is-new", !!row._new);
  c.check.checked = state.selected.has(row.id);
  c.time.textContent = dateTime(row.time);
  c.time.title = relative(row.time);
  c.name.textContent = row.name || row.id;
  c.name.href = traceUrl(row.id);
  c.req.textContent = row.request || "";
  c.req.title = row.request || "";
  c.resp.textContent = row.response || "";
  c.resp.title = row.response || "";
  c.state.textContent = row.state === "IN_PROGRESS" ? "RUNNING" : row.state;
  c.state.className = `state state-${row.state}`;
  c.lat.textContent = duration(row.duration);
  c.tok.textContent = row.tokens === null ? "—" : compact(row.tokens);
  c.cost.textContent = cost(row.cost);
  c.tags.replaceChildren(...chipsFor(row));
}

function chipsFor(row) {
  const chips = [];
  for (const a of row.assessments.slice(0, 3)) {
    const v = a.value;
    const kind = v === true ? "good" : v === false ? "bad" : "neutral";
    const content = typeof v === "boolean" ? [icon(v ? "thumb-up" : "thumb-down"), a.name] : [`${a.name}: ${brief(v, 24)}`];
    chips.push(h("span", { class: `chip assess ${kind}`, title: a.rationale || `${a.name} = ${brief(v, 200)}` }, ...content));
  }
  for (const [k, v] of Object.entries(row.tags).slice(0, 4)) {
    chips.push(h("button", { type: "button", class: "chip tag", title: `Filter by tag ${k} = ${v}`,
      onclick: () => applyFilter(addClause(state.filter, `${keyRef("tags", k)} = ${quote(v)}`)) }, `${k}=${brief(v, 24)}`));
  }
  if (row.session) {
    chips.push(h("button", { type: "button", class: "chip session", title: `Filter by session ${row.session}`,
      onclick: () => applyFilter(addClause(state.filter, `trace.session_id = ${quote(row.session)}`)) }, icon("chat"), brief(row.session, 18)));
  }
  return chips;
}

const list = new VirtualList(grid, {
  rowHeight: ROW_HEIGHT, createRow, renderRow,
  onRange: (first, last) => { if (last >= state.rows.length - 10) maybeLoadMore(); },
});

function setRows(rows) {
  state.rows = [];
  state.byId.clear();
  appendRows(rows);
}

function appendRows(rows) {
  for (const r of rows) {
    if (state.byId.has(r.id)) continue;
    state.byId.set(r.id, r);
    state.rows.push(r);
  }
  list.setCount(state.rows.length);
  updateStatus();
}

function updateStatus() {
  const n = state.rows.length;
  empty.hidden = n > 0;
  empty.textContent = state.filter ? "No traces match this filter." :
    "No traces yet. Point an app at this server (OTLP /v1/traces or the MLflow client) and they appear here live.";
  status.textContent = n ? `${n.toLocaleString("en-US")} trace${n === 1 ? "" : "s"} loaded${state.nextToken ? " · scroll for more" : ""}` : "";
  loadMoreBtn.hidden = !state.nextToken;
}

// -- loading ----------------------------------------------------------------------------

function syncUrl() {
  const q = new URLSearchParams();
  if (state.filter) q.set("filter", state.filter);
  if (state.order !== DEFAULT_ORDER) q.set("order", state.order);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

function showFilterError(err) {
  filterInput.classList.add("invalid");
  filterError.textContent = err.message;
  filterError.hidden = false;
  if (typeof err.position === "number") {
    filterInput.focus();
    const rest = filterInput.value.slice(err.position);
    const len = Math.max(1, (/^\S+/.exec(rest) || [""])[0].length);
    filterInput.setSelectionRange(err.position, err.position + len);
  }
}

function clearFilterError() {
  filterInput.classList.remove("invalid");
  filterError.hidden = true;
  filterError.textContent = "";
}

async function reload() {
  const generation = ++state.generation;
  state.loading = true;
  grid.setAttribute("aria-busy", "true");
  try {
    const page = await get(`${base}/traces`, { filter: state.filter, order_by: state.order });
    if (generation !== state.generation) return;
    clearFilterError();
    state.nextToken = page.next_page_token || null;
    state.seq = page.seq;
    state.pending = 0;
    updatePending();
    setRows(page.traces);
    grid.scrollTop = 0;
    list.refresh();
  } catch (err) {
    if (generation !== state.generation) return;
    if (err instanceof ApiError && err.status === 400) {
      showFilterError(err);
      state.nextToken = null;
      setRows([]);
    } else toast(err.message, "error");
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      grid.removeAttribute("aria-busy");
    }
  }
}

async function maybeLoadMore() {
  if (state.loading || !state.nextToken) return;
  const generation = state.generation;
  state.loading = true;
  try {
    const page = await get(`${base}/traces`, { filter: state.filter, order_by: state.order, page_token: state.nextToken });
    if (generation !== state.generation) return;
    state.nextToken = page.next_page_token || null;
    appendRows(page.traces);
  } catch (err) {
    toast(err.message, "error");
  } finally {
    if (generation === state.generation) state.loading = false;
  }
}

function applyFilter(filter) {
  state.filter = filter.trim();
  filterInput.value = state.filter;
  syncUrl();
  syncQuick();
  reload();
}

// -- live update ------------------------------------------------------------------------

let pollTimer = 0;
async function poll() {
  pollTimer = 0;
  if (!state.live || document.hidden || filterInput.classList.contains("invalid")) return schedulePoll();
  const generation = state.generation;
  try {
    const changes = await get(`${base}/changes`, { since_seq: state.seq, filter: state.filter });
    if (generation !== state.generation) return schedulePoll();
    state.seq = changes.seq;
    applyChanges(changes.traces, changes.more);
    liveBadge.classList.remove("is-down");
  } catch {
    liveBadge.classList.add("is-down");
  }
  schedulePoll();
}

function schedulePoll() {
  if (!pollTimer) pollTimer = setTimeout(poll, POLL_MS);
}

function applyChanges(traces, more) {
  if (!traces.length) return;
  const fresh = [];
  for (const t of traces) {
    const known = state.byId.get(t.id);
    if (known) {
      Object.assign(known, t);
    } else fresh.push(t);
  }
  if (fresh.length && state.order === DEFAULT_ORDER && !more) {
    fresh.sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : -1));
    const top = state.rows.length ? state.rows[0].time : -Infinity;
    const insert = fresh.filter((t) => t.time >= top);
    const later = fresh.filter((t) => t.time < top);
    for (const t of insert) { t._new = true; state.byId.set(t.id, t); }
    state.rows.unshift(...insert);
    // A late arrival older than the newest row: put it in time order among loaded rows.
    for (const t of later) {
      const at = state.rows.findIndex((r) => r.time < t.time);
      if (at === -1 && state.nextToken) continue; // belongs to a page not loaded yet
      t._new = true;
      state.byId.set(t.id, t);
      state.rows.splice(at === -1 ? state.rows.length : at, 0, t);
    }
    const keep = grid.scrollTop > ROW_HEIGHT;
    if (keep) grid.scrollTop += insert.length * ROW_HEIGHT;
    list.setCount(state.rows.length);
    updateStatus();
    if (!state.filter) {
      const total = document.getElementById("trace-total");
      const n = Number(total.dataset.n || total.textContent.replace(/[^0-9]/g, "")) + fresh.length;
      total.dataset.n = String(n);
      total.textContent = n.toLocaleString("en-US");
    }
    setTimeout(() => { for (const t of fresh) delete t._new; list.refresh(); }, 2500);
  } else if (fresh.length) {
    state.pending += fresh.length;
    updatePending(more);
  }
  list.refresh();
}

const pendingBar = h("button", { type: "button", class: "pending-bar", hidden: true, onclick: () => reload() });
grid.parentElement.insertBefore(pendingBar, grid);
function updatePending(more) {
  pendingBar.hidden = state.pending === 0;
  pendingBar.textContent = `${more ? "Many" : state.pending} new trace${state.pending === 1 ? "" : "s"} · click to refresh`;
}

liveBadge.addEventListener("click", () => {
  state.live = !state.live;
  liveBadge.classList.toggle("is-paused", !state.live);
  liveBadge.querySelector(".live-label").textContent = state.live ? "Live" : "Paused";
});
liveBadge.setAttribute("role", "button");
liveBadge.tabIndex = 0;
liveBadge.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); liveBadge.click(); } });

// -- selection, delete, export ----------------------------------------------------------

const selectionBar = document.getElementById("selection-bar");
const selectAll = document.getElementById("select-all");
const deleteBtn = document.getElementById("delete-btn");

function toggleSelect(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  updateSelection();
}

function updateSelection() {
  const n = state.selected.size;
  selectionBar.hidden = n === 0;
  document.getElementById("selection-count").textContent = `${n} selected`;
  selectAll.checked = n > 0 && n === state.rows.length;
  selectAll.indeterminate = n > 0 && n < state.rows.length;
  resetDelete();
  list.refresh();
}

selectAll.addEventListener("change", () => {
  state.selected = selectAll.checked ? new Set(state.rows.map((r) => r.id)) : new Set();
  updateSelection();
});
document.getElementById("clear-selection").addEventListener("click", () => { state.selected.clear(); updateSelection(); });

let confirming = false;
function resetDelete() {
  confirming = false;
  deleteBtn.lastChild.textContent = "Delete";
}
deleteBtn.addEventListener("click", async () => {
  const ids = Array.from(state.selected);
  if (!ids.length) return;
  if (!confirming) {
    confirming = true;
    deleteBtn.lastChild.textContent = `Confirm: delete ${ids.length}`;
    return;
  }
  resetDelete();
  try {
    const res = await post("/api/3.0/mlflow/traces/delete-traces", { experiment_id: experimentId, trace_ids: ids });
    const gone = new Set(ids);
    state.rows = state.rows.filter((r) => !gone.has(r.id));
    ids.forEach((id) => state.byId.delete(id));
    state.selected.clear();
    list.setCount(state.rows.length);
    updateSelection();
    updateStatus();
    toast(`Deleted ${res.traces_deleted} trace${res.traces_deleted === 1 ? "" : "s"}`);
  } catch (err) {
    toast(err.message, "error");
  }
});
deleteBtn.replaceChildren(icon("trash"), document.createTextNode("Delete"));

document.getElementById("export-btn").addEventListener("click", async () => {
  const ids = Array.from(state.selected);
  try {
    const res = await post("/api/tracelake/traces/export", { trace_ids: ids });
    const blob = new Blob([JSON.stringify(res, null, 2)], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `traces-${experimentId}-${ids.length}.json` });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    toast(err.message, "error");
  }
});

// -- filter bar, quick filters, sort ----------------------------------------------------

document.getElementById("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilter(filterInput.value);
});
document.getElementById("clear-filter").addEventListener("click", () => applyFilter(""));
filterInput.addEventListener("input", () => { if (filterInput.classList.contains("invalid")) clearFilterError(); });
loadMoreBtn.addEventListener("click", maybeLoadMore);

const ERRORS = "trace.status = 'ERROR'";
const SLOW = "trace.execution_time_ms > ";
const errorsChip = document.querySelector('[data-quick="errors"]');
const slowChip = document.querySelector('[data-quick="slow"]');
const slowSelect = document.getElementById("slow-ms");

function syncQuick() {
  errorsChip.setAttribute("aria-pressed", String(hasClause(state.filter, ERRORS)));
  const slow = findClause(state.filter, SLOW);
  slowChip.setAttribute("aria-pressed", String(!!slow));
  if (slow) {
    const v = slow.slice(SLOW.length);
    if ([...slowSelect.options].some((o) => o.value === v)) slowSelect.value = v;
  }
}

errorsChip.addEventListener("click", () => {
  applyFilter(hasClause(state.filter, ERRORS) ? removeClause(state.filter, ERRORS) : addClause(state.filter, ERRORS));
});
slowChip.addEventListener("click", () => {
  const on = !!findClause(state.filter, SLOW);
  applyFilter(replaceClause(state.filter, SLOW, on ? null : SLOW + slowSelect.value));
});
slowSelect.addEventListener("change", () => applyFilter(replaceClause(state.filter, SLOW, SLOW + slowSelect.value)));

const quickKind = document.getElementById("quick-kind");
const quickValue = document.getElementById("quick-value");
const PLACEHOLDERS = { tag: "key=value", session: "session id", user: "user id", span: "LLM, TOOL, RETRIEVER…", text: "text to find" };
quickKind.addEventListener("change", () => { quickValue.placeholder = PLACEHOLDERS[quickKind.value]; });

function quickClause(kind, raw) {
  const v = raw.trim();
  if (!v) return null;
  if (kind === "tag") {
    const at = v.indexOf("=");
    if (at <= 0) return `${keyRef("tags", v)} IS NOT NULL`;
    return `${keyRef("tags", v.slice(0, at).trim())} = ${quote(v.slice(at + 1).trim())}`;
  }
  if (kind === "session") return `trace.session_id = ${quote(v)}`;
  if (kind === "user") return `trace.user = ${quote(v)}`;
  if (kind === "span") return `span.type = ${quote(v.toUpperCase())}`;
  return `trace.text ILIKE ${quote("%" + v.replace(/[\\%_]/g, (c) => "\\" + c) + "%")}`;
}

function applyQuick() {
  const clause = quickClause(quickKind.value, quickValue.value);
  if (!clause) return;
  quickValue.value = "";
  applyFilter(addClause(state.filter, clause));
}
document.getElementById("quick-apply").addEventListener("click", applyQuick);
quickValue.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); applyQuick(); } });

document.getElementById("order").addEventListener("change", (event) => {
  state.order = event.target.value;
  syncUrl();
  reload();
});

// -- start ------------------------------------------------------------------------------

if (data.error) {
  showFilterError(data.error);
}
setRows(data.traces || []);
syncQuick();
schedulePoll();
grid.dataset.ready = "true";
