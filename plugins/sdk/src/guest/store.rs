//! The plugin's key-value storage, scoped by the host to the request's session (or the
//! caller's organization): raw and JSON reads and writes, prefix scans, cursor pages, and
//! [`Tx`], a unit of work whose reads see its own writes and whose writes commit together.

use super::bindings::wa::gateway::storage as wit;
use crate::error::ApiError;
use crate::paging::{Page, PageRequest, encode_cursor};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::storage as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use wit::{Entry, StorageError};

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Invalid(m) => match m.strip_prefix(crate::limits::QUOTA_EXCEEDED) {
                Some(m) => ApiError::conflict(m).with_detail("reason", "quota_exceeded"),
                None => ApiError::validation(m),
            },
            StorageError::Failed(m) => ApiError::internal(format!("storage failed: {m}")),
        }
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

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("cannot encode: {e}")))
}

pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
    Ok(imp::get(key)?)
}

pub fn put(key: &[u8], value: &[u8]) -> Result<(), ApiError> {
    Ok(imp::put(key, value)?)
}

/// True when the key existed.
pub fn delete(key: &[u8]) -> Result<bool, ApiError> {
    Ok(imp::delete(key)?)
}

pub fn get_json<T: DeserializeOwned>(key: &[u8]) -> Result<Option<T>, ApiError> {
    match get(key)? {
        Some(v) => decode(key, &v).map(Some),
        None => Ok(None),
    }
}

pub fn put_json<T: Serialize + ?Sized>(key: &[u8], value: &T) -> Result<(), ApiError> {
    put(key, &encode(value)?)
}

/// Entries under `prefix` strictly after `after` (when given), in key order or reversed,
/// at most `limit` (capped at 1000). Fewer than `limit` means there are no more. When the
/// entries are too many bytes for one host call, they are fetched in smaller calls.
pub fn scan(
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: u32,
    reverse: bool,
) -> Result<Vec<Entry>, ApiError> {
    Ok(scan_page(prefix, after, limit, reverse)?
        .iter()
        .map(|(key, value)| Entry {
            key: key.to_vec(),
            value: value.to_vec(),
        })
        .collect())
}

/// A page of entries kept in the buffers the host answered with and lent out from them:
/// what [`scan`] reads, without copying each key and value into its own allocation (for
/// a plugin that splices stored values into its answer, say).
#[derive(Debug, Default)]
pub struct ScanPage {
    buffers: Vec<Vec<u8>>,
    /// Per entry: its buffer, and where its key and value lie in it.
    entries: Vec<(usize, crate::packed::Span)>,
}

impl ScanPage {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, `(key, value)`, in scan order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = crate::packed::EntryRef<'_>> + '_ {
        self.entries
            .iter()
            .map(|(b, (k, v))| (&self.buffers[*b][k.clone()], &self.buffers[*b][v.clone()]))
    }

    fn last_key(&self) -> Option<&[u8]> {
        self.iter().last().map(|(k, _)| k)
    }
}

/// [`scan`], lending the entries out of the host's answer instead of copying each one.
pub fn scan_page(
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: u32,
    reverse: bool,
) -> Result<ScanPage, ApiError> {
    let want = (limit as usize).clamp(1, crate::limits::MAX_SCAN_ENTRIES);
    let mut per_call = want;
    let mut page = ScanPage::default();
    let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
    loop {
        let ask = per_call.min(want - page.len());
        let bound = cursor.clone().map(wit::Bound::Excluded);
        let (start, end) = if reverse {
            (None, bound)
        } else {
            (bound, None)
        };
        let request = wit::ScanRequest {
            prefix: prefix.to_vec(),
            start,
            end,
            limit: ask as u32,
            reverse,
        };
        match imp::scan_packed(&request) {
            Err(StorageError::Invalid(m)) if m == crate::limits::SCAN_TOO_LARGE && per_call > 1 => {
                per_call /= 2;
            }
            Err(e) => return Err(e.into()),
            Ok(buffer) => {
                let spans = crate::packed::spans(&buffer).map_err(|_| {
                    ApiError::from(StorageError::Failed(
                        "the host answered a malformed scan".into(),
                    ))
                })?;
                let exhausted = spans.len() < ask;
                let index = page.buffers.len();
                page.buffers.push(buffer);
                page.entries.extend(spans.into_iter().map(|s| (index, s)));
                cursor = page.last_key().map(<[u8]>::to_vec);
                if exhausted || page.len() >= want {
                    return Ok(page);
                }
            }
        }
    }
}

