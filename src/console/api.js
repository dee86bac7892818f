// The console's only way out: the public aupd API, with the signed-in
// caller's bearer token. The token lives in sessionStorage (gone when the
// tab closes) and is never put in a URL.

const KEY = 'aupd.console.token';

export const session = {
  token() { return sessionStorage.getItem(KEY); },
  save(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** An error answer from aupd (`{"code", "message"}`) or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls `method path` with an optional JSON body; resolves to the JSON answer. */
export async function api(method, path, body, token = session.token()) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `aupd could not be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const code = data && typeof data.code === 'string' ? data.code : `http_${res.status}`;
    const message = data && typeof data.message === 'string' ? data.message : (res.statusText || 'request failed');
    throw new ApiError(res.status, code, message);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);

/** A path segment, escaped. */
export const seg = (s) => encodeURIComponent(String(s));

/** An error in words for a person. */
export function describe(err) {
  if (!(err instanceof ApiError)) return `Something went wrong in the console: ${err && err.message ? err.message : err}`;
  switch (err.status) {
    case 0: return err.message;
    case 401: return 'Your token was not accepted (it may have been revoked). Sign out and sign in again.';
    case 403: return `Not allowed: ${err.message}.`;
    case 404: return `Not found: ${err.message}.`;
    case 409: return `Refused: ${err.message} (${err.code}). The case may have moved on; reload it to see where it stands.`;
    default: return `${err.message} (${err.code}, HTTP ${err.status}).`;
  }
}
