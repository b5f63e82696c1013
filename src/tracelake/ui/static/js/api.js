// fetch() wrappers: JSON in, JSON out, and errors as ApiError with the server's message.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error_code;
    this.position = body && body.position;
    this.reason = body && body.reason;
  }
}

function withParams(url, params) {
  if (!params) return url;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `${url}?${s}` : url;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// The signed-in session's CSRF token (rendered into <meta name="csrf-token"> when auth is on);
// null without auth, when no header is needed.
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return (meta && meta.content) || null;
}

// Headers for a request: every unsafe one (POST/PATCH/DELETE/PUT) carries X-CSRF-Token.
export function requestHeaders(method, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  const token = csrfToken();
  if (token && !SAFE_METHODS.has(method.toUpperCase())) headers["X-CSRF-Token"] = token;
  return headers;
}

async function request(method, url, { params, body, signal } = {}) {
  const init = { method, headers: requestHeaders(method), signal, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(withParams(url, params), init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (url, params, signal) => request("GET", url, { params, signal });
export const post = (url, body) => request("POST", url, { body });
export const patch = (url, body) => request("PATCH", url, { body });
export const del = (url, body) => request("DELETE", url, { body });
