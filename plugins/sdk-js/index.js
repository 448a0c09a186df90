// The JavaScript plugin SDK: the Rust SDK's essentials (routes bound to handlers, the error
// envelope, JSON bodies, cursor paging, JIDs) so a JS plugin meets the same HTTP contract
// (API.md §1) as a Rust one. Host interfaces live in ./storage.js and ./log.js, imported
// only by plugins whose world imports them.
// @ts-check

/** @typedef {import('wa:gateway/types@0.1.5').Request} WitRequest */
/** @typedef {import('wa:gateway/types@0.1.5').Response} WitResponse */
/** @typedef {import('wa:gateway/types@0.1.5').Route} WitRoute */
/** @typedef {import('wa:gateway/types@0.1.5').Manifest} WitManifest */
/** @typedef {import('wa:gateway/types@0.1.5').Event} WitEvent */
/** @typedef {import('wa:gateway/types@0.1.5').ErrorCode} WitErrorCode */
/** @typedef {import('wa:gateway/types@0.1.5').Capability} Capability */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------------------
// Errors

/** The envelope codes (API.md §1.3), by wire name, with the WIT case each travels as. */
const CODES = /** @type {const} */ ({
  validation_error: 'validation-error',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  not_found: 'not-found',
  method_not_allowed: 'method-not-allowed',
  conflict: 'conflict',
  payload_too_large: 'payload-too-large',
  rate_limited: 'rate-limited',
  internal: 'internal',
  not_implemented: 'not-implemented',
  unavailable: 'unavailable',
});

/** @typedef {keyof typeof CODES} ErrorCode */

/**
 * A failed request, as the caller will see it: `{"error": {"code", "message", "details"}}`.
 * Throw it from a handler; anything else thrown answers 500 `internal` (and is logged by
 * the host as the plugin's fault, never shown to the caller).
 */
export class ApiError extends Error {
  /**
   * @param {ErrorCode} code
   * @param {string} message
   * @param {Record<string, unknown>} [details]
   * @param {number} [status] overrides the code's status where the contract says so (422)
   */
  constructor(code, message, details = {}, status = undefined) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
    this.status = status;
  }

  /** @param {string} message */
  static validation(message) {
    return new ApiError('validation_error', message);
  }

  /** A validation error naming the offending input in `details.field`.
   * @param {string} field @param {string} message */
  static invalidField(field, message) {
    return new ApiError('validation_error', message, { field });
  }

  /** @param {string} message */
  static notFound(message) {
    return new ApiError('not_found', message);
  }

  /** @param {string} message */
  static conflict(message) {
    return new ApiError('conflict', message);
  }

  /** @param {string} message */
  static forbidden(message) {
    return new ApiError('forbidden', message);
  }

  /** @param {string} message */
  static internal(message) {
    return new ApiError('internal', message);
  }

  /** @param {string} key @param {unknown} value */
  withDetail(key, value) {
    this.details[key] = value;
    return this;
  }

  /** The WIT `error` record the host turns into the envelope. */
  toWit() {
    const details = Object.keys(this.details).length ? JSON.stringify(this.details) : '';
    return {
      code: /** @type {WitErrorCode} */ (CODES[this.code] ?? 'internal'),
      message: this.message,
      details,
      status: this.status,
    };
  }
}

// ---------------------------------------------------------------------------------------
// Paging (API.md §1.6), the same rule and cursor codec as the Rust SDK's `paging` module.

/** Missing or zero `limit` means this many. */
export const DEFAULT_LIMIT = 50;
/** Larger limits are clamped to this. */
export const MAX_LIMIT = 200;
/** Marks a cursor of this codec version (as the Rust SDK's `encode_cursor`). */
const CURSOR_VERSION = 1;
const U64_MAX = 18446744073709551615n;

/** Applies the `limit` rule: missing or 0 → 50; otherwise clamped to 1–200.
 * @param {string | undefined} raw */
export function parseLimit(raw) {
  if (raw === undefined || raw === '') return DEFAULT_LIMIT;
  const t = raw.trim();
  if (!/^[0-9]+$/.test(t) || BigInt(t) > U64_MAX) {
    throw ApiError.invalidField('limit', 'limit must be a whole number');
  }
  const n = BigInt(t);
  if (n === 0n) return DEFAULT_LIMIT;
  return n > BigInt(MAX_LIMIT) ? MAX_LIMIT : Number(n);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Base64url without padding.
 * @param {Uint8Array} bytes */
function base64url(bytes) {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63];
  }
  return out;
}

