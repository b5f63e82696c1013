// Small SVG time-series charts (lines or stacked bars) with a hover read-out. Hand-written:
// no charting library, nothing from a CDN.
import { h, svgEl } from "./dom.js";

const W = 560, H = 180, PAD = { l: 48, r: 12, t: 12, b: 24 };

/** A round axis maximum and a tick count that gives round steps (…, 2, 4 | 0.5, 1 | 1, 2, …). */
function niceScale(v) {
  if (!(v > 0)) return { max: 1, ticks: 4 };
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  const m = v / p;
  const top = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
  return { max: top * p, ticks: top === 2 ? 4 : 5 };
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  return spanMs > 2 * 86400000 ? `${d.toLocaleString("en-US", { month: "short" })} ${d.getDate()}` : hm;
}

/**
 * chart({title, points, series:[{key, label, color, get(p)}], kind: "line"|"bar", format(v)})
 */
export function chart({ title, points, series, kind = "line", format = String, stepMs }) {
  const x0 = points.length ? points[0].t : 0;
  const x1 = points.length ? points[points.length - 1].t + stepMs : 1;
  const values = points.map((p) => (kind === "bar" ? series.reduce((s, se) => s + (se.get(p) || 0), 0) : Math.max(...series.map((se) => se.get(p) ?? 0))));
  const scale = niceScale(Math.max(0, ...values));
  const ymax = scale.max;
  const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
  const x = (t) => PAD.l + ((t - x0) / (x1 - x0)) * iw;
  const y = (v) => PAD.t + ih - (v / ymax) * ih;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": title });
  for (let k = 0; k <= scale.ticks; k++) {
    const v = (ymax / scale.ticks) * k;
    svg.appendChild(svgEl("line", { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: "grid-line" }));
    const label = svgEl("text", { x: PAD.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    label.textContent = v === 0 ? "0" : format(v);
    svg.appendChild(label);
  }
  for (let k = 0; k <= 4; k++) {
    const t = x0 + ((x1 - x0) / 4) * k;
    const label = svgEl("text", { x: x(t), y: H - 6, class: "axis", "text-anchor": k === 0 ? "start" : k === 4 ? "end" : "middle" });
    label.textContent = timeLabel(t, x1 - x0);
    svg.appendChild(label);
  }
  const bw = Math.max(1, (iw / Math.max(1, points.length)) - 1);
  if (kind === "bar") {
    points.forEach((p) => {
      let base = 0;
      for (const se of series) {
        const v = se.get(p) || 0;
        if (v > 0) svg.appendChild(svgEl("rect", { x: x(p.t), y: y(base + v), width: bw, height: Math.max(0.5, y(base) - y(base + v)), fill: se.color }));
        base += v;
      }
    });
  } else {
    for (const se of series) {
      let d = "";
      let pen = false;
      points.forEach((p) => {
        const v = se.get(p);
        if (v === null || v === undefined) { pen = false; return; }
        d += `${pen ? "L" : "M"}${x(p.t + stepMs / 2).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      svg.appendChild(svgEl("path", { d, fill: "none", stroke: se.color, "stroke-width": 2, "stroke-linejoin": "round" }));
      // Dots where a value stands alone (no neighbour to draw a line to).
      points.forEach((p, k) => {
        const v = se.get(p);
        if (v === null || v === undefined) return;
        const prev = k > 0 ? se.get(points[k - 1]) : null;
        const next = k + 1 < points.length ? se.get(points[k + 1]) : null;
        if ((prev === null || prev === undefined) && (next === null || next === undefined)) {
          svg.appendChild(svgEl("circle", { cx: x(p.t + stepMs / 2), cy: y(v), r: 3, fill: se.color }));
        }
      });
    }
  }
  const cursor = svgEl("line", { y1: PAD.t, y2: PAD.t + ih, class: "cursor", visibility: "hidden" });
  svg.appendChild(cursor);
  const tip = h("div", { class: "chart-tip", hidden: true });
  const legend = h("div", { class: "legend" }, series.map((se) => h("span", null, h("i", { style: { background: se.color } }), se.label)));
  const box = h("figure", { class: "chart card" }, h("figcaption", null, h("span", null, title), legend), h("div", { class: "chart-area" }, svg, tip));
  svg.addEventListener("mousemove", (event) => {
    if (!points.length) return;
    const r = svg.getBoundingClientRect();
    const px = ((event.clientX - r.left) / r.width) * W;
    const idx = Math.max(0, Math.min(points.length - 1, Math.floor(((px - PAD.l) / iw) * points.length)));
    const p = points[idx];
    cursor.setAttribute("x1", x(p.t + stepMs / 2));
    cursor.setAttribute("x2", x(p.t + stepMs / 2));
    cursor.setAttribute("visibility", "visible");
    tip.replaceChildren(h("div", { class: "muted" }, new Date(p.t).toLocaleString()),
      ...series.map((se) => h("div", null, h("i", { style: { background: se.color } }), `${se.label}: ${se.get(p) === null || se.get(p) === undefined ? "—" : format(se.get(p))}`)));
    tip.hidden = false;
    tip.style.left = `${Math.min(75, (x(p.t) / W) * 100)}%`;
  });
  svg.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); });
  return box;
}
