// Numbers, durations and times as people read them.

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60000);
  return `${m}m ${Math.floor((ms % 60000) / 1000)}s`;
}

export function number(n) {
  if (n === null || n === undefined) return "—";
  return Math.round(n).toLocaleString("en-US");
}

export function compact(n) {
  if (n === null || n === undefined) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "B";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return number(n);
}

export function cost(x) {
  if (x === null || x === undefined) return "—";
  return x < 1 ? "$" + x.toFixed(4) : "$" + x.toFixed(2);
}

export function percent(x) {
  return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%";
}

const pad = (n) => String(n).padStart(2, "0");

/** "May 3, 14:05:09" (local time); the year only when it is not this year. */
export function dateTime(ms) {
  const d = new Date(ms);
  const now = new Date();
  const month = d.toLocaleString("en-US", { month: "short" });
  const year = d.getFullYear() === now.getFullYear() ? "" : ` ${d.getFullYear()}`;
  return `${month} ${d.getDate()}${year}, ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function relative(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
  return dateTime(ms);
}

/** Short text for any JSON value (table cells, chips). */
export function brief(value, limit = 80) {
  let s = typeof value === "string" ? value : JSON.stringify(value);
  if (s === undefined) s = String(value);
  return s.length > limit ? s.slice(0, limit) + "…" : s;
}