/** Strict base64url without padding (canonical spellings only); null when malformed.
 * @param {string} text */
function unbase64url(text) {
  if (text.length % 4 === 1) return null;
  const values = [];
  for (const c of text) {
    const v = B64.indexOf(c);
    if (v < 0) return null;
    values.push(v);
  }
  const out = [];
  let i = 0;
  for (; i + 3 < values.length; i += 4) {
    const n = (values[i] << 18) | (values[i + 1] << 12) | (values[i + 2] << 6) | values[i + 3];
    out.push(n >> 16, (n >> 8) & 255, n & 255);
  }
  const rest = values.length - i;
  if (rest === 2) {
    if (values[i + 1] & 15) return null;
    out.push((values[i] << 2) | (values[i + 1] >> 4));
  } else if (rest === 3) {
    if (values[i + 2] & 3) return null;
    const n = (values[i] << 18) | (values[i + 1] << 12) | (values[i + 2] << 6);
    out.push(n >> 16, (n >> 8) & 255);
  }
  return Uint8Array.from(out);
}

/** Encodes the position after which the next page starts (usually the last key served).
 * @param {Uint8Array | string} position */
export function encodeCursor(position) {
  const bytes = typeof position === 'string' ? encoder.encode(position) : position;
  const raw = new Uint8Array(bytes.length + 1);
  raw[0] = CURSOR_VERSION;
  raw.set(bytes, 1);
  return base64url(raw);
}

/** Decodes a cursor made by {@link encodeCursor}; anything else is a validation error.
 * @param {string} cursor @returns {Uint8Array} */
export function decodeCursor(cursor) {
  const raw = unbase64url(cursor.trim());
  if (!raw || raw.length === 0 || raw[0] !== CURSOR_VERSION) {
    throw ApiError.invalidField('cursor', 'cursor is not one this gateway issued');
  }
  return raw.subarray(1);
}

/**
 * The page a list request asks for.
 * @typedef {{ limit: number, after: Uint8Array | undefined }} PageRequest
 */

/**
 * One page of a cursor list.
 * @template T
 * @typedef {{ data: T[], nextCursor: string | null }} Page
 */

/** The JSON Schema of a `Page` of `item`s.
 * @param {object} item */
export function pageSchema(item) {
  return {
    type: 'object',
    properties: {
      data: { type: 'array', items: item },
      nextCursor: {
        type: ['string', 'null'],
        description: 'Pass as `cursor` to get the next page; null on the last page.',
      },
    },
    required: ['data', 'nextCursor'],
  };
}

// ---------------------------------------------------------------------------------------
// JSON bodies, checked against the route's request schema.

/**
 * Checks `value` against the JSON Schema subset plugins declare (type, properties,
 * required, additionalProperties: false, enum, string length and pattern, number range,
 * array items), so the schema published in `/openapi.json` is the one enforced.
 * @param {any} schema @param {unknown} value @param {string} field
 * @returns {ApiError | null}
 */
export function checkSchema(schema, value, field = '') {
  const at = field || 'body';
  const bad = (/** @type {string} */ m) => ApiError.invalidField(at, `${at} ${m}`);
  if (!schema || typeof schema !== 'object') return null;
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((/** @type {string} */ t) => isType(t, value))) {
      return bad(`must be ${types.join(' or ')}`);
    }
  }
  if (schema.enum && !schema.enum.includes(value)) {
    return bad(`must be one of ${schema.enum.map((/** @type {unknown} */ v) => JSON.stringify(v)).join(', ')}`);
  }
  if (typeof value === 'string') {
    const chars = [...value].length;
    if (schema.minLength !== undefined && chars < schema.minLength) {
      return bad(`must be at least ${schema.minLength} characters`);
    }
    if (schema.maxLength !== undefined && chars > schema.maxLength) {
      return bad(`must be at most ${schema.maxLength} characters`);
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      return bad(`must match ${schema.pattern}`);
    }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return bad(`must be ≥ ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) return bad(`must be ≤ ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items) {
    for (let i = 0; i < value.length; i++) {
      const e = checkSchema(schema.items, value[i], `${at}[${i}]`);
      if (e) return e;
    }
  }
  if (isObject(value)) {
    const obj = /** @type {Record<string, unknown>} */ (value);
    const props = schema.properties ?? {};
    const inner = (/** @type {string} */ k) => (field ? `${field}.${k}` : k);
    for (const k of schema.required ?? []) {
      if (!(k in obj)) return ApiError.invalidField(inner(k), `${inner(k)} is required`);
    }
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) {
        const e = checkSchema(props[k], v, inner(k));
        if (e) return e;
      } else if (schema.additionalProperties === false) {
        return ApiError.invalidField(inner(k), `unknown field ${inner(k)}`);
      }
    }
  }
  return null;
}

