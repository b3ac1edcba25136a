// The console is a client of the public API. The API key lives in sessionStorage only: it is
// gone when the tab closes, is never put in a cookie or a URL, and is sent as a Bearer token.

const KEY = 'caravan.apiKey';

export class Unauthorized extends Error {}

export class Throttled extends Error {}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  signIn(key) {
    sessionStorage.setItem(KEY, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
  },
};

let onUnauthorized = () => {};

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** Calls /api/v1/<path>. A 401 signs out and throws Unauthorized; a 429 throws Throttled. */
export async function api(path, { method = 'GET', body, headers = {}, accept = 'application/json' } = {}) {
  const sent = { Authorization: `Bearer ${session.key ?? ''}`, Accept: accept, ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  const response = await fetch(`/api/v1/${path}`, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  if (response.status === 401 || response.status === 429) {
    refuse(response.status, await readJson(response), response.headers.get('Retry-After'));
  }
  return response;
}

/** The answers every route may give whatever was asked: a 401 signs out, a 429 says when to retry. */
function refuse(status, body, retryAfter) {
  if (status === 401) {
    const detail = body?.detail;
    session.signOut();
    onUnauthorized(detail);
    throw new Unauthorized(detail ?? 'Unauthorized');
  }
  throw new Throttled(`Too many requests with this API key; try again in ${retryAfter ?? 'a few'} seconds.`);
}

export async function readJson(response) {
  return parseJson(await response.text());
}

/** A JSON body, or null when there is none or it is not JSON (an HTML error page of a proxy is never shown). */
function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export class NetworkError extends Error {}

/**
 * POSTs a multipart form to /api/v1/<path> with XMLHttpRequest: fetch cannot report how much of a
 * request body was sent, XMLHttpRequest can. onProgress(loaded, total) follows the bytes as they
 * go; onSent() comes once all are sent, when the server still has to store them before it answers.
 * Answers { status, body } (body: the JSON answer, or null). A 401 signs out and throws
 * Unauthorized, a 429 throws Throttled, a connection lost before the answer throws NetworkError.
 * No cookie is involved: the console has none, and the key goes as a Bearer token as with fetch.
 */
export function upload(path, form, { onProgress = () => {}, onSent = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', `/api/v1/${path}`);
    request.setRequestHeader('Authorization', `Bearer ${session.key ?? ''}`);
    request.setRequestHeader('Accept', 'application/json');
    // Listeners on request.upload must be added before send(), or no progress is reported.
    request.upload.addEventListener('progress', (event) => onProgress(event.loaded, event.lengthComputable ? event.total : null));
    request.upload.addEventListener('load', () => onSent());
    request.addEventListener('load', () => {
      const body = parseJson(request.responseText);
      try {
        if (request.status === 401 || request.status === 429) refuse(request.status, body, request.getResponseHeader('Retry-After'));
        resolve({ status: request.status, body });
      } catch (error) {
        reject(error);
      }
    });
    request.addEventListener('error', () => reject(new NetworkError(
      'The connection was lost before Caravan answered, so the upload may not have been stored. '
      + 'Caravan also closes the connection when a file is over its size limit. Check the sources list before trying again.')));
    request.addEventListener('abort', () => reject(new NetworkError('The upload was cancelled.')));
    request.send(form);
  });
}

/** GET that expects 200 and answers the JSON body with the ETag; other answers throw ApiError. */
export async function getJson(path) {
  const response = await api(path);
  const body = await readJson(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return { body, etag: response.headers.get('ETag') };
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail ?? body?.error ?? `The server answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

/**
 * POSTs a connection test in the streaming mode and calls onLine for every JSON line
 * ({"plan"}, {"step"}, {"report"}) as it arrives. Answers the final report, or throws ApiError.
 */
export async function streamTest(path, body, onLine) {
  const response = await api(path, { method: 'POST', body, accept: 'application/x-ndjson' });
  if (!response.ok) throw new ApiError(response.status, await readJson(response));
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let report = null;
  const take = (line) => {
    if (!line.trim()) return;
    const event = JSON.parse(line);
    if (event.report) report = event.report;
    onLine(event);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      take(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
    }
  }
  take(buffer + decoder.decode());
  return report;
}

let types = null;

/** The connection types and their fields, as the API validates them (GET /api/v1/source-types/). */
export async function sourceTypes() {
  if (!types) types = (await getJson('source-types/')).body.results;
  return types;
}

export function forgetTypes() {
  types = null;
}
