declare module 'wa:gateway/storage@0.1.5' {
  export function get(key: Uint8Array): Uint8Array | undefined;
  export function put(key: Uint8Array, value: Uint8Array): void;
  /**
   * True when the key existed.
   */
  export { _delete as delete };
  function _delete(key: Uint8Array): boolean;
  export function scan(request: ScanRequest): Array<Entry>;
  /**
   * `scan`'s entries packed into one buffer (since 0.1.4): for each entry in order, the
   * key's length and the value's length as little-endian u32, then the key, then the
   * value. A page of small rows crosses into the plugin as one copy, where `scan` makes
   * two per entry. The Rust SDK's `kv::scan` reads through it.
   */
  export function scanPacked(request: ScanRequest): Uint8Array;
  /**
   * All operations in one atomic transaction.
   */
  export function write(ops: Array<WriteOp>): void;
  export type StorageError = StorageErrorInvalid | StorageErrorFailed;
  /**
   * The key or value is empty or too large.
   */
  export interface StorageErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * The database failed; the request should answer 500.
   */
  export interface StorageErrorFailed {
    tag: 'failed',
    val: string,
  }
  export interface Entry {
    key: Uint8Array,
    value: Uint8Array,
  }
  export type Bound = BoundIncluded | BoundExcluded;
  export interface BoundIncluded {
    tag: 'included',
    val: Uint8Array,
  }
  export interface BoundExcluded {
    tag: 'excluded',
    val: Uint8Array,
  }
  /**
   * Entries whose key starts with `prefix` and lies within `start`/`end`, in key order
   * (descending when `reverse`), at most `limit` of them (the host caps it at 1000).
   */
  export interface ScanRequest {
    prefix: Uint8Array,
    start?: Bound,
    end?: Bound,
    limit: number,
    reverse: boolean,
  }
  export type WriteOp = WriteOpPut | WriteOpDelete;
  export interface WriteOpPut {
    tag: 'put',
    val: Entry,
  }
  export interface WriteOpDelete {
    tag: 'delete',
    val: Uint8Array,
  }
}
