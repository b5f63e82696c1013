// Building DOM safely: every piece of data becomes a text node or an attribute value,
// never markup. There is no innerHTML anywhere in the UI.

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("a", {href, class: "x", onclick: fn}, "text", child) -> element */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** An icon from the page's sprite: <svg class="icon"><use href="#i-NAME"/></svg>. */
export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", "#i-" + name);
  svg.appendChild(use);
  return svg;
}

const KNOWN_TYPES = new Set(["LLM", "CHAT_MODEL", "RETRIEVER", "TOOL", "AGENT", "CHAIN", "EMBEDDING", "RERANKER",
  "PARSER", "MEMORY", "GUARDRAIL", "EVALUATOR", "UNKNOWN"]);

export function typeIcon(type) {
  return icon("type-" + (KNOWN_TYPES.has(type) ? type : "UNKNOWN"), "icon type-icon t-" + (KNOWN_TYPES.has(type) ? type : "UNKNOWN"));
}

export function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function pageData() {
  const node = document.getElementById("page-data");
  return node ? JSON.parse(node.textContent) : {};
}

let toastTimer = 0;
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}
