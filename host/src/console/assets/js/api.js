// The console's two credentials and its calls. Shop views use an admin's token pair
// (POST /api/v1/auth/login; refreshed once on a 401), plugin views the operator token
// (the /admin API). Both live in sessionStorage: they end with the browser tab.

const ADMIN_KEY = "kirana.console.admin";
const OPERATOR_KEY = "kirana.console.operator";

/** A failed call, with the API's error `code`; `status` 0 when the host was not reached. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
  /** The plugin behind the route is disabled, down, too slow, or not installed. */
  get unavailable() {
    return (
      this.status === 0 ||
      this.status === 503 ||
      this.status === 504 ||
      this.code === "plugin_unavailable" ||
      this.code === "plugin_timeout" ||
      (this.status === 404 && this.code === "not_found" && /^no route /.test(this.message))
    );
  }
}

/** A view was opened without the credential it needs: `which` is "admin" or "operator". */
export class MissingCredential extends Error {
  constructor(which) {
    super(which === "admin" ? "This view needs an admin sign-in." : "This view needs the operator token.");
    this.which = which;
  }
}

/** The admin's session `{access_token, refresh_token, user}`, or null. */
export function adminSession() {
  try {
    return JSON.parse(sessionStorage.getItem(ADMIN_KEY) || "null");
  } catch {
    return null;
  }
}

/** The operator token, or null. */
export function operatorToken() {
  return sessionStorage.getItem(OPERATOR_KEY) || null;
}

const listeners = new Set();
/** Calls `fn()` whenever a credential changes. */
export function onCredentials(fn) {
  listeners.add(fn);
}
function changed() {
  listeners.forEach((fn) => fn());
}

export function saveAdmin(pair) {
  const old = adminSession();
  const s = { access_token: pair.access_token, refresh_token: pair.refresh_token, user: pair.user || (old && old.user) };
  sessionStorage.setItem(ADMIN_KEY, JSON.stringify(s));
  changed();
}

export function saveOperator(token) {
  sessionStorage.setItem(OPERATOR_KEY, token);
  changed();
}

/** Forgets both credentials (and ends the admin's session on the server, best effort). */
export async function signOut() {
  const s = adminSession();
  sessionStorage.removeItem(ADMIN_KEY);
  sessionStorage.removeItem(OPERATOR_KEY);
  changed();
  if (s) {
    try {
      await send("POST", "/api/v1/auth/logout", { token: s.access_token });
    } catch {
      // The tokens are gone from this tab either way.
    }
  }
}

/** One HTTP call. `opts.json` is sent as JSON, `opts.raw` (a Blob) as `opts.type`. */
async function send(method, path, opts = {}) {
  const headers = { accept: "application/json" };
  let body;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers["content-type"] = opts.type || "application/octet-stream";
  } else if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["content-type"] = "application/json";
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "network", "The host cannot be reached.");
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

let refreshing = null;
/** Trades the refresh token for a new pair once, however many calls saw a 401. */
function refresh() {
  const s = adminSession();
  if (!s || !s.refresh_token) return Promise.resolve(false);
  if (!refreshing) {
    refreshing = send("POST", "/api/v1/auth/refresh", { json: { refresh_token: s.refresh_token } })
      .then((pair) => {
        saveAdmin(pair);
        return true;
      })
      .catch(() => {
        sessionStorage.removeItem(ADMIN_KEY);
        changed();
        return false;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** Calls the shop's API as the signed-in admin (one refresh and retry on a 401). */
export async function shop(path, opts = {}) {
  const s = adminSession();
  if (!s) throw new MissingCredential("admin");
  const method = opts.method || "GET";
  try {
    return await send(method, path, { ...opts, token: s.access_token });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    if (!(await refresh())) throw new MissingCredential("admin");
    return send(method, path, { ...opts, token: adminSession().access_token });
  }
}

/** Calls the operator API (`/admin/...`) with the operator token. */
export async function operator(path, opts = {}) {
  const token = operatorToken();
  if (!token) throw new MissingCredential("operator");
  return send(opts.method || "GET", path, { ...opts, token });
}

/** Logs an admin in; refuses an account that is not an admin. */
export async function login(email, password) {
  const pair = await send("POST", "/api/v1/auth/login", { json: { email, password } });
  if (!pair.user || pair.user.role !== "admin") {
    throw new ApiError(403, "forbidden", `${email} is not an admin account; the console's shop views need one.`);
  }
  saveAdmin(pair);
  return pair.user;
}

/** Checks an operator token against the operator API before keeping it. */
export async function checkOperator(token) {
  await send("GET", "/admin/plugins", { token });
  saveOperator(token);
}

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  }
  const s = u.toString();
  return s ? "?" + s : "";
}
