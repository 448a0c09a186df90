//! `storage` in memory: keys sorted bytewise per scope (the call's session, else its
//! organization), prefix and bound scans, atomic batches, and the host's limits.

use super::{Scope, current_call};
use crate::guest::bindings::wa::gateway::storage::{
    Bound, Entry, ScanRequest, StorageError, WriteOp,
};
use crate::limits::{
    DEFAULT_MAX_VALUE_BYTES, DEFAULT_MAX_WRITE_BYTES, MAX_KEY_BYTES, MAX_SCAN_BYTES,
    MAX_SCAN_ENTRIES, SCAN_TOO_LARGE,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound as B;

type Table = BTreeMap<Scope, BTreeMap<Vec<u8>, Vec<u8>>>;

thread_local! {
    static DATA: RefCell<Table> = const { RefCell::new(BTreeMap::new()) };
}

pub(crate) fn reset() {
    DATA.with_borrow_mut(|d| d.clear());
}

fn scope() -> Result<Scope, StorageError> {
    current_call().map(|c| c.storage_scope()).ok_or_else(|| {
        StorageError::Failed("storage is only available while serving a request or event".into())
    })
}

fn check_key(key: &[u8]) -> Result<(), StorageError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(StorageError::Invalid(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), StorageError> {
    if value.len() > DEFAULT_MAX_VALUE_BYTES {
        return Err(StorageError::Invalid(format!(
            "values are limited to {DEFAULT_MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn get(key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
    let scope = scope()?;
    check_key(key)?;
    Ok(DATA.with_borrow(|d| d.get(&scope).and_then(|t| t.get(key).cloned())))
}

pub(crate) fn put(key: &[u8], value: &[u8]) -> Result<(), StorageError> {
    write(&[WriteOp::Put(Entry {
        key: key.to_vec(),
        value: value.to_vec(),
    })])
}

pub(crate) fn delete(key: &[u8]) -> Result<bool, StorageError> {
    let existed = get(key)?.is_some();
    write(&[WriteOp::Delete(key.to_vec())])?;
    Ok(existed)
}

/// All operations or none: every one is checked before anything is applied.
pub(crate) fn write(ops: &[WriteOp]) -> Result<(), StorageError> {
    let scope = scope()?;
    let mut bytes = 0usize;
    for op in ops {
        match op {
            WriteOp::Put(e) => {
                check_key(&e.key)?;
                check_value(&e.value)?;
                bytes += e.key.len() + e.value.len();
            }
            WriteOp::Delete(k) => {
                check_key(k)?;
                bytes += k.len();
            }
        }
    }
    if bytes > DEFAULT_MAX_WRITE_BYTES {
        return Err(StorageError::Invalid(format!(
            "one write carries at most {DEFAULT_MAX_WRITE_BYTES} bytes"
        )));
    }
    DATA.with_borrow_mut(|d| {
        let t = d.entry(scope).or_default();
        for op in ops {
            match op {
                WriteOp::Put(e) => {
                    t.insert(e.key.clone(), e.value.clone());
                }
                WriteOp::Delete(k) => {
                    t.remove(k);
                }
            }
        }
    });
    Ok(())
}

fn within(key: &[u8], start: &Option<Bound>, end: &Option<Bound>) -> bool {
    let lo = match start {
        None => true,
        Some(Bound::Included(b)) => key >= b.as_slice(),
        Some(Bound::Excluded(b)) => key > b.as_slice(),
    };
    let hi = match end {
        None => true,
        Some(Bound::Included(b)) => key <= b.as_slice(),
        Some(Bound::Excluded(b)) => key < b.as_slice(),
    };
    lo && hi
}

/// `scan`, packed as the host packs it, so native tests read through the SDK's unpacking.
pub(crate) fn scan_packed(request: &ScanRequest) -> Result<Vec<u8>, StorageError> {
    let mut buf = Vec::new();
    for e in scan(request)? {
        crate::packed::push(&mut buf, &e.key, &e.value);
    }
    Ok(buf)
}

pub(crate) fn scan(request: &ScanRequest) -> Result<Vec<Entry>, StorageError> {
    let scope = scope()?;
    let limit = (request.limit as usize).clamp(1, MAX_SCAN_ENTRIES);
    DATA.with_borrow(|d| {
        let Some(t) = d.get(&scope) else {
            return Ok(Vec::new());
        };
        let range = t.range::<[u8], _>((B::Included(request.prefix.as_slice()), B::Unbounded));
        let matching = range
            .take_while(|(k, _)| k.starts_with(&request.prefix))
            .filter(|(k, _)| within(k, &request.start, &request.end));
        let rows: Vec<(&Vec<u8>, &Vec<u8>)> = if request.reverse {
            let mut all: Vec<_> = matching.collect();
            all.reverse();
            all.into_iter().take(limit).collect()
        } else {
            matching.take(limit).collect()
        };
        let mut out = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        for (k, v) in rows {
            bytes += k.len() + v.len();
            if bytes > MAX_SCAN_BYTES {
                return Err(StorageError::Invalid(SCAN_TOO_LARGE.into()));
            }
            out.push(Entry {
                key: k.clone(),
                value: v.clone(),
            });
        }
        Ok(out)
    })
}
