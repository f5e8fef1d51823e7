/**
 * Outgoing HTTP to the origins the action grants (`capabilities.http`), synchronous.
 *
 * Built on the `wasi:http/outgoing-handler` import directly, not on `fetch`, so that the host's
 * refusal arrives as its error code (`HTTP-request-denied`, `destination-IP-prohibited`) and
 * becomes `http.Denied` naming the URL, and so that it works from any code, async or not
 * (`await` on the result is harmless). The host adds the grant's headers (credentials) after
 * the request leaves the plugin: do not set them yourself, and expect never to see them.
 */
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest, OutgoingBody, IncomingBody } from 'wasi:http/types@0.2.12';
import { Denied as DeniedFailure, Failed } from './failure.js';

/** The host refused the request: the origin is not granted, or it resolves to a private address. */
export class Denied extends DeniedFailure {}

/** The request could not be sent or its response not read (a bad URL, a refused connection). */
export class HttpError extends Failed {
  /** @param {string} message @param {unknown} [code] the wasi:http `error-code`, if any */
  constructor(message, code) {
    super(`HTTP request failed: ${message}`);
    this.code = code;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const METHODS = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];

/** `{tag, val}` error code as text, e.g. `connection-refused` or `DNS-error(...)`. */
function codeText(code) {
  if (code == null || typeof code !== 'object') return String(code);
  return code.val === undefined ? code.tag : `${code.tag}(${JSON.stringify(code.val)})`;
}

/** The wasi:http error code carried by a thrown value or a `{tag: 'err'}` result, as an error. */
function failure(code, url) {
  switch (code?.tag) {
    case 'HTTP-request-denied':
      return new Denied(
        `the host denied the request to ${url}: its origin is not granted (add it to the action's capabilities.http)`,
      );
    case 'destination-IP-prohibited':
      return new Denied(`the host denied the request to ${url}: the destination address is not allowed`);
    default:
      return new HttpError(`${url}: ${codeText(code)}`, code);
  }
}

/** Runs `fn`; a thrown wasi:http error code (componentize-js puts it in `payload`) becomes ours. */
function wasi(url, fn) {
  try {
    return fn();
  } catch (e) {
    if (e !== null && typeof e === 'object' && 'payload' in e) {
      const p = e.payload;
      // Stream errors wrap the code in `last-operation-failed`; `closed` means the peer left.
      if (p?.tag === 'closed') throw new HttpError(`${url}: the connection closed early`);
      if (p?.tag === 'last-operation-failed') throw new HttpError(`${url}: ${p.val?.toDebugString?.() ?? 'I/O error'}`);
      throw failure(p, url);
    }
    throw e;
  }
}

/** Waits for a pollable and drops it. */
function block(pollable) {
  pollable.block();
  pollable[Symbol.dispose]();
}

function writeAll(stream, bytes, url) {
  let offset = 0;
  while (offset < bytes.length) {
    const room = Number(wasi(url, () => stream.checkWrite()));
    if (room === 0) {
      block(stream.subscribe());
      continue;
    }
    const chunk = bytes.subarray(offset, offset + Math.min(room, bytes.length - offset));
    wasi(url, () => stream.write(chunk));
    offset += chunk.length;
  }
  wasi(url, () => stream.blockingFlush());
}

function readAll(stream, url) {
  const chunks = [];
  let size = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (e) {
      if (e?.payload?.tag === 'closed') break;
      wasi(url, () => {
        throw e;
      });
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return body;
}

/**
 * A response, read in full.
 * @property {number} status
 * @property {Record<string, string>} headers names lower-case; repeated headers joined by `, `
 * @property {Uint8Array} body
 * @property {boolean} ok whether the status is 2xx
 */
export class Response {
  constructor(url, status, headers, body) {
    this.url = url;
    this.status = status;
    this.headers = headers;
    this.body = body;
    this.ok = status >= 200 && status < 300;
  }

  /** The body as text (UTF-8, invalid bytes replaced). */
  text() {
    return decoder.decode(this.body);
  }

  /** The body parsed as JSON; throws `HttpError` when it is not JSON. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw new HttpError(`${this.url}: the response body is not JSON (${e.message})`);
    }
  }
}

/**
 * Sends a request and reads the whole response. Any status is a response (check `ok`); only a
 * refusal (`http.Denied`) or a transport problem (`http.HttpError`, a `Failed`) throws.
 * @param {string} method e.g. `GET`, `POST`, `PATCH`
 * @param {string} url an absolute `http://` or `https://` URL
 * @param {{headers?: Record<string, string>, body?: string | Uint8Array, json?: unknown}} [options]
 *   `json` sets the body to that value as JSON, with `content-type: application/json`.
 * @returns {Response}
 */
export function request(method, url, options = {}) {
  url = String(url);
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpError(`${url}: not an absolute URL`);
  }
  const headers = Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]);
  let body = options.body ?? new Uint8Array();
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    if (!headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'application/json']);
  }
  if (typeof body === 'string') body = encoder.encode(body);

  let fields;
  try {
    fields = Fields.fromList(headers.map(([k, v]) => [k, encoder.encode(v)]));
  } catch (e) {
    throw new HttpError(`${url}: invalid header (${codeText(e?.payload)})`);
  }
  const req = new OutgoingRequest(fields);
  const m = String(method).toLowerCase();
  req.setMethod(METHODS.includes(m) ? { tag: m } : { tag: 'other', val: String(method) });
  const scheme = parsed.protocol.slice(0, -1);
  req.setScheme(scheme === 'http' ? { tag: 'HTTP' } : scheme === 'https' ? { tag: 'HTTPS' } : { tag: 'other', val: scheme });
  req.setAuthority(parsed.host);
  req.setPathWithQuery(parsed.pathname + parsed.search);

  const outgoing = req.body();
  const future = wasi(url, () => handle(req, undefined));
  const stream = outgoing.write();
  writeAll(stream, body, url);
  stream[Symbol.dispose]();
  wasi(url, () => OutgoingBody.finish(outgoing, undefined));

  block(future.subscribe());
  // option<result<result<incoming-response, error-code>, _>>: only the top level of a function's
  // result is turned into a throw; nested results stay `{tag, val}`.
  const got = future.get();
  future[Symbol.dispose]();
  if (got?.tag !== 'ok') throw new HttpError(`${url}: no response`);
  if (got.val.tag !== 'ok') throw failure(got.val.val, url);
  const response = got.val.val;

  const status = response.status();
  const fieldsIn = response.headers();
  const headersOut = {};
  for (const [k, v] of fieldsIn.entries()) {
    const name = k.toLowerCase();
    const value = decoder.decode(v);
    headersOut[name] = name in headersOut ? `${headersOut[name]}, ${value}` : value;
  }
  fieldsIn[Symbol.dispose]();
  const incoming = response.consume();
  const input = incoming.stream();
  const bytes = readAll(input, url);
  input[Symbol.dispose]();
  IncomingBody.finish(incoming)[Symbol.dispose]();
  response[Symbol.dispose]();
  return new Response(url, status, headersOut, bytes);
}

/** GET `url`. */
export const get = (url, options) => request('GET', url, options);
/** POST `url`; pass `{json}` or `{body}`. */
export const post = (url, options) => request('POST', url, options);
/** PUT `url`; pass `{json}` or `{body}`. */
export const put = (url, options) => request('PUT', url, options);
/** PATCH `url`; pass `{json}` or `{body}`. */
export const patch = (url, options) => request('PATCH', url, options);
/** DELETE `url`. */
const del = (url, options) => request('DELETE', url, options);
export { del as delete };
