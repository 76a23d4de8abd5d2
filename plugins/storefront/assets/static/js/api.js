// The REST API as the pages use it: JSON in and out, the session's tokens kept in
// localStorage, one refresh (and one retry) when an access token has expired, and
// every failure as an ApiError carrying the API's error code.

const KEY = "kirana.session";

/** A failed call: `status` 0 when the shop could not be reached at all. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
  /** The plugin behind the route is disabled, down or too slow. */
  get unavailable() {
    return this.status === 0 || this.status === 503 || this.status === 504 || this.code === "plugin_unavailable";
  }
}

/** The signed-in session `{access_token, refresh_token, user}`, or null. */
export function session() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

const listeners = new Set();
/** Calls `fn(session)` whenever the session changes (sign-in, refresh, sign-out). */
export function onSession(fn) {
  listeners.add(fn);
}

export function saveSession(pair) {
  const old = session();
  const s = { access_token: pair.access_token, refresh_token: pair.refresh_token, user: pair.user || (old && old.user) };
  localStorage.setItem(KEY, JSON.stringify(s));
  listeners.forEach((fn) => fn(s));
  return s;
}

export function clearSession() {
  localStorage.removeItem(KEY);
  listeners.forEach((fn) => fn(null));
}

let refreshing = null;
/** Rotates the refresh token once, however many calls found the token expired. */
function refresh() {
  const s = session();
  if (!s || !s.refresh_token) return Promise.resolve(false);
  if (!refreshing) {
    refreshing = send("POST", "/api/v1/auth/refresh", { refresh_token: s.refresh_token }, null, {})
      .then((pair) => {
        saveSession(pair);
        return true;
      })
      .catch(() => {
        clearSession();
        return false;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

async function send(method, path, body, token, headers) {
  const h = { accept: "application/json", ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  if (token) h.authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "The shop cannot be reached. Check your connection.");
  }
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, e.code || "http_" + resp.status, e.message || resp.statusText || "request failed", e.details);
  }
  return data;
}

/**
 * Calls the API. `opts.auth` sends the access token (refreshing it once on a 401);
 * `opts.idempotencyKey` makes a retried checkout safe.
 */
export async function api(path, opts = {}) {
  const method = opts.method || "GET";
  const headers = {};
  if (opts.idempotencyKey) headers["idempotency-key"] = opts.idempotencyKey;
  const s = opts.auth ? session() : null;
  if (opts.auth && !s) throw new ApiError(401, "unauthorized", "Please sign in first.");
  try {
    return await send(method, path, opts.body, s && s.access_token, headers);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401 || !opts.auth) throw e;
    if (!(await refresh())) throw new ApiError(401, "unauthorized", "Your session ended. Please sign in again.");
    return send(method, path, opts.body, session().access_token, headers);
  }
}

/** A fresh access token (refreshed when the current one was refused), for EventSource. */
export async function freshToken() {
  const s = session();
  if (!s) return null;
  try {
    await api("/api/v1/auth/me", { auth: true }).then((user) => {
      const cur = session();
      if (cur) localStorage.setItem(KEY, JSON.stringify({ ...cur, user }));
    });
  } catch (e) {
    if (e.status === 401) return null;
  }
  const cur = session();
  return cur && cur.access_token;
}

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "" && v !== false) u.set(k, String(v));
  }
  const s = u.toString();
  return s ? "?" + s : "";
}
