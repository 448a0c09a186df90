//! The webhook engine's durable state in redb, behind a narrow interface (DESIGN.md
//! "Toward more than one machine"): targets by id, deliveries by id, each webhook's
//! deliveries in creation order, and the due index the dispatcher reads. Writes run as
//! group-commit jobs: a delivery is on disk before its first attempt.

use super::model::{Delivery, DeliveryStatus, Webhook};
use crate::storage::{Database, StorageError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

/// webhook id → webhook (JSON).
const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// delivery id → delivery (JSON).
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_deliveries");
/// `webhook \0 delivery id` (ULIDs: creation order) → ().
const BY_WEBHOOK: TableDefinition<&[u8], ()> = TableDefinition::new("webhook_delivery_log");
/// `webhook \0 due(BE ms) delivery id` → () for deliveries waiting for an attempt.
const DUE: TableDefinition<&[u8], ()> = TableDefinition::new("webhook_due");
/// `webhook \0 delivery id` → () for dead deliveries: the dead-letter list, oldest first.
const DEAD: TableDefinition<&[u8], ()> = TableDefinition::new("webhook_dead");

fn prefix(webhook: &str) -> Vec<u8> {
    let mut k = webhook.as_bytes().to_vec();
    k.push(0);
    k
}

fn log_key(webhook: &str, delivery: &str) -> Vec<u8> {
    let mut k = prefix(webhook);
    k.extend_from_slice(delivery.as_bytes());
    k
}

/// The due time's bytes in a [`DUE`] key, between the prefix and the delivery id.
const DUE_AT_LEN: usize = 8;

fn due_key(webhook: &str, at: u64, delivery: &str) -> Vec<u8> {
    let mut k = prefix(webhook);
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(delivery.as_bytes());
    k
}

/// The keys one webhook's entries occupy in an index (`webhook \0 …`), and the delivery
/// id each of them ends with.
struct Span {
    start: Vec<u8>,
    /// The smallest key after every key starting with `start`.
    end: Vec<u8>,
}

impl Span {
    fn of(webhook: &str) -> Span {
        let start = prefix(webhook);
        let mut end = start.clone();
        *end.last_mut().expect("prefixes end with a 0 byte") += 1;
        Span { start, end }
    }

    fn range(&self) -> std::ops::Range<&[u8]> {
        self.start.as_slice()..self.end.as_slice()
    }

    /// The delivery id in `key`, after the prefix and `skip` bytes (the due time in
    /// [`DUE`], nothing in the other indexes).
    fn id(&self, key: &[u8], skip: usize) -> String {
        String::from_utf8_lossy(&key[self.start.len() + skip..]).into_owned()
    }
}

/// A delivery by id from an open deliveries table.
fn load(
    deliveries: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Delivery>, StorageError> {
    deliveries.get(id)?.map(|v| decode(v.value())).transpose()
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(v).map_err(|e| StorageError::Invalid(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(b).map_err(|e| StorageError::Corrupt(format!("webhooks: {e}")))
}

pub(super) fn create_tables(db: &Database) -> Result<(), StorageError> {
    let txn = db.redb().begin_write()?;
    txn.open_table(WEBHOOKS)?;
    txn.open_table(DELIVERIES)?;
    txn.open_table(BY_WEBHOOK)?;
    txn.open_table(DUE)?;
    txn.open_table(DEAD)?;
    db.commit(txn)?;
    Ok(())
}

pub(super) fn load_webhooks(db: &Database) -> Result<Vec<Webhook>, StorageError> {
    db.load_all(WEBHOOKS)
}

pub(super) fn put_webhook(txn: &WriteTransaction, w: &Webhook) -> Result<(), StorageError> {
    txn.open_table(WEBHOOKS)?
        .insert(w.id.as_str(), encode(w)?.as_slice())?;
    Ok(())
}

/// Removes a webhook with every delivery it has.
pub(super) fn delete_webhook(txn: &WriteTransaction, id: &str) -> Result<(), StorageError> {
    txn.open_table(WEBHOOKS)?.remove(id)?;
    let span = Span::of(id);
    let mut log = txn.open_table(BY_WEBHOOK)?;
    let mut deliveries = txn.open_table(DELIVERIES)?;
    for row in log.extract_from_if(span.range(), |_, _| true)? {
        let (k, _) = row?;
        deliveries.remove(span.id(k.value(), 0).as_str())?;
    }
    for table in [DUE, DEAD] {
        txn.open_table(table)?
            .extract_from_if(span.range(), |_, _| true)?
            .for_each(drop);
    }
    Ok(())
}

/// Writes a delivery (new or changed) and keeps its due entry in step: `was_due` is the
/// time it was due at before this change, if it was waiting.
pub(super) fn put_delivery(
    txn: &WriteTransaction,
    d: &Delivery,
    was_due: Option<u64>,
) -> Result<(), StorageError> {
    txn.open_table(DELIVERIES)?
        .insert(d.id.as_str(), encode(d)?.as_slice())?;
    txn.open_table(BY_WEBHOOK)?
        .insert(log_key(&d.webhook_id, &d.id).as_slice(), ())?;
    let mut dead = txn.open_table(DEAD)?;
    if d.status == DeliveryStatus::Dead {
        dead.insert(log_key(&d.webhook_id, &d.id).as_slice(), ())?;
    } else {
        dead.remove(log_key(&d.webhook_id, &d.id).as_slice())?;
    }
    let mut due = txn.open_table(DUE)?;
    if let Some(at) = was_due {
        due.remove(due_key(&d.webhook_id, at, &d.id).as_slice())?;
    }
    if !d.status.is_finished()
        && let Some(at) = d.next_attempt_at
    {
        due.insert(due_key(&d.webhook_id, at, &d.id).as_slice(), ())?;
    }
    Ok(())
}

fn remove_delivery(txn: &WriteTransaction, d: &Delivery) -> Result<(), StorageError> {
    txn.open_table(DELIVERIES)?.remove(d.id.as_str())?;
    txn.open_table(BY_WEBHOOK)?
        .remove(log_key(&d.webhook_id, &d.id).as_slice())?;
    txn.open_table(DEAD)?
        .remove(log_key(&d.webhook_id, &d.id).as_slice())?;
    if let Some(at) = d.next_attempt_at {
        txn.open_table(DUE)?
            .remove(due_key(&d.webhook_id, at, &d.id).as_slice())?;
    }
    Ok(())
}

pub(super) fn delivery(db: &Database, id: &str) -> Result<Option<Delivery>, StorageError> {
    let txn = db.redb().begin_read()?;
    load(&txn.open_table(DELIVERIES)?, id)
}

/// The same, inside a write (to change it from what is stored, not from a stale copy).
pub(super) fn delivery_in(
    txn: &WriteTransaction,
    id: &str,
) -> Result<Option<Delivery>, StorageError> {
    load(&txn.open_table(DELIVERIES)?, id)
}

/// Up to `limit` deliveries of `webhook` due by `now` and not in `busy`, earliest first,
/// and when the next one not yet due is.
pub(super) fn due(
    db: &Database,
    webhook: &str,
    now: u64,
    limit: usize,
    busy: &std::collections::HashSet<String>,
) -> Result<(Vec<String>, Option<u64>), StorageError> {
    let txn = db.redb().begin_read()?;
    let t = txn.open_table(DUE)?;
    let span = Span::of(webhook);
    let mut out = Vec::new();
    for row in t.range(span.range())? {
        let (k, _) = row?;
        let k = k.value();
        let at_bytes = &k[span.start.len()..span.start.len() + DUE_AT_LEN];
        let at = u64::from_be_bytes(at_bytes.try_into().expect("a due time"));
        if at > now {
            return Ok((out, Some(at)));
        }
        let id = span.id(k, DUE_AT_LEN);
        if busy.contains(&id) {
            continue;
        }
        out.push(id);
        if out.len() >= limit {
            break;
        }
    }
    Ok((out, None))
}

/// Which of a webhook's deliveries a [`page`] walks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Listing {
    /// The whole log.
    Every,
    /// The dead-letter index: only dead deliveries, however few among the rest.
    DeadLetters,
}

/// Deliveries one page reads at most. A filter that matches little stops there and
/// answers what it found with a cursor to go on from, so no request reads a webhook's
/// whole log (up to `retention_ms` of deliveries) while its thread serves others.
pub(super) const PAGE_READS: usize = 2_000;

/// The webhook's deliveries newest first from before `before` (a delivery id), those
/// passing `keep`, at most `limit`; and the id to continue before when more remain (or
/// when [`PAGE_READS`] ran out first: the page may then be short, even empty).
pub(super) fn page(
    db: &Database,
    webhook: &str,
    listing: Listing,
    before: Option<&str>,
    limit: usize,
    keep: impl Fn(&Delivery) -> bool,
) -> Result<(Vec<Delivery>, Option<String>), StorageError> {
    let txn = db.redb().begin_read()?;
    let index = txn.open_table(match listing {
        Listing::Every => BY_WEBHOOK,
        Listing::DeadLetters => DEAD,
    })?;
    let deliveries = txn.open_table(DELIVERIES)?;
    let span = Span::of(webhook);
    let end = match before {
        Some(b) => log_key(webhook, b),
        None => span.end.clone(),
    };
    let mut out: Vec<Delivery> = Vec::new();
    let mut last_read = None;
    let rows = index.range(span.start.as_slice()..end.as_slice())?.rev();
    for (read, row) in rows.enumerate() {
        if read == PAGE_READS {
            // More rows remain: the next page starts after the last one read.
            return Ok((out, last_read));
        }
        let (k, _) = row?;
        let id = span.id(k.value(), 0);
        let found = load(&deliveries, &id)?;
        last_read = Some(id);
        let Some(d) = found.filter(|d| keep(d)) else {
            continue;
        };
        if out.len() == limit {
            let next = out.last().expect("limit ≥ 1").id.clone();
            return Ok((out, Some(next)));
        }
        out.push(d);
    }
    Ok((out, None))
}

/// The webhook's dead deliveries passing `keep`, oldest first, at most `limit` (read
/// from the dead-letter index, not the whole log).
pub(super) fn dead(
    db: &Database,
    webhook: &str,
    limit: usize,
    keep: impl Fn(&Delivery) -> bool,
) -> Result<Vec<Delivery>, StorageError> {
    let txn = db.redb().begin_read()?;
    let index = txn.open_table(DEAD)?;
    let deliveries = txn.open_table(DELIVERIES)?;
    let span = Span::of(webhook);
    let mut out = Vec::new();
    for row in index.range(span.range())? {
        let (k, _) = row?;
        if let Some(d) = load(&deliveries, &span.id(k.value(), 0))?
            && keep(&d)
        {
            out.push(d);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Up to `limit` deliveries of `webhook` to drop: finished ones last changed before
/// `cutoff`, and the oldest dead ones beyond `max_dead`. A read: the caller removes them
/// with [`remove`] in small commits, so pruning never holds the writer long.
pub(super) fn prunable(
    db: &Database,
    webhook: &str,
    cutoff: u64,
    max_dead: usize,
    limit: usize,
) -> Result<Vec<String>, StorageError> {
    let txn = db.redb().begin_read()?;
    let log = txn.open_table(BY_WEBHOOK)?;
    let deliveries = txn.open_table(DELIVERIES)?;
    let span = Span::of(webhook);
    let mut out = Vec::new();
    // The log is in creation order: nothing created after the cutoff can be expired.
    for row in log.range(span.range())? {
        let (k, _) = row?;
        let id = span.id(k.value(), 0);
        let Some(d) = load(&deliveries, &id)? else {
            continue;
        };
        if d.created_at >= cutoff || out.len() >= limit {
            break;
        }
        if d.status.is_finished() && d.updated_at < cutoff {
            out.push(id);
        }
    }
    let index = txn.open_table(DEAD)?;
    let dead = index.range(span.range())?.count();
    for row in index
        .range(span.range())?
        .take(dead.saturating_sub(max_dead))
    {
        if out.len() >= limit {
            break;
        }
        let (k, _) = row?;
        let id = span.id(k.value(), 0);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Removes deliveries by id with their index entries.
pub(super) fn remove(txn: &WriteTransaction, ids: &[String]) -> Result<(), StorageError> {
    for id in ids {
        if let Some(d) = delivery_in(txn, id)? {
            remove_delivery(txn, &d)?;
        }
    }
    Ok(())
}

/// Every waiting delivery of `webhook` becomes dead (the webhook was paused).
pub(super) fn kill_waiting(
    txn: &WriteTransaction,
    webhook: &str,
    now: u64,
) -> Result<usize, StorageError> {
    let span = Span::of(webhook);
    let ids: Vec<String> = {
        let due = txn.open_table(DUE)?;
        let mut ids = Vec::new();
        for row in due.range(span.range())? {
            let (k, _) = row?;
            ids.push(span.id(k.value(), DUE_AT_LEN));
        }
        ids
    };
    for id in &ids {
        if let Some(mut d) = delivery_in(txn, id)? {
            let was = d.next_attempt_at;
            d.status = DeliveryStatus::Dead;
            d.next_attempt_at = None;
            d.updated_at = now;
            put_delivery(txn, &d, was)?;
        }
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::model::{RetryPolicy, Webhook};

    fn webhook() -> Webhook {
        Webhook {
            id: "wh_1".into(),
            organization_id: "org".into(),
            url: "https://example.com".into(),
            events: vec!["*".into()],
            session_id: None,
            active: true,
            custom_headers: Vec::new(),
            retry_policy: RetryPolicy::default(),
            disabled_reason: None,
            created_at: 0,
            updated_at: 0,
            keys: Vec::new(),
            failing_since: None,
        }
    }

    /// A database with the webhook tables, in a directory that lives as long as it.
    fn store() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db.redb")).unwrap();
        create_tables(&db).unwrap();
        (dir, db)
    }

    #[test]
    fn pruning_drops_expired_and_surplus_dead_deliveries_only() {
        let (_dir, db) = store();
        let w = webhook();
        let mut made = Vec::new();
        // Old: one succeeded, one still retrying (kept); then four dead, recent.
        for (at, status) in [
            (10, DeliveryStatus::Succeeded),
            (20, DeliveryStatus::Retrying),
            (200, DeliveryStatus::Dead),
            (210, DeliveryStatus::Dead),
            (220, DeliveryStatus::Dead),
            (230, DeliveryStatus::Succeeded),
        ] {
            let mut d = Delivery::new(&w, "evt", "message", None, "{}".into(), at);
            d.status = status;
            if status.is_finished() {
                d.next_attempt_at = None;
            }
            let stored = d.clone();
            db.committer()
                .write_blocking(move |txn| put_delivery(txn, &stored, None))
                .unwrap();
            made.push(d);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // Cutoff 100, at most 2 dead: the old succeeded one and the oldest dead one go.
        let ids = prunable(&db, "wh_1", 100, 2, 100).unwrap();
        assert_eq!(ids, vec![made[0].id.clone(), made[2].id.clone()]);
        db.committer()
            .write_blocking(move |txn| remove(txn, &ids))
            .unwrap();
        assert!(delivery(&db, &made[0].id).unwrap().is_none());
        assert!(delivery(&db, &made[1].id).unwrap().is_some());
        let dead_left = dead(&db, "wh_1", 10, |_| true).unwrap();
        assert_eq!(dead_left.len(), 2);
        assert!(prunable(&db, "wh_1", 100, 2, 100).unwrap().is_empty());
        // The waiting one is still due; deleting the webhook removes everything.
        let busy = Default::default();
        assert_eq!(
            due(&db, "wh_1", 1000, 10, &busy).unwrap().0,
            vec![made[1].id.clone()]
        );
        db.committer()
            .write_blocking(|txn| delete_webhook(txn, "wh_1"))
            .unwrap();
        assert!(due(&db, "wh_1", 1000, 10, &busy).unwrap().0.is_empty());
        assert!(dead(&db, "wh_1", 10, |_| true).unwrap().is_empty());
        assert!(delivery(&db, &made[5].id).unwrap().is_none());
    }

    #[test]
    fn pages_read_the_dead_letter_index_and_stop_reading_at_the_cap() {
        let (_dir, db) = store();
        let w = webhook();
        let total = PAGE_READS + 600;
        let status = |i: usize| match i {
            3 => DeliveryStatus::Retrying,
            i if i % 1000 == 7 => DeliveryStatus::Dead,
            _ => DeliveryStatus::Succeeded,
        };
        let made: Vec<Delivery> = (0..total)
            .map(|i| {
                let mut d = Delivery::new(&w, "evt", "message", None, "{}".into(), i as u64);
                d.id = format!("dlv_{i:05}");
                d.status = status(i);
                d
            })
            .collect();
        db.committer()
            .write_blocking(move |txn| made.iter().try_for_each(|d| put_delivery(txn, d, None)))
            .unwrap();
        let ids = |page: &[Delivery]| page.iter().map(|d| d.id.clone()).collect::<Vec<_>>();

        // Unfiltered: a full page, newest first, and the cursor after its last item.
        let (first, next) = page(&db, "wh_1", Listing::Every, None, 3, |_| true).unwrap();
        assert_eq!(ids(&first), ["dlv_02599", "dlv_02598", "dlv_02597"]);
        assert_eq!(next.as_deref(), Some("dlv_02597"));

        // Dead letters come from their index: all three, however far apart in the log.
        let is_dead = |d: &Delivery| d.status == DeliveryStatus::Dead;
        let (dead, next) = page(&db, "wh_1", Listing::DeadLetters, None, 10, is_dead).unwrap();
        assert_eq!(ids(&dead), ["dlv_02007", "dlv_01007", "dlv_00007"]);
        assert_eq!(next, None);

        // A filter matching one old delivery: the first page stops at the cap, empty, with
        // a cursor after the last delivery it read; the next one finds it and ends.
        let retrying = |d: &Delivery| d.status == DeliveryStatus::Retrying;
        let (found, next) = page(&db, "wh_1", Listing::Every, None, 10, retrying).unwrap();
        assert!(found.is_empty());
        let cursor = format!("dlv_{:05}", total - PAGE_READS);
        assert_eq!(next.as_deref(), Some(cursor.as_str()));
        let (found, next) = page(&db, "wh_1", Listing::Every, Some(&cursor), 10, retrying).unwrap();
        assert_eq!(ids(&found), ["dlv_00003"]);
        assert_eq!(next, None);
    }
}
