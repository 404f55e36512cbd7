// The dashboard's JSON API (docs/dashboard.md), relative to the page at /dashboard/.

export class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

/** The API answered 401: the page shows the login form. */
export class Unauthorized extends ApiError {}

/** GET api/v1/<path>?<params>; params with null/undefined values are left out. */
export async function api(path, params = {}) {
  const url = new URL(`api/v1/${path}`, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, String(v));
  }
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (exc) {
    throw new ApiError(0, `cannot reach the aisre server (${exc.message}); is it still running?`);
  }
  if (response.ok) return response.json();
  const { message, param } = await errorOf(response);
  if (response.status === 401) throw new Unauthorized(401, message, param);
  throw new ApiError(response.status, message, param);
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return { message: body.error.message, param: body.error.param };
  } catch {
    // not JSON: fall through to the status line
  }
  return { message: `${response.status} ${response.statusText}` };
}

/** URL of a page the API renders itself (the HTML drift report). */
export function apiUrl(path, params = {}) {
  const url = new URL(`api/v1/${path}`, document.baseURI);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) url.searchParams.set(k, String(v));
  return url.pathname + url.search;
}

/** POST login with the admin key (form field `key`); the server sets the session cookie. */
export async function login(key) {
  const body = new URLSearchParams({ key });
  let response;
  try {
    response = await fetch(new URL("login", document.baseURI), {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  } catch (exc) {
    throw new ApiError(0, `cannot reach the aisre server (${exc.message})`);
  }
  if (!response.ok) {
    const { message } = await errorOf(response);
    throw new ApiError(response.status, message || "the key was not accepted");
  }
}

/** POST logout: the server clears the session cookie. */
export async function logout() {
  await fetch(new URL("logout", document.baseURI), { method: "POST", credentials: "same-origin" });
}
