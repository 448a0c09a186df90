//! The outbox's durable state in redb, behind a narrow interface (DESIGN.md "Toward more
//! than one machine"): items by session and queue position, with indexes by outbox id and
//! by WhatsApp id, and idempotency keys by organization. Writes are group-commit jobs:
//! nothing is acknowledged before it is on disk.

use super::model::{KeyRecord, OutboxItem, SendStatus};
use crate::storage::{Database, StorageError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

/// `session \0 seq(BE)` → item (JSON).
const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox_items");
/// outbox id → `session \0 seq(BE)`.
const BY_ID: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox_ids");
/// `session \0 WhatsApp id` → outbox id.
const BY_WA_ID: TableDefinition<&[u8], &str> = TableDefinition::new("outbox_wa_ids");
/// `organization \0 key` → key record (JSON).
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("idempotency_keys");

fn item_key(session: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(session.len() + 9);
    k.extend_from_slice(session.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn session_prefix(session: &str) -> Vec<u8> {
    let mut k = session.as_bytes().to_vec();
    k.push(0);
    k
}

fn wa_key(session: &str, wa_id: &str) -> Vec<u8> {
    let mut k = session_prefix(session);
    k.extend_from_slice(wa_id.as_bytes());
    k
}

fn key_key(org: &str, key: &str) -> Vec<u8> {
    let mut k = org.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(v).map_err(|e| StorageError::Invalid(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(b).map_err(|e| StorageError::Corrupt(format!("outbox: {e}")))
}

/// The smallest key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// Creates the tables (at start, so readers never meet a missing one).
pub(super) fn create_tables(db: &Database) -> Result<(), StorageError> {
    let txn = db.redb().begin_write()?;
    txn.open_table(ITEMS)?;
    txn.open_table(BY_ID)?;
    txn.open_table(BY_WA_ID)?;
    txn.open_table(KEYS)?;
    db.commit(txn)?;
    Ok(())
}

/// Writes an item (new or changed) and its indexes.
pub(super) fn put_item(txn: &WriteTransaction, item: &OutboxItem) -> Result<(), StorageError> {
    let key = item_key(&item.session, item.seq);
    txn.open_table(ITEMS)?
        .insert(key.as_slice(), encode(item)?.as_slice())?;
    txn.open_table(BY_ID)?
        .insert(item.outbox_id.as_str(), key.as_slice())?;
    txn.open_table(BY_WA_ID)?.insert(
        wa_key(&item.session, &item.wa_message_id).as_slice(),
        item.outbox_id.as_str(),
    )?;
    Ok(())
}

pub(super) fn put_key(
    txn: &WriteTransaction,
    org: &str,
    key: &str,
    record: &KeyRecord,
) -> Result<(), StorageError> {
    txn.open_table(KEYS)?
        .insert(key_key(org, key).as_slice(), encode(record)?.as_slice())?;
    Ok(())
}

pub(super) fn key_record(
    db: &Database,
    org: &str,
    key: &str,
) -> Result<Option<KeyRecord>, StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(KEYS)?;
    let v = t.get(key_key(org, key).as_slice())?;
    v.map(|v| decode(v.value())).transpose()
}

pub(super) fn item(db: &Database, outbox_id: &str) -> Result<Option<OutboxItem>, StorageError> {
    let txn = db.redb().begin_read()?;
    let Some(key) = txn
        .open_table(BY_ID)?
        .get(outbox_id)?
        .map(|v| v.value().to_vec())
    else {
        return Ok(None);
    };
    let v = txn.open_table(ITEMS)?.get(key.as_slice())?;
    v.map(|v| decode(v.value())).transpose()
}

/// The item at a queue position.
pub(super) fn item_at(
    db: &Database,
    session: &str,
    seq: u64,
) -> Result<Option<OutboxItem>, StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(ITEMS)?;
    let v = t.get(item_key(session, seq).as_slice())?;
    v.map(|v| decode(v.value())).transpose()
}

/// An item by id, inside a write (read-modify-write).
pub(super) fn item_in(
    txn: &WriteTransaction,
    outbox_id: &str,
) -> Result<Option<OutboxItem>, StorageError> {
    let Some(key) = txn
        .open_table(BY_ID)?
        .get(outbox_id)?
        .map(|v| v.value().to_vec())
    else {
        return Ok(None);
    };
    let t = txn.open_table(ITEMS)?;
    let v = t.get(key.as_slice())?;
    v.map(|v| decode(v.value())).transpose()
}

pub(super) fn item_by_wa_id(
    db: &Database,
    session: &str,
    wa_id: &str,
) -> Result<Option<OutboxItem>, StorageError> {
    let id = {
        let txn = db.redb().begin_read()?;
        let t = txn.open_table(BY_WA_ID)?;
        let v = t.get(wa_key(session, wa_id).as_slice())?;
        v.map(|v| v.value().to_owned())
    };
    match id {
        Some(id) => item(db, &id),
        None => Ok(None),
    }
}

/// Every item still pending, in each session's queue order (at start).
pub(super) fn pending(db: &Database) -> Result<Vec<OutboxItem>, StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(ITEMS)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        let item: OutboxItem = decode(v.value())?;
        if item.status == SendStatus::Pending {
            out.push(item);
        }
    }
    Ok(out)
}

/// The highest queue position used in each session.
pub(super) fn last_seqs(db: &Database) -> Result<Vec<(String, u64)>, StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(ITEMS)?;
    let mut out: Vec<(String, u64)> = Vec::new();
    for row in t.iter()? {
        let (k, _) = row?;
        let k = k.value();
        let Some(split) = k.iter().position(|b| *b == 0) else {
            continue;
        };
        let session = String::from_utf8_lossy(&k[..split]).into_owned();
        let seq = k[split + 1..]
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        match out.last_mut() {
            Some((s, last)) if *s == session => *last = (*last).max(seq),
            _ => out.push((session, seq)),
        }
    }
    Ok(out)
}

