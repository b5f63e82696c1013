// Monitoring page: KPIs and charts over time from /api/tracelake/experiments/{id}/metrics.
import { get } from "./api.js";
import { h, pageData, toast } from "./dom.js";
import { chart } from "./charts.js";
import { compact, cost, duration, number, percent, relative } from "./format.js";

const { experiment_id: experimentId } = pageData();
const chartsEl = document.getElementById("charts");
const kpisEl = document.getElementById("kpis");
const range = document.getElementById("range");
const C = { blue: "#3b6fd8", red: "#d64545", amber: "#d89b2b", green: "#2f9e6e", violet: "#7c5cd6", teal: "#2a9bb0" };

function kpi(label, value, sub) {
  return h("div", { class: "kpi card" }, h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value" }, value),
    sub ? h("div", { class: "kpi-sub muted small" }, sub) : null);
}

async function load(minutes) {
  for (const b of range.querySelectorAll("button")) b.setAttribute("aria-pressed", String(Number(b.dataset.minutes) === minutes));
  chartsEl.setAttribute("aria-busy", "true");
  let res;
  try {
    res = await get(`/api/tracelake/experiments/${experimentId}/metrics`, { minutes });
  } catch (err) {
    toast(err.message, "error");
    return;
  } finally {
    chartsEl.removeAttribute("aria-busy");
  }
  const pts = res.points;
  const stepMs = res.step_minutes * 60000;
  const sum = (k) => pts.reduce((s, p) => s + (p[k] || 0), 0);
  const requests = sum("requests"), errors = sum("errors");
  const worstP95 = Math.max(0, ...pts.map((p) => p.p95 || 0));
  kpisEl.replaceChildren(
    kpi("Requests", compact(requests), `${res.step_minutes} min buckets`),
    kpi("Error rate", requests ? percent(errors / requests) : "—", `${compact(errors)} errors`),
    kpi("Worst p95 latency", pts.some((p) => p.p95 !== null) ? duration(worstP95) : "—"),
    kpi("Tokens", compact(sum("input_tokens") + sum("output_tokens")), `${compact(sum("input_tokens"))} in · ${compact(sum("output_tokens"))} out`),
    kpi("Cost", cost(sum("cost"))));
  chartsEl.replaceChildren(
    chart({ title: "Requests", points: pts, stepMs, kind: "bar", format: compact, series: [
      { label: "OK", color: C.blue, get: (p) => p.requests - p.errors },
      { label: "Errors", color: C.red, get: (p) => p.errors }] }),
    chart({ title: "Error rate", points: pts, stepMs, format: (v) => percent(v), series: [
      { label: "Errors / requests", color: C.red, get: (p) => (p.requests ? p.errors / p.requests : null) }] }),
    chart({ title: "Latency", points: pts, stepMs, format: duration, series: [
      { label: "p50", color: C.green, get: (p) => p.p50 },
      { label: "p95", color: C.amber, get: (p) => p.p95 },
      { label: "p99", color: C.red, get: (p) => p.p99 }] }),
    chart({ title: "Tokens", points: pts, stepMs, kind: "bar", format: compact, series: [
      { label: "Input", color: C.violet, get: (p) => p.input_tokens },
      { label: "Output", color: C.teal, get: (p) => p.output_tokens }] }),
    chart({ title: "Cost", points: pts, stepMs, kind: "bar", format: cost, series: [
      { label: "Cost", color: C.green, get: (p) => p.cost }] }));
  chartsEl.dataset.ready = "true";
}

range.addEventListener("click", (event) => {
  const b = event.target.closest("button[data-minutes]");
  if (b) load(Number(b.dataset.minutes));
});
load(1440);

// Lake tables: freshness and row counts, from /api/tracelake/lake/tables.
const lakeBody = document.getElementById("lake-body");

function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function freshness(t) {
  if (!t.exists) return "not created yet";
  if (t.synced_through_seq === null || t.synced_through_seq === undefined) return "—";
  if (t.lag_s === 0) return "caught up";
  return t.lag_s === null || t.lag_s === undefined ? "behind" : `behind, last write ${duration(t.lag_s * 1000)} ago`;
}

async function loadLake() {
  let res;
  try {
    res = await get("/api/tracelake/lake/tables");
  } catch (err) {
    lakeBody.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "muted" }, `Lake unavailable: ${err.message}`)));
    return;
  }
  lakeBody.replaceChildren(...res.tables.map((t) => h("tr", { "data-table": t.name },
    h("td", {}, h("code", {}, t.name)),
    h("td", { class: "num" }, t.rows === null || t.rows === undefined ? "—" : number(t.rows)),
    h("td", { class: "num" }, t.files === null || t.files === undefined ? "—" : number(t.files)),
    h("td", { class: "num" }, bytes(t.size_bytes)),
    h("td", {}, t.last_commit_ms ? relative(t.last_commit_ms) : "—"),
    h("td", {}, freshness(t)))));
  lakeBody.dataset.ready = "true";
}

loadLake();
setInterval(loadLake, 5000);
