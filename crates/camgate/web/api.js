// The API client: JSON in and out, the API key from sessionStorage, and one place that turns
// a 401 into a prompt for a key. A key is exchanged for a session cookie (POST /auth/session,
// HttpOnly, SameSite=Strict): browsers cannot put headers on WebSockets or <video src>, but
// they send the cookie, so players and sockets work with API keys set.

const KEY = "camgate.apiKey";
let askForKey = null;

export function setKeyPrompt(fn) { askForKey = fn; }
export function apiKey() { return sessionStorage.getItem(KEY) || ""; }
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/**
 * Calls the API. Resolves to {ok, status, data, error} where error is the API's
 * {code, message}; never rejects on an HTTP error. A 401 asks for a key once and retries.
 */
export async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, error: { code: "network", message: "camgate cannot be reached; is it running?" } };
  }
  if (res.status === 401 && !retried && askForKey) {
    let reason = "";
    try { reason = (await res.json()).error.message; } catch (_) { /* no body */ }
    const got = await askForKey(reason);
    if (got) {
      await openSession();
      return api(method, path, body, true);
    }
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (res.ok) return { ok: true, status: res.status, data };
  const error = data && data.error ? data.error : { code: `http_${res.status}`, message: `the server answered ${res.status}` };
  return { ok: false, status: res.status, data, error };
}

/**
 * Trades the stored key for the session cookie that players and sockets carry. Resolves true
 * when the server set it (or needs none: protected mode from this machine answers too).
 */
export async function openSession() {
  const key = apiKey();
  if (!key) return false;
  try {
    const res = await fetch("/auth/session", {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json" },
      body: "{}",
    });
    return res.ok;
  } catch (_) {
    return false;
  }
}

/** Ends the session cookie (and forgets the key). */
export async function closeSession() {
  setApiKey("");
  try { await fetch("/auth/session", { method: "DELETE" }); } catch (_) { /* offline */ }
}

/** ws:// or wss:// URL of a path on this origin. */
export function wsUrl(path) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}