/** @param {unknown} v */
function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** @param {string} t @param {unknown} v */
function isType(t, v) {
  switch (t) {
    case 'object': return isObject(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    default: return true;
  }
}

// ---------------------------------------------------------------------------------------
// JIDs: the Rust SDK's parser rules (plugins/sdk/src/jid.rs), so stored keys agree.

const SERVERS = /** @type {Record<string, string>} */ ({
  's.whatsapp.net': 's.whatsapp.net',
  'c.us': 's.whatsapp.net',
  lid: 'lid',
  'g.us': 'g.us',
  newsletter: 'newsletter',
  broadcast: 'broadcast',
});

/** @param {string} s */
function shorten(s) {
  const chars = [...s];
  return chars.length <= 80 ? s : `${chars.slice(0, 80).join('')}…`;
}

/**
 * A validated JID without its device part (the form stored data is keyed by):
 * `{ user, server, jid }`. Malformed input throws a validation error naming `field`.
 * @param {string} input @param {string} field
 * @returns {{ user: string, server: string, jid: string }}
 */
export function parseJid(input, field = 'jid') {
  const text = input.trim();
  const fail = (/** @type {string} */ why) => ApiError.invalidField(field, `'${shorten(text)}' ${why}`);
  const at = text.lastIndexOf('@');
  if (at < 0) throw fail("is not a JID (missing '@')");
  const server = SERVERS[text.slice(at + 1)];
  if (!server) throw fail(`has an unknown server '${shorten(text.slice(at + 1))}'`);
  let user = text.slice(0, at);
  const colon = user.indexOf(':');
  if (colon >= 0) {
    const device = user.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(device) || Number(device) > 65535) throw fail('has a bad device');
    user = user.slice(0, colon);
  }
  if (server === 's.whatsapp.net' || server === 'lid') user = user.split('.')[0];
  if (user.length === 0 || user.length > 64) throw fail('has an empty or too long user part');
  const ok = {
    's.whatsapp.net': /^[1-9][0-9]{6,14}$/,
    lid: /^[0-9]+$/,
    newsletter: /^[0-9]+$/,
    'g.us': /^[0-9](?:[0-9-]*[0-9])?$/,
    broadcast: /^[A-Za-z0-9_-]+$/,
  }[server];
  if (!ok || !ok.test(user)) throw fail(`is not a valid ${server} JID`);
  return { user, server, jid: `${user}@${server}` };
}

// ---------------------------------------------------------------------------------------
// Requests

/** One request routed to the plugin; the host has authenticated the caller, checked the
 * route's capability and, for `{session}` routes, that the session is the caller's. */
export class Request {
  /** @param {WitRequest} inner @param {Route} route */
  constructor(inner, route) {
    this.inner = inner;
    this.route = route;
  }

  get method() { return this.inner.method; }
  get operationId() { return this.inner.operationId; }
  get path() { return this.inner.path; }
  get caller() { return this.inner.caller; }
  get requestId() { return this.inner.requestId; }
  /** The session of a `{session}` route (already checked to be the caller's). */
  get session() { return this.inner.session; }

  /** A path parameter, percent-decoded. @param {string} name */
  param(name) {
    const hit = this.inner.params.find(([k]) => k === name);
    if (!hit) throw ApiError.internal(`route has no parameter '${name}'`);
    return hit[1];
  }

  /** The first value of a query parameter. @param {string} name */
  query(name) {
    return this.inner.query.find(([k]) => k === name)?.[1];
  }

  /** A header by name (credentials are never passed). @param {string} name */
  header(name) {
    const lower = name.toLowerCase();
    return this.inner.headers.find(([k]) => k.toLowerCase() === lower)?.[1];
  }

  /** The raw body bytes. */
  get body() { return this.inner.body; }

  /**
   * The body parsed as JSON (an empty body reads as `{}`) and checked against the
   * route's request schema: a body that does not fit is a validation error.
   * @returns {any}
   */
  json() {
    let text;
    try {
      text = decoder.decode(this.inner.body);
    } catch {
      throw ApiError.validation('request body is not valid UTF-8');
    }
    let value;
    if (text.trim() === '') {
      value = {};
    } else {
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw ApiError.validation(`request body is not valid JSON: ${e instanceof Error ? e.message : e}`);
      }
    }
    const err = checkSchema(this.route.requestSchema, value);
    if (err) throw err;
    return value;
  }

  /** `limit` and `cursor` from the query (API.md §1.6). @returns {PageRequest} */
  page() {
    const cursor = this.query('cursor');
    return {
      limit: parseLimit(this.query('limit')),
      after: cursor ? decodeCursor(cursor) : undefined,
    };
  }
}