/// Scan chunk size: well under the host's cap, large enough to need few calls.
const CHUNK: u32 = 256;

/// Every entry under `prefix`, in key order (read in chunks).
pub fn scan_all(prefix: &[u8]) -> Result<Vec<Entry>, ApiError> {
    let mut out: Vec<Entry> = Vec::new();
    loop {
        let after = out.last().map(|e| e.key.clone());
        let chunk = scan(prefix, after.as_deref(), CHUNK, false)?;
        let done = chunk.len() < CHUNK as usize;
        out.extend(chunk);
        if done {
            return Ok(out);
        }
    }
}

/// Every entry under `prefix`, decoded, in key order.
pub fn scan_all_json<T: DeserializeOwned>(prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>, ApiError> {
    scan_all(prefix)?
        .into_iter()
        .map(|e| {
            let v = decode(&e.key, &e.value)?;
            Ok((e.key, v))
        })
        .collect()
}

/// One page of the JSON values under `prefix`, in key order; `nextCursor` names the last
/// key served when more follow. `keep` filters values (filtered-out entries do not count
/// toward the limit), so every matching entry appears exactly once across pages.
pub fn page_json<T: DeserializeOwned>(
    prefix: &[u8],
    page: &PageRequest,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Page<T>, ApiError> {
    let mut data = Vec::new();
    let mut after = page.after.clone();
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
                let next_cursor = last_served.as_deref().map(encode_cursor);
                return Ok(Page { data, next_cursor });
            }
            data.push(v);
            last_served = Some(e.key.clone());
            after = Some(e.key);
        }
        if exhausted {
            return Ok(Page {
                data,
                next_cursor: None,
            });
        }
    }
}

/// A unit of work: reads see the unit's own earlier writes, and every write is committed
/// in one atomic host write at the end (or none, if the unit is dropped).
#[derive(Debug, Default)]
pub struct Tx {
    /// Pending state per key: `Some(bytes)` written, `None` deleted.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys in the order first touched, so the commit is deterministic.
    order: Vec<Vec<u8>>,
}

impl Tx {
    pub fn new() -> Tx {
        Tx::default()
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => get(key),
        }
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ApiError> {
        self.get(key)?.map(|v| decode(key, &v)).transpose()
    }

    fn touch(&mut self, key: &[u8]) {
        if !self.pending.contains_key(key) {
            self.order.push(key.to_vec());
        }
    }

    pub fn put(&mut self, key: &[u8], value: Vec<u8>) -> &mut Self {
        self.touch(key);
        self.pending.insert(key.to_vec(), Some(value));
        self
    }

    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        key: &[u8],
        value: &T,
    ) -> Result<&mut Self, ApiError> {
        let v = encode(value)?;
        Ok(self.put(key, v))
    }

    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.touch(key);
        self.pending.insert(key.to_vec(), None);
        self
    }

    /// Keys under a prefix, stored and pending, without pending deletions, sorted.
    pub fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
        let mut keys: Vec<Vec<u8>> = scan_all(prefix)?
            .into_iter()
            .map(|e| e.key)
            .filter(|k| !matches!(self.pending.get(k), Some(None)))
            .collect();
        for (k, v) in &self.pending {
            if v.is_some() && k.starts_with(prefix) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys.sort();
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Commits every write in one atomic host write. A unit larger than the host accepts
    /// in one write (`limits.max_write_bytes`) is refused whole: nothing is written.
    pub fn commit(self) -> Result<(), ApiError> {
        if self.order.is_empty() {
            return Ok(());
        }
        let Tx { mut pending, order } = self;
        let ops: Vec<wit::WriteOp> = order
            .into_iter()
            .map(|key| match pending.remove(&key).flatten() {
                Some(value) => wit::WriteOp::Put(Entry { key, value }),
                None => wit::WriteOp::Delete(key),
            })
            .collect();
        Ok(imp::write(&ops)?)
    }
}
