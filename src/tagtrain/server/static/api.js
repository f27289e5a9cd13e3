// One way to call the REST API. Every request carries the session's CSRF token (rendered into
// the page's <meta name="csrf-token">); every failure becomes an ApiError whose message is the
// server's own sentence, ready to show to a person.

export const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

const OFFLINE = "The server cannot be reached. Check that tagtrain is still running, then try again.";

/** The readable message of a failed response: the API's `detail`, else the HTTP status. */
export async function errorFrom(res) {
  let detail = "";
  try {
    const body = await res.json();
    if (typeof body?.detail === "string") detail = body.detail;
    else if (body?.detail) detail = JSON.stringify(body.detail);
  } catch {
    detail = ""; // not JSON: a proxy's or the server's plain error page
  }
  if (res.status === 401) {
    return new ApiError(`Your session has ended: log in again. (${detail || "not logged in"})`, 401);
  }
  if (!detail && res.status >= 500) {
    detail = `the server failed (${res.status} ${res.statusText || "error"}); its log says why`;
  }
  const what = detail || `${res.status} ${res.statusText || "error"}`;
  return new ApiError(what.charAt(0).toUpperCase() + what.slice(1), res.status);
}

/**
 * Call the API. `query` is a URLSearchParams or plain object; `body` is JSON unless it is FormData.
 * Resolves to the parsed JSON answer; rejects with ApiError.
 */
export async function api(path, { method = "GET", query, body, signal } = {}) {
  const url = new URL(path, location.origin);
  if (query) url.search = new URLSearchParams(query).toString();
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const init = { method, headers, credentials: "same-origin", signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(OFFLINE);
  }
  if (!res.ok) throw await errorFrom(res);
  return res.status === 204 ? null : res.json();
}

/**
 * POST a FormData with upload progress (fetch cannot report it). `onProgress(fraction)` is called
 * as bytes go out. Resolves to the parsed JSON answer; rejects with ApiError.
 */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError(OFFLINE));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
      // An upload whose every file was refused answers 422 with the usual per-file report.
      if (xhr.status === 422 && Array.isArray(xhr.response?.rejected)) return resolve(xhr.response);
      const res = new Response(xhr.response === null ? "" : JSON.stringify(xhr.response), {
        status: xhr.status,
        statusText: xhr.statusText,
      });
      errorFrom(res).then(reject);
    };
    xhr.send(form);
  });
}

/** Same as `name.split()` joined by one space: the server's tag normalisation of whitespace. */
export const cleanTag = (name) => name.split(/\s+/).filter(Boolean).join(" ");

export const plural = (n, word, many = `${word}s`) =>
  `${n.toLocaleString("en-US")} ${n === 1 ? word : many}`;