/// A page of a session's items, newest first, optionally of one status; the cursor is the
/// queue position to continue below.
pub(super) fn list(
    db: &Database,
    session: &str,
    status: Option<SendStatus>,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<OutboxItem>, Option<u64>), StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(ITEMS)?;
    let lo = item_key(session, 0);
    let hi = item_key(session, before.unwrap_or(u64::MAX));
    let mut out = Vec::new();
    for row in t.range(lo.as_slice()..hi.as_slice())?.rev() {
        let (_, v) = row?;
        let item: OutboxItem = decode(v.value())?;
        if status.is_some_and(|s| s != item.status) {
            continue;
        }
        if out.len() == limit {
            let next = out.last().map(|i: &OutboxItem| i.seq);
            return Ok((out, next));
        }
        out.push(item);
    }
    Ok((out, None))
}

/// Removes every item and index of a session (deleting it), in `txn`.
pub(super) fn purge_session(txn: &WriteTransaction, session: &str) -> Result<u64, StorageError> {
    let prefix = session_prefix(session);
    let end = prefix_end(&prefix);
    let mut ids = Vec::new();
    let mut removed = 0;
    {
        let mut items = txn.open_table(ITEMS)?;
        items.retain_in::<&[u8], _>(prefix.as_slice()..end.as_slice(), |_, v| {
            if let Ok(item) = serde_json::from_slice::<OutboxItem>(v) {
                ids.push(item.outbox_id);
            }
            removed += 1;
            false
        })?;
    }
    let mut by_id = txn.open_table(BY_ID)?;
    for id in ids {
        by_id.remove(id.as_str())?;
    }
    txn.open_table(BY_WA_ID)?
        .retain_in::<&[u8], _>(prefix.as_slice()..end.as_slice(), |_, _| false)?;
    Ok(removed)
}

/// Deletes settled items older than `settled_before` and keys expired by `now`.
pub(super) fn sweep(
    txn: &WriteTransaction,
    settled_before: u64,
    now: u64,
) -> Result<(u64, u64), StorageError> {
    let mut old = Vec::new();
    {
        let items = txn.open_table(ITEMS)?;
        for row in items.iter()? {
            let (_, v) = row?;
            let item: OutboxItem = decode(v.value())?;
            if item.status != SendStatus::Pending && item.status_at < settled_before {
                old.push(item);
            }
        }
    }
    let mut items = txn.open_table(ITEMS)?;
    let mut by_id = txn.open_table(BY_ID)?;
    let mut by_wa = txn.open_table(BY_WA_ID)?;
    for item in &old {
        items.remove(item_key(&item.session, item.seq).as_slice())?;
        by_id.remove(item.outbox_id.as_str())?;
        by_wa.remove(wa_key(&item.session, &item.wa_message_id).as_slice())?;
    }
    let mut keys = txn.open_table(KEYS)?;
    let mut expired = 0;
    keys.retain(|_, v| {
        let keep = serde_json::from_slice::<KeyRecord>(v).is_ok_and(|r| r.expires_at > now);
        if !keep {
            expired += 1;
        }
        keep
    })?;
    Ok((old.len() as u64, expired))
}