// ---------------------------------------------------------------------------------------
// Routes and the manifest

/** One endpoint: method, path template, capability, operation id, documentation, and the
 * JSON Schemas of its request and success bodies (published in `/openapi.json`). */
export class Route {
  /** @param {string} method @param {string} path @param {Capability} capability @param {string} operationId */
  constructor(method, path, capability, operationId) {
    this.method = method;
    this.path = path;
    this.capability = capability;
    this.operationId = operationId;
    this.summaryText = '';
    /** @type {string | undefined} */
    this.descriptionText = undefined;
    /** @type {object | undefined} */
    this.requestSchema = undefined;
    /** @type {object | undefined} */
    this.responseSchema = undefined;
    this.successStatus = 200;
    /** @type {{ name: string, description: string, required: boolean }[]} */
    this.queryParams = [];
  }

  /** @param {string} p @param {Capability} c @param {string} id */
  static get(p, c, id) { return new Route('GET', p, c, id); }
  /** @param {string} p @param {Capability} c @param {string} id */
  static post(p, c, id) { return new Route('POST', p, c, id); }
  /** @param {string} p @param {Capability} c @param {string} id */
  static put(p, c, id) { return new Route('PUT', p, c, id); }
  /** @param {string} p @param {Capability} c @param {string} id */
  static patch(p, c, id) { return new Route('PATCH', p, c, id); }
  /** @param {string} p @param {Capability} c @param {string} id */
  static delete(p, c, id) { return new Route('DELETE', p, c, id); }

  /** @param {string} text */
  summary(text) { this.summaryText = text; return this; }
  /** @param {string} text */
  description(text) { this.descriptionText = text; return this; }
  /** The request body's JSON Schema: published, and enforced by `req.json()`. @param {object} schema */
  request(schema) { this.requestSchema = schema; return this; }
  /** The success body's JSON Schema. @param {object} schema */
  response(schema) { this.responseSchema = schema; return this; }
  /** The success status when it is not 200 (201 for creation, 204 for no body). @param {number} status */
  status(status) { this.successStatus = status; return this; }
  /** A query parameter, for documentation. @param {string} name @param {string} description @param {boolean} [required] */
  query(name, description, required = false) {
    this.queryParams.push({ name, description, required });
    return this;
  }
  /** `limit` and `cursor`, the query parameters of every cursor list. */
  paged() {
    return this.query('limit', 'page size, 1-200 (default 50)').query('cursor', 'nextCursor of the previous page');
  }

  /** @returns {WitRoute} */
  toWit() {
    return {
      method: this.method,
      path: this.path,
      capability: this.capability,
      operationId: this.operationId,
      summary: this.summaryText,
      description: this.descriptionText,
      requestSchema: this.requestSchema ? JSON.stringify(this.requestSchema) : undefined,
      responseSchema: this.responseSchema ? JSON.stringify(this.responseSchema) : undefined,
      successStatus: this.successStatus === 200 ? undefined : this.successStatus,
      queryParams: this.queryParams,
    };
  }
}

/**
 * A handler answers a plain value (sent as JSON with the route's success status), nothing
 * (an empty body: 204 routes), or a {@link Response}; it throws {@link ApiError} to fail.
 * @typedef {(req: Request) => unknown} Handler
 */

