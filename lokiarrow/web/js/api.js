// Calls to the server's Loki API. Errors keep the server's own text (Loki answers plain text).

const TENANT_KEY = "lokiarrow.tenant";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function tenant() {
  return localStorage.getItem(TENANT_KEY) || "";
}

export function setTenant(value) {
  if (value) localStorage.setItem(TENANT_KEY, value);
  else localStorage.removeItem(TENANT_KEY);
}

function headers(extra = {}) {
  const h = { ...extra };
  if (tenant()) h["X-Scope-OrgID"] = tenant();
  return h;
}

// The API lives beside the page: a page served under a prefix (behind a gateway) keeps it.
export function apiUrl(path, params = {}) {
  const url = new URL("loki/api/v1/" + path, document.baseURI);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
  return url;
}

export async function get(path, params, { signal, flags } = {}) {
  const extra = flags ? { "X-Loki-Response-Encoding-Flags": flags } : {};
  let response;
  try {
    response = await fetch(apiUrl(path, params), { headers: headers(extra), signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `cannot reach the server: ${err.message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text.trim() || response.statusText);
  return JSON.parse(text);
}

export const labelNames = (start, end, opts) => get("labels", { start, end }, opts).then((r) => r.data || []);
export const labelValues = (name, start, end, opts) =>
  get(`label/${encodeURIComponent(name)}/values`, { start, end }, opts).then((r) => r.data || []);

// The tail's WebSocket URL. Browsers cannot set headers on a WebSocket: behind a gateway, its
// authentication names the tenant; on a server with auth on and no gateway, tails need a tenant header.
export function tailUrl(params) {
  const url = apiUrl("tail", params);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}
