//! How many bytes of plugin data each organization stores, for `quotas.max_stored_bytes_per_org`.
//! The total moves in the same transaction as the write or purge that changes it, so it
//! is exact after any crash; a database from before the counter existed is counted once
//! when opened.

use super::scoped::OrgUsage;
use super::{Database, META, PLUGIN_KV, SESSIONS, StorageError, USAGE};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use std::collections::HashMap;

/// Marks a database whose usage counters are in step with its data.
const COUNTED: &str = "usage-counted";

/// Adds `delta` bytes to the organization's total inside `txn`, refusing the change when
/// it grows the total past the limit.
pub(super) fn apply(
    txn: &WriteTransaction,
    usage: &OrgUsage<'_>,
    delta: i64,
) -> Result<(), StorageError> {
    if delta == 0 {
        return Ok(());
    }
    let mut t = txn.open_table(USAGE)?;
    let current = t.get(usage.organization)?.map(|v| v.value()).unwrap_or(0);
    let next = current.saturating_add_signed(delta);
    if delta > 0
        && let Some(limit) = usage.limit
        && next > limit
    {
        return Err(StorageError::Quota(format!(
            "the organization stores {current} bytes; this write would take it past its quota of {limit} bytes"
        )));
    }
    t.insert(usage.organization, next)?;
    Ok(())
}

/// The bytes of plugin data an organization stores.
pub fn stored_bytes(db: &Database, organization: &str) -> Result<u64, StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(USAGE)?;
    Ok(t.get(organization)?.map(|v| v.value()).unwrap_or(0))
}

/// Counts every organization's plugin data once, for a database written before usage was
/// tracked. Session-scoped rows count toward the session's organization.
pub(super) fn count_if_missing(db: &Database) -> Result<(), StorageError> {
    {
        let txn = db.redb().begin_read()?;
        if txn.open_table(META)?.get(COUNTED)?.is_some() {
            return Ok(());
        }
    }
    let txn = db.redb().begin_write()?;
    {
        let mut org_of_session: HashMap<String, String> = HashMap::new();
        for row in txn.open_table(SESSIONS)?.iter()? {
            let (k, v) = row?;
            if let Ok(rec) = serde_json::from_slice::<serde_json::Value>(v.value())
                && let Some(org) = rec["organizationId"].as_str()
            {
                org_of_session.insert(k.value().to_owned(), org.to_owned());
            }
        }
        let mut totals: HashMap<String, u64> = HashMap::new();
        for row in txn.open_table(PLUGIN_KV)?.iter()? {
            let (k, v) = row?;
            let key = k.value();
            let Some(end) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            let id = String::from_utf8_lossy(&key[1..end]).into_owned();
            let org = match key.first() {
                Some(b'o') => Some(id),
                Some(b's') => org_of_session.get(&id).cloned(),
                _ => None,
            };
            if let Some(org) = org {
                *totals.entry(org).or_default() += (key.len() + v.value().len()) as u64;
            }
        }
        let mut usage = txn.open_table(USAGE)?;
        for (org, bytes) in totals {
            usage.insert(org.as_str(), bytes)?;
        }
        txn.open_table(META)?.insert(COUNTED, b"1".as_slice())?;
    }
    db.commit(txn)?;
    Ok(())
}
