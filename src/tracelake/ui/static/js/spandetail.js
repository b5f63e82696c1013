// The selected span: header, error and exceptions, token usage, inputs and outputs (a chat
// is drawn as a conversation), attributes and events.
import { chatOf, renderChat } from "./chat.js";
import { h, typeIcon } from "./dom.js";
import { compact, cost, duration } from "./format.js";
import { jsonView } from "./jsonview.js";

function section(title, body, { open = true, extra = null } = {}) {
  const d = h("details", { class: "section", open }, h("summary", null, h("span", null, title), extra), body);
  return d;
}

function valueView(v) {
  if (v === null || v === undefined) return h("div", { class: "muted small" }, "none");
  if (typeof v === "string") return h("pre", { class: "text-block" }, v);
  return jsonView(v, { open: 2 });
}

function exceptionsOf(span) {
  return span.events.filter((e) => e.name === "exception").map((e) => ({
    type: e.attributes["exception.type"], message: e.attributes["exception.message"],
    stack: e.attributes["exception.stacktrace"], offset: e.offset,
  }));
}

export function renderDetail(span, row) {
  const frag = [];
  const us = span.dur;
  frag.push(h("div", { class: "detail-head" },
    h("div", { class: "detail-title" }, typeIcon(span.type), h("h2", null, span.name),
      h("span", { class: `state state-${span.status === "ERROR" ? "ERROR" : span.status === "OK" ? "OK" : "UNSET"}` }, span.status)),
    h("div", { class: "detail-facts muted small" },
      h("span", { class: "type-label" }, span.type), " · ", duration(us === null ? null : us / 1000),
      row ? ` · starts at +${duration(row.offsetMs)}` : "", span.model ? ` · ${span.model}` : "",
      " · ", h("span", { class: "mono", title: "span id" }, span.id))));

  const exceptions = exceptionsOf(span);
  if (span.status === "ERROR" || exceptions.length) {
    const box = h("div", { class: "error-box", role: "note" });
    if (span.status_message) box.appendChild(h("div", { class: "error-message" }, span.status_message));
    for (const ex of exceptions) {
      box.appendChild(h("div", { class: "exception" },
        h("div", { class: "exception-head" }, h("strong", null, ex.type || "Exception"), ex.message ? `: ${ex.message}` : ""),
        ex.stack ? h("pre", { class: "stack" }, ex.stack) : null));
    }
    frag.push(box);
  }

  if (span.input_tokens !== null || span.output_tokens !== null || span.total_tokens !== null || span.cost !== null) {
    frag.push(h("dl", { class: "usage" },
      h("div", null, h("dt", null, "Input tokens"), h("dd", null, compact(span.input_tokens))),
      h("div", null, h("dt", null, "Output tokens"), h("dd", null, compact(span.output_tokens))),
      h("div", null, h("dt", null, "Total"), h("dd", null, compact(span.total_tokens ?? ((span.input_tokens || 0) + (span.output_tokens || 0))))),
      h("div", null, h("dt", null, "Cost"), h("dd", null, cost(span.cost)))));
  }

  const chat = chatOf(span.inputs, span.outputs);
  if (chat) {
    const raw = h("div", { class: "raw", hidden: true },
      h("h4", null, "Inputs"), valueView(span.inputs), h("h4", null, "Outputs"), valueView(span.outputs));
    const conv = renderChat(chat, valueView);
    const toggle = h("button", { type: "button", class: "linkish small", onclick: (e) => {
      e.preventDefault();
      raw.hidden = !raw.hidden;
      conv.hidden = !raw.hidden;
      toggle.textContent = raw.hidden ? "JSON" : "Conversation";
    } }, "JSON");
    frag.push(section("Conversation", h("div", null, conv, raw), { extra: toggle }));
  } else {
    frag.push(section("Inputs", valueView(span.inputs)));
    frag.push(section("Outputs", valueView(span.outputs)));
  }
  const attrs = span.attributes || {};
  const n = Object.keys(attrs).length;
  frag.push(section(`Attributes (${n})`, n ? jsonView(attrs, { open: 1 }) : h("div", { class: "muted small" }, "none"), { open: n > 0 && n <= 30 }));
  const events = span.events.filter((e) => e.name !== "exception");
  if (events.length) {
    frag.push(section(`Events (${events.length})`, h("ol", { class: "events" }, events.map((e) =>
      h("li", null, h("div", null, h("strong", null, e.name), h("span", { class: "muted small" }, ` +${duration(e.offset / 1000)}`)),
        Object.keys(e.attributes).length ? jsonView(e.attributes, { open: 1 }) : null)))));
  }
  return frag;
}
