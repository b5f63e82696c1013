// Pretty, collapsible JSON. Children are built only when their node is opened, long
// arrays in chunks and long strings clipped, so a 10 MB payload opens instantly.
import { h } from "./dom.js";

const CHUNK = 100;
const CLIP = 600;

export function jsonView(value, { open = 2 } = {}) {
  return h("div", { class: "json" }, node(null, value, 0, open));
}

function node(key, value, depth, open) {
  if (value !== null && typeof value === "object") return branch(key, value, depth, open);
  return h("div", { class: "j-row" }, keyLabel(key), scalar(value));
}

function keyLabel(key) {
  if (key === null) return null;
  return h("span", { class: "j-key" }, typeof key === "number" ? `${key}` : `${key}`, h("span", { class: "j-colon" }, ": "));
}

function scalar(value) {
  if (value === null) return h("span", { class: "j-null" }, "null");
  if (typeof value === "string") return stringNode(value);
  if (typeof value === "number") return h("span", { class: "j-num" }, String(value));
  if (typeof value === "boolean") return h("span", { class: "j-bool" }, String(value));
  return h("span", null, String(value));
}

function stringNode(s) {
  const el = h("span", { class: "j-str" });
  if (s.length <= CLIP) {
    el.textContent = s;
    return el;
  }
  el.textContent = s.slice(0, CLIP) + "…";
  const more = h("button", { type: "button", class: "linkish", onclick: (e) => { el.textContent = s; e.target.remove(); } },
    ` show all ${s.length.toLocaleString("en-US")} characters`);
  return h("span", null, el, more);
}

function branch(key, value, depth, open) {
  const isArray = Array.isArray(value);
  const keys = isArray ? null : Object.keys(value);
  const size = isArray ? value.length : keys.length;
  const summaryText = isArray ? `[${size}]` : `{${size}}`;
  if (size === 0) return h("div", { class: "j-row" }, keyLabel(key), h("span", { class: "j-punct" }, isArray ? "[]" : "{}"));
  const details = h("details", { class: "j-branch" });
  details.appendChild(h("summary", null, keyLabel(key), h("span", { class: "j-punct" }, summaryText),
    h("span", { class: "j-peek" }, " " + peek(value, isArray, keys))));
  const body = h("div", { class: "j-children" });
  details.appendChild(body);
  let shown = 0;
  const renderMore = () => {
    const stop = Math.min(size, shown + CHUNK);
    const frag = document.createDocumentFragment();
    for (let i = shown; i < stop; i++) {
      frag.appendChild(isArray ? node(i, value[i], depth + 1, open) : node(keys[i], value[keys[i]], depth + 1, open));
    }
    shown = stop;
    const old = body.querySelector(":scope > .j-more");
    if (old) old.remove();
    body.appendChild(frag);
    if (shown < size) {
      body.appendChild(h("button", { type: "button", class: "linkish j-more", onclick: renderMore },
        `show ${Math.min(CHUNK, size - shown)} more of ${size - shown}`));
    }
  };
  details.addEventListener("toggle", () => { if (details.open && shown === 0) renderMore(); });
  if (depth < open) { details.open = true; renderMore(); }
  return details;
}

function peek(value, isArray, keys) {
  if (isArray) return "";
  const names = keys.slice(0, 4).join(", ");
  return keys.length > 4 ? names + ", …" : names;
}
