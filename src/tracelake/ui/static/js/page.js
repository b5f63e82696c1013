// Runs on every page: server-rendered <time data-ms> elements shown in local time.
import { dateTime, relative } from "./format.js";

export function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-ms]")) {
    const ms = Number(el.dataset.ms);
    if (!Number.isFinite(ms)) continue;
    el.dateTime = new Date(ms).toISOString();
    el.title = new Date(ms).toLocaleString();
    el.textContent = "relative" in el.dataset ? relative(ms) : dateTime(ms);
  }
}

localizeTimes();
