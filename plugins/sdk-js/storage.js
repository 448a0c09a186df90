// Storage helpers over `wa:gateway/storage` (scoped by the host to the request's session,
// else the caller's organization): JSON values, chunked prefix scans, cursor pages, and an
// atomic unit of work, as the Rust SDK's `store` module. Import it only from plugins whose
// world imports `wa:gateway/storage`.
// @ts-check

import * as kv from 'wa:gateway/storage@0.1.5';
import { ApiError, encodeCursor, toApiError, utf8, fromUtf8 } from './index.js';

/** @typedef {import('./index.js').PageRequest} PageRequest */
/** @typedef {import('wa:gateway/storage@0.1.5').Entry} Entry */

/** The host caps one scan at this many entries. */
const MAX_SCAN_ENTRIES = 1000;
/** The message of a scan refused for its size (plugins/sdk/src/limits.rs). */
const SCAN_TOO_LARGE = 'scan result is larger than the host returns at once';
/** Scan chunk size: well under the host's cap, large enough to need few calls. */
const CHUNK = 256;

/** @param {string | Uint8Array} key */
function bytes(key) {
  return typeof key === 'string' ? utf8(key) : key;
}

/** Runs a host call, turning its storage error into the answer it deserves.
 * @template T @param {() => T} f @returns {T} */
function host(f) {
  try {
    return f();
  } catch (e) {
    throw toApiError(e);
  }
}

/** @param {string | Uint8Array} key @returns {Uint8Array | undefined} */
export function get(key) {
  return host(() => kv.get(bytes(key)));
}

/** @param {string | Uint8Array} key @param {Uint8Array} value */
export function put(key, value) {
  host(() => kv.put(bytes(key), value));
}

/** True when the key existed. @param {string | Uint8Array} key */
export function del(key) {
  return host(() => kv.delete(bytes(key)));
}

/** @param {Uint8Array} key @param {Uint8Array} value */
function decode(key, value) {
  try {
    return JSON.parse(fromUtf8(value));
  } catch {
    throw ApiError.internal(`stored value under ${JSON.stringify(fromUtf8(key))} is unreadable`);
  }
}

/** @param {string | Uint8Array} key @returns {any} */
export function getJson(key) {
  const v = get(key);
  return v === undefined ? undefined : decode(bytes(key), v);
}

/** @param {string | Uint8Array} key @param {unknown} value */
export function putJson(key, value) {
  put(key, utf8(JSON.stringify(value)));
}

/**
 * Entries under `prefix` strictly after `after` (a full key), in key order or reversed, at
 * most `limit` (capped at 1000). Fewer than `limit` means there are no more. When the
 * entries are too many bytes for one host call, they are fetched in smaller calls.
 * @param {string | Uint8Array} prefix
 * @param {{ after?: Uint8Array, limit?: number, reverse?: boolean }} [opts]
 * @returns {Entry[]}
 */
export function scan(prefix, { after = undefined, limit = CHUNK, reverse = false } = {}) {
  const want = Math.min(Math.max(limit, 1), MAX_SCAN_ENTRIES);
  let perCall = want;
  /** @type {Entry[]} */
  const out = [];
  let cursor = after;
  for (;;) {
    const ask = Math.min(perCall, want - out.length);
    /** @type {import('wa:gateway/storage@0.1.5').Bound | undefined} */
    const bound = cursor ? { tag: 'excluded', val: cursor } : undefined;
    let chunk;
    try {
      chunk = kv.scan({
        prefix: bytes(prefix),
        start: reverse ? undefined : bound,
        end: reverse ? bound : undefined,
        limit: ask,
        reverse,
      });
    } catch (e) {
      const p = /** @type {any} */ (e)?.payload;
      if (p?.tag === 'invalid' && p.val === SCAN_TOO_LARGE && perCall > 1) {
        perCall = Math.floor(perCall / 2);
        continue;
      }
      throw toApiError(e);
    }
    const exhausted = chunk.length < ask;
    if (chunk.length) cursor = chunk[chunk.length - 1].key;
    out.push(...chunk);
    if (exhausted || out.length >= want) return out;
  }
}

/**
 * One page of the JSON values under `prefix`, in key order; `nextCursor` names the last
 * key served when more follow. `keep` filters values (filtered-out entries do not count
 * toward the limit), so every matching entry appears exactly once across pages.
 * @param {string | Uint8Array} prefix
 * @param {PageRequest} page
 * @param {(value: any) => boolean} [keep]
 * @returns {import('./index.js').Page<any>}
 */
export function pageJson(prefix, page, keep = () => true) {
  const data = [];
  let after = page.after;
  /** @type {Uint8Array | undefined} */
  let lastServed;
  for (;;) {
    const chunk = scan(prefix, { after, limit: CHUNK });
    for (const e of chunk) {
      const v = decode(e.key, e.value);
      after = e.key;
      if (!keep(v)) continue;
      if (data.length === page.limit) {
        return { data, nextCursor: lastServed ? encodeCursor(lastServed) : null };
      }
      data.push(v);
      lastServed = e.key;
    }
    if (chunk.length < CHUNK) return { data, nextCursor: null };
  }
}

/** A unit of work: reads see its own earlier writes, and every write commits in one
 * atomic host write at {@link Tx.commit} (or none, if it is dropped). */
export class Tx {
  constructor() {
    /** @type {Map<string, { key: Uint8Array, value: Uint8Array | undefined }>} */
    this.pending = new Map();
  }

  /** @param {string | Uint8Array} key */
  static id(key) {
    return Array.from(bytes(key), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** @param {string | Uint8Array} key @returns {Uint8Array | undefined} */
  get(key) {
    const p = this.pending.get(Tx.id(key));
    return p ? p.value : get(key);
  }

  /** @param {string | Uint8Array} key @returns {any} */
  getJson(key) {
    const v = this.get(key);
    return v === undefined ? undefined : decode(bytes(key), v);
  }

  /** @param {string | Uint8Array} key @param {Uint8Array} value */
  put(key, value) {
    this.pending.set(Tx.id(key), { key: bytes(key), value });
    return this;
  }

  /** @param {string | Uint8Array} key @param {unknown} value */
  putJson(key, value) {
    return this.put(key, utf8(JSON.stringify(value)));
  }

  /** @param {string | Uint8Array} key */
  delete(key) {
    this.pending.set(Tx.id(key), { key: bytes(key), value: undefined });
    return this;
  }

  /** Writes everything in one atomic host write. */
  commit() {
    /** @type {import('wa:gateway/storage@0.1.5').WriteOp[]} */
    const ops = [...this.pending.values()].map(({ key, value }) =>
      value === undefined ? { tag: 'delete', val: key } : { tag: 'put', val: { key, value } });
    this.pending.clear();
    if (ops.length) host(() => kv.write(ops));
  }
}
