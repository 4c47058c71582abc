// The /v1 api as the console calls it: every request carries the admin key as a bearer
// token; the key lives in this tab's session storage only, never in a URL.

const KEY = "watchstate.admin-key";

// The api sits beside the page: /lambda-url/api/v1/ locally, /v1/ on AWS.
const base = new URL("v1/", document.baseURI);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (k) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

// `path` is below /v1/, e.g. "users/ana/backends". Resolves to the JSON answer;
// rejects with an ApiError carrying the api's own message.
export async function api(method, path, body, adminKey = key.get()) {
  const init = { method, headers: { Authorization: `Bearer ${adminKey ?? ""}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(new URL(path, base), init);
  } catch (e) {
    throw new ApiError(0, "unreachable", `The api did not answer (${e.message}).`);
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    // An answer that is not JSON (a proxy's error page) keeps json null.
  }
  if (!res.ok) {
    const err = json?.error ?? {};
    throw new ApiError(res.status, err.code ?? "error", err.message ?? `HTTP ${res.status}`);
  }
  return json;
}

export const enc = encodeURIComponent;
