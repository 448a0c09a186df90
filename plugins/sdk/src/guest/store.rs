//! The plugin's key-value storage, scoped by the host to the request's session (or the
//! caller's organization), with JSON helpers and cursor paging over key prefixes.

use super::PageRequest;
use super::bindings::wa::gateway::storage as raw;
use crate::error::ApiError;
use crate::paging::encode_cursor;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use raw::Entry;

fn failed(e: raw::StorageError) -> ApiError {
    match e {
        raw::StorageError::Invalid(m) => ApiError::validation(m),
        raw::StorageError::Failed(m) => ApiError::internal(format!("storage failed: {m}")),
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(value).map_err(|e| {
        ApiError::internal(format!(
            "stored value under {:?} is unreadable: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
    raw::get(key).map_err(failed)
}

pub fn put(key: &[u8], value: &[u8]) -> Result<(), ApiError> {
    raw::put(key, value).map_err(failed)
}

/// True when the key existed.
pub fn delete(key: &[u8]) -> Result<bool, ApiError> {
    raw::delete(key).map_err(failed)
}

pub fn get_json<T: DeserializeOwned>(key: &[u8]) -> Result<Option<T>, ApiError> {
    match get(key)? {
        Some(v) => decode(key, &v).map(Some),
        None => Ok(None),
    }
}

pub fn put_json<T: Serialize + ?Sized>(key: &[u8], value: &T) -> Result<(), ApiError> {
    put(key, &to_json(value)?)
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("cannot encode: {e}")))
}

/// Entries under `prefix` strictly after `after` (when given), in key order or reversed.
pub fn scan(
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: u32,
    reverse: bool,
) -> Result<Vec<Entry>, ApiError> {
    let bound = after.map(|k| raw::Bound::Excluded(k.to_vec()));
    let (start, end) = if reverse {
        (None, bound)
    } else {
        (bound, None)
    };
    raw::scan(&raw::ScanRequest {
        prefix: prefix.to_vec(),
        start,
        end,
        limit,
        reverse,
    })
    .map_err(failed)
}

/// Every entry under `prefix`, decoded, in key order (reads in chunks).
pub fn scan_all_json<T: DeserializeOwned>(prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>, ApiError> {
    const CHUNK: u32 = 500;
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk = scan(prefix, after.as_deref(), CHUNK, false)?;
        let done = chunk.len() < CHUNK as usize;
        for e in chunk {
            let v = decode(&e.key, &e.value)?;
            after = Some(e.key.clone());
            out.push((e.key, v));
        }
        if done {
            return Ok(out);
        }
    }
}

/// One page of JSON values under `prefix`, keyed in order; `nextCursor` is set when more
/// entries follow. `keep` filters values (filtered-out entries do not count toward the
/// limit), so every matching entry appears exactly once across pages.
pub fn page_json<T: DeserializeOwned>(
    prefix: &[u8],
    page: &PageRequest,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    const CHUNK: u32 = 256;
    let mut data = Vec::new();
    let mut after = page.after.clone();
    // The cursor names the last key served, so a page resumes right after it.
    let mut last_served: Option<Vec<u8>> = None;
    loop {
        let chunk = scan(prefix, after.as_deref(), CHUNK, false)?;
        let exhausted = chunk.len() < CHUNK as usize;
        for e in chunk {
            let v: T = decode(&e.key, &e.value)?;
            if !keep(&v) {
                after = Some(e.key);
                continue;
            }
            if data.len() == page.limit as usize {
                // One more match exists beyond this page.
                let cursor = last_served.as_deref().map(encode_cursor);
                return Ok((data, cursor));
            }
            data.push(v);
            last_served = Some(e.key.clone());
            after = Some(e.key);
        }
        if exhausted {
            return Ok((data, None));
        }
    }
}

/// Several writes committed together.
#[derive(Default, Debug)]
pub struct Batch {
    ops: Vec<raw::WriteOp>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: &[u8], value: Vec<u8>) -> &mut Self {
        self.ops.push(raw::WriteOp::Put(Entry {
            key: key.to_vec(),
            value,
        }));
        self
    }

    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        key: &[u8],
        value: &T,
    ) -> Result<&mut Self, ApiError> {
        let v = to_json(value)?;
        Ok(self.put(key, v))
    }

    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.ops.push(raw::WriteOp::Delete(key.to_vec()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Commits every operation atomically.
    pub fn commit(self) -> Result<(), ApiError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        raw::write(&self.ops).map_err(failed)
    }
}