/** An answer with its own status, headers or bytes. */
export class Response {
  /** @param {number} status @param {unknown} body JSON value, bytes, or undefined @param {[string, string][]} [headers] */
  constructor(status, body, headers = []) {
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** What a plugin declares about itself: routes bound to handlers, event subscriptions. */
export class Manifest {
  /** `name` is `[a-z0-9-]` and names the component file (`name.wasm`).
   * @param {string} name @param {string} version */
  constructor(name, version) {
    this.name = name;
    this.version = version;
    /** @type {[Route, Handler][]} */
    this.routes = [];
    /** @type {[string, (e: WitEvent) => void][]} */
    this.events = [];
  }

  /** Serves `route` with `handler`. @param {Route} route @param {Handler} handler */
  route(route, handler) {
    this.routes.push([route, handler]);
    return this;
  }

  /** Receives the event `name` (`*` for every event). @param {string} name @param {(e: WitEvent) => void} handler */
  on(name, handler) {
    this.events.push([name, handler]);
    return this;
  }

  /** @returns {WitManifest} */
  toWit() {
    return {
      name: this.name,
      version: this.version,
      routes: this.routes.map(([r]) => r.toWit()),
      events: [...new Set(this.events.map(([e]) => e))],
    };
  }
}

/** @param {unknown} answer @param {number} status @returns {WitResponse} */
function toResponse(answer, status) {
  if (answer instanceof Response) {
    const body = answer.body === undefined ? new Uint8Array()
      : answer.body instanceof Uint8Array ? answer.body
        : encoder.encode(JSON.stringify(answer.body));
    return { status: answer.status, headers: answer.headers, body };
  }
  if (answer === undefined || status === 204) {
    return { status, headers: [], body: new Uint8Array() };
  }
  return { status, headers: [], body: encoder.encode(JSON.stringify(answer)) };
}

/**
 * What a thrown value answers: an {@link ApiError} as it is; a storage failure from the
 * host as 400 (invalid key or value), 409 (quota) or 500; anything else — a bug in the
 * plugin — as 500 `internal` whose message shows nothing of the plugin's internals.
 * @param {unknown} e @returns {ApiError}
 */
export function toApiError(e) {
  if (e instanceof ApiError) return e;
  const payload = /** @type {any} */ (e)?.payload;
  if (payload && typeof payload === 'object' && (payload.tag === 'invalid' || payload.tag === 'failed')) {
    const msg = String(payload.val ?? '');
    if (payload.tag === 'failed') return ApiError.internal('storage failed');
    if (msg.startsWith('quota: ')) return ApiError.conflict(msg.slice(7)).withDetail('reason', 'quota_exceeded');
    return ApiError.validation(msg);
  }
  return ApiError.internal('the plugin failed to answer');
}

/**
 * The `endpoint` export of the WIT world for a manifest: `export const endpoint =
 * serve(manifest)`. Dispatches on the operation id; an exception becomes the error
 * envelope and leaves the instance ready for the next request.
 * @param {Manifest} manifest
 */
export function serve(manifest) {
  const byOperation = new Map(manifest.routes.map(([r, h]) => [r.operationId, /** @type {const} */ ([r, h])]));
  return {
    /** @returns {WitManifest} */
    describe() {
      return manifest.toWit();
    },
    /** @param {WitRequest} request @returns {WitResponse} */
    handle(request) {
      const bound = byOperation.get(request.operationId);
      try {
        if (!bound) throw ApiError.internal('this operation has no handler in the plugin');
        const [route, handler] = bound;
        return toResponse(handler(new Request(request, route)), route.successStatus);
      } catch (e) {
        const err = toApiError(e);
        if (!(e instanceof ApiError) && err.code === 'internal') {
          const why = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
          console.error(`${request.requestId}: ${request.operationId} failed: ${why}`);
        }
        throw err.toWit();
      }
    },
    /** @param {WitEvent} event */
    onEvent(event) {
      const bound = manifest.events.find(([n]) => n === event.name) ?? manifest.events.find(([n]) => n === '*');
      if (!bound) return;
      try {
        bound[1](event);
      } catch (e) {
        throw toApiError(e).toWit();
      }
    },
  };
}

/** Epoch milliseconds. */
export function nowMs() {
  return Date.now();
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
/** @type {number[]} */
let lastRandom = [];

/** A ULID: unique, and sorted by creation time (monotonic within one millisecond), so
 * a prefix scan lists things in creation order. */
export function ulid() {
  const now = Date.now();
  if (now === lastTime) {
    let i = lastRandom.length - 1;
    while (i >= 0 && lastRandom[i] === 31) lastRandom[i--] = 0;
    if (i < 0) throw ApiError.internal('ids exhausted for this millisecond');
    lastRandom[i] += 1;
  } else {
    // Math.random, seeded from WASI randomness when the instance starts: with
    // componentize-js 0.19.3, an instance whose first call used crypto.getRandomValues
    // traps on its next call (README.md, "Writing a plugin in JavaScript").
    lastRandom = Array.from({ length: 16 }, () => Math.floor(Math.random() * 32));
    lastTime = now;
  }
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + lastRandom.map((v) => CROCKFORD[v]).join('');
}

/** @param {string} s */
export function utf8(s) {
  return encoder.encode(s);
}

/** @param {Uint8Array} b */
export function fromUtf8(b) {
  return new TextDecoder().decode(b);
}
