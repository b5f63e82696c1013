// Chat messages in span inputs/outputs (OpenAI, Anthropic, OpenTelemetry GenAI shapes)
// normalised to {role, text, toolCalls[], toolCallId} and drawn as a conversation.
import { h, icon } from "./dom.js";

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    const parts = content.map((p) => {
      if (typeof p === "string") return p;
      if (p && typeof p === "object") {
        if (typeof p.text === "string") return p.text;
        if (typeof p.content === "string" && p.type !== "tool_call_response") return p.content;
        if (p.type === "tool_result") return textOf(p.content);
      }
      return null;
    }).filter((x) => x !== null);
    return parts.length ? parts.join("\n") : null;
  }
  return null;
}

function parseArgs(args) {
  if (typeof args !== "string") return args;
  try { return JSON.parse(args); } catch { return args; }
}

function toolCallsOf(m) {
  const calls = [];
  for (const c of m.tool_calls || []) {
    const fn = c.function || c;
    calls.push({ id: c.id, name: fn.name || "tool", args: parseArgs(fn.arguments ?? fn.args ?? fn.input) });
  }
  const parts = Array.isArray(m.content) ? m.content : Array.isArray(m.parts) ? m.parts : [];
  for (const p of parts) {
    if (p && (p.type === "tool_use" || p.type === "tool_call")) calls.push({ id: p.id, name: p.name || "tool", args: parseArgs(p.input ?? p.arguments) });
  }
  return calls;
}

function isMessage(m) {
  return m && typeof m === "object" && typeof m.role === "string";
}

function normalise(m) {
  let text = textOf(m.content);
  if (text === null && Array.isArray(m.parts)) {
    text = textOf(m.parts.map((p) => (p && p.type === "tool_call_response" ? { text: typeof p.response === "string" ? p.response : JSON.stringify(p.response) } : p)));
  }
  const toolResult = Array.isArray(m.content) ? m.content.find((p) => p && p.type === "tool_result") : null;
  return { role: toolResult ? "tool" : m.role, name: m.name, text, toolCalls: toolCallsOf(m),
    toolCallId: m.tool_call_id || (toolResult && toolResult.tool_use_id) };
}

function messagesIn(value) {
  if (Array.isArray(value) && value.length && value.every(isMessage)) return value;
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const key of ["messages", "input", "inputs"]) {
      const v = value[key];
      if (Array.isArray(v) && v.length && v.every(isMessage)) return v;
    }
  }
  return null;
}

function outputMessages(value) {
  if (!value || typeof value !== "object") return null;
  if (Array.isArray(value.choices) && value.choices.length && value.choices[0] && isMessage(value.choices[0].message)) {
    return [value.choices[0].message];
  }
  if (isMessage(value) && ("content" in value || "tool_calls" in value || "parts" in value)) return [value];
  return messagesIn(value);
}

/** The conversation in a span's inputs and outputs, or null when it is not a chat. */
export function chatOf(inputs, outputs) {
  const input = messagesIn(inputs);
  if (!input) return null;
  const out = [];
  if (inputs && typeof inputs.system === "string") out.push({ role: "system", text: inputs.system, toolCalls: [] });
  for (const m of input) out.push(normalise(m));
  const answer = outputMessages(outputs);
  const firstOutput = out.length;
  if (answer) for (const m of answer) out.push(normalise(m));
  else if (typeof outputs === "string") out.push({ role: "assistant", text: outputs, toolCalls: [] });
  return { messages: out, firstOutput };
}

export function renderChat(chat, renderValue) {
  const list = h("ol", { class: "chat" });
  chat.messages.forEach((m, i) => {
    if (i === chat.firstOutput && i > 0) list.appendChild(h("li", { class: "chat-divider" }, "response"));
    const role = (m.role || "unknown").toLowerCase();
    const body = h("div", { class: "chat-body" });
    if (m.text !== null && m.text !== undefined && m.text !== "") body.appendChild(h("div", { class: "chat-text" }, m.text));
    for (const call of m.toolCalls) {
      body.appendChild(h("div", { class: "tool-call" },
        h("div", { class: "tool-call-head" }, icon("type-TOOL"), h("span", { class: "mono" }, call.name),
          call.id ? h("span", { class: "muted small" }, " " + call.id) : null),
        renderValue(call.args)));
    }
    if (!body.firstChild) body.appendChild(h("div", { class: "muted small" }, "(empty)"));
    list.appendChild(h("li", { class: `chat-msg role-${role.replace(/[^a-z_]/g, "")}` },
      h("div", { class: "chat-role" }, role, m.name ? ` · ${m.name}` : "", m.toolCallId ? ` · ${m.toolCallId}` : ""), body));
  });
  return list;
}
