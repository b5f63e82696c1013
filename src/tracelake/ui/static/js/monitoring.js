// Monitoring page: KPIs and charts over time from /api/tracelake/experiments/{id}/metrics.
import { get } from "./api.js";
import { h, pageData, toast } from "./dom.js";
import { chart } from "./charts.js";
import { compact, cost, duration, percent } from "./format.js";

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
