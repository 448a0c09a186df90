//! The inbound journal: WhatsApp's messages are committed to disk before WhatsApp is told
//! they arrived, delivered to plugins from there, and forgotten once every subscriber had
//! them. A crash between WhatsApp's acknowledgement and the plugins loses no message, and a
//! batch WhatsApp sends again (it does, when a crash came before its acknowledgement) is
//! not delivered twice.

use super::{EventBus, EventEnvelope};
use crate::engines::whatsapp_web::InboundJournal;
use crate::engines::{EngineEvent, EngineSink};
use crate::storage::{Database, StorageError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `(session, seq)` → an event not yet delivered to every subscriber.
const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox_pending");
/// `(session, digest of the event's name and payload)` → when it was taken in.
const SEEN: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("inbox_seen");

/// How long a taken-in event is remembered against redelivery. WhatsApp redelivers what
/// it was not told arrived on the next connection: a week covers a gateway down that long.
pub const REMEMBER_MS: u64 = 7 * 24 * 3600 * 1000;
/// How often remembered events older than [`REMEMBER_MS`] are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Serialize, Deserialize)]
struct Row {
    id: String,
    event: String,
    organization: String,
    timestamp: u64,
    payload: Value,
}

impl Row {
    fn envelope(self, session: &str, seq: u64) -> EventEnvelope {
        let mut e = EventEnvelope::new(&self.event, session, &self.organization, self.payload);
        e.id = self.id;
        e.timestamp = self.timestamp;
        e.journal = Some(seq);
        e
    }
}

struct Inner {
    db: Database,
    bus: EventBus,
    /// The next row's number: above every row on disk, and growing.
    seq: AtomicU64,
}

/// The journal of one database; cheap to clone.
#[derive(Clone)]
pub struct Inbox(Arc<Inner>);

impl Inbox {
    pub fn open(db: Database, bus: EventBus) -> Result<Inbox, StorageError> {
        let txn = db.redb().begin_write()?;
        txn.open_table(PENDING)?;
        txn.open_table(SEEN)?;
        db.commit(txn)?;
        let mut last = 0;
        {
            let txn = db.redb().begin_read()?;
            for row in txn.open_table(PENDING)?.iter()? {
                last = last.max(row?.0.value().1);
            }
        }
        let clock = crate::clock::now_ms().saturating_mul(1_000_000);
        Ok(Inbox(Arc::new(Inner {
            db,
            bus,
            seq: AtomicU64::new(last.max(clock) + 1),
        })))
    }

    /// Commits `events` (name, payload) of `session`, skipping those already taken in,
    /// then queues the new ones for delivery, in order. Answers how many were new.
    pub async fn take_in(
        &self,
        session: &str,
        organization: &str,
        events: Vec<(String, Value)>,
    ) -> Result<usize, StorageError> {
        let now = crate::clock::now_ms();
        let rows: Vec<([u8; 32], u64, Row)> = events
            .into_iter()
            .map(|(event, payload)| {
                let digest = digest(&event, &payload);
                let seq = self.0.seq.fetch_add(1, Ordering::Relaxed);
                let row = Row {
                    id: format!("evt_{}", crate::ids::ordered()),
                    event,
                    organization: organization.to_owned(),
                    timestamp: now,
                    payload,
                };
                (digest, seq, row)
            })
            .collect();
        let owner = session.to_owned();
        let fresh = self
            .0
            .db
            .committer()
            .write(move |txn| {
                let mut seen = txn.open_table(SEEN)?;
                let mut pending = txn.open_table(PENDING)?;
                let mut fresh = Vec::new();
                for (digest, seq, row) in rows {
                    let key = (owner.as_str(), digest.as_slice());
                    if seen.get(key)?.is_some() {
                        continue;
                    }
                    let bytes = serde_json::to_vec(&row).expect("a JSON value serializes");
                    seen.insert(key, now)?;
                    pending.insert((owner.as_str(), seq), bytes.as_slice())?;
                    fresh.push((seq, row));
                }
                Ok(fresh)
            })
            .await?;
        let taken = fresh.len();
        for (seq, row) in fresh {
            // WhatsApp waits on us while the session's queue is full.
            self.0.bus.room_for(session).await;
            self.0.bus.publish(row.envelope(session, seq));
        }
        Ok(taken)
    }

    /// Forgets a delivered event. Not awaited by delivery: an acknowledgement lost in a
    /// crash means the event is delivered once more (at least once, never lost).
    pub fn delivered(&self, session: &str, seq: u64) {
        let (db, session) = (self.0.db.clone(), session.to_owned());
        crate::background::spawn(async move {
            let done = db
                .committer()
                .write(move |txn| {
                    txn.open_table(PENDING)?.remove((session.as_str(), seq))?;
                    Ok(())
                })
                .await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "cannot forget a delivered inbound event");
            }
        });
    }

    /// Queues every event left undelivered by the previous run, in each session's order;
    /// call before sessions reconnect so they come before anything new. Answers how many.
    pub fn replay(&self) -> Result<usize, StorageError> {
        let txn = self.0.db.redb().begin_read()?;
        let mut n = 0;
        for row in txn.open_table(PENDING)?.iter()? {
            let (key, value) = row?;
            let (session, seq) = key.value();
            let row: Row = serde_json::from_slice(value.value())
                .map_err(|e| StorageError::Corrupt(format!("inbound event: {e}")))?;
            self.0.bus.publish(row.envelope(session, seq));
            n += 1;
        }
        if n > 0 {
            tracing::info!(
                events = n,
                "replaying inbound events not delivered before the restart"
            );
        }
        Ok(n)
    }

    /// Removes a deleted session's undelivered and remembered events.
    pub async fn purge_session(&self, session: &str) -> Result<(), StorageError> {
        let session = session.to_owned();
        self.0
            .db
            .committer()
            .write(move |txn| {
                let s = session.as_str();
                txn.open_table(PENDING)?
                    .retain_in((s, 0)..=(s, u64::MAX), |_, _| false)?;
                txn.open_table(SEEN)?
                    .retain_in((s, [].as_slice())..(s, [0xff; 33].as_slice()), |_, _| false)?;
                Ok(())
            })
            .await
    }

    /// Forgets remembered events taken in before `before` (ms). Answers how many.
    pub async fn prune(&self, before: u64) -> Result<u64, StorageError> {
        self.0
            .db
            .committer()
            .write(move |txn| {
                let mut removed = 0;
                txn.open_table(SEEN)?.retain(|_, at| {
                    let keep = at >= before;
                    removed += u64::from(!keep);
                    keep
                })?;
                Ok(removed)
            })
            .await
    }

    /// Prunes remembered events now and every hour.
    pub fn spawn_pruner(&self) {
        let inbox = self.clone();
        crate::background::spawn(async move {
            loop {
                let before = crate::clock::now_ms().saturating_sub(REMEMBER_MS);
                match inbox.prune(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(events = n, "forgot old inbound events"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune the inbound journal"),
                }
                tokio::time::sleep(PRUNE_EVERY).await;
            }
        });
    }

    /// The engine's hook: a batch of a session's inbound events is committed here before
    /// WhatsApp is acknowledged. Other events in the batch (none today) go the usual way.
    pub fn journal(&self, sink: EngineSink) -> InboundJournal {
        let inbox = self.clone();
        Arc::new(move |session: String, events: Vec<EngineEvent>| {
            let (inbox, sink) = (inbox.clone(), sink.clone());
            Box::pin(async move {
                let Some(organization) = sink.organization_of(&session) else {
                    return Ok(()); // The session was deleted: nobody to deliver to.
                };
                let mut domain = Vec::with_capacity(events.len());
                for event in events {
                    match event {
                        EngineEvent::Domain { name, payload, .. } => {
                            sink.count(&name);
                            domain.push((name, payload));
                        }
                        other => sink.send(other),
                    }
                }
                inbox
                    .take_in(&session, &organization, domain)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
    }
}

/// What identifies an event across WhatsApp's redeliveries: its name and payload (a
/// message's payload carries its chat, id and WhatsApp's timestamp).
fn digest(event: &str, payload: &Value) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(event.as_bytes());
    h.update([0]);
    h.update(payload.to_string().as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(id: &str) -> (String, Value) {
        (
            "message".to_owned(),
            json!({"id": id, "chat": "33612345678@s.whatsapp.net", "text": "Bonjour"}),
        )
    }

    async fn next(bus: &EventBus) -> Arc<EventEnvelope> {
        let e = tokio::time::timeout(Duration::from_secs(2), bus.next())
            .await
            .expect("an event is queued");
        bus.done(&e);
        e
    }

    async fn reopen(path: &std::path::Path) -> Database {
        for _ in 0..100 {
            match Database::open(path) {
                Err(StorageError::Locked(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
                other => return other.unwrap(),
            }
        }
        panic!("the database stayed locked");
    }

    #[tokio::test]
    async fn events_survive_a_restart_until_delivered_and_come_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        let first_ids;
        {
            let db = Database::open(&path).unwrap();
            let bus = EventBus::new(100);
            let inbox = Inbox::open(db, bus.clone()).unwrap();
            let taken = inbox
                .take_in("s1", "org_a", vec![message("A1"), message("A2")])
                .await
                .unwrap();
            assert_eq!(taken, 2);
            // WhatsApp sends the same batch again (no acknowledgement reached it).
            let again = inbox
                .take_in(
                    "s1",
                    "org_a",
                    vec![message("A1"), message("A2"), message("A3")],
                )
                .await
                .unwrap();
            assert_eq!(again, 1, "only the new message is taken in");
            let delivered = [next(&bus).await, next(&bus).await, next(&bus).await];
            let ids: Vec<_> = delivered.iter().map(|e| e.payload["id"].clone()).collect();
            assert_eq!(ids, [json!("A1"), json!("A2"), json!("A3")]);
            assert!(delivered.iter().all(|e| e.organization == "org_a"));
            first_ids = delivered.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
            // Only A1 reached every subscriber before the crash.
            inbox.delivered("s1", delivered[0].journal.unwrap());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The commit thread lets go of the file once the last handle is gone.
        let db = reopen(&path).await;
        let bus = EventBus::new(100);
        let inbox = Inbox::open(db, bus.clone()).unwrap();
        assert_eq!(inbox.replay().unwrap(), 2);
        let (a2, a3) = (next(&bus).await, next(&bus).await);
        assert_eq!(
            (a2.payload["id"].as_str(), a3.payload["id"].as_str()),
            (Some("A2"), Some("A3"))
        );
        // The same event ids as the first time, so a subscriber can tell a redelivery.
        assert_eq!([a2.id.clone(), a3.id.clone()], first_ids[1..]);
        // A redelivery from WhatsApp after the restart is still recognised.
        assert_eq!(
            inbox
                .take_in("s1", "org_a", vec![message("A2")])
                .await
                .unwrap(),
            0
        );
        // New events number after the replayed ones, keeping the session's order.
        inbox
            .take_in("s1", "org_a", vec![message("A4")])
            .await
            .unwrap();
        let a4 = next(&bus).await;
        assert!(a4.journal.unwrap() > a3.journal.unwrap());
    }

    #[tokio::test]
    async fn a_deleted_session_and_old_memories_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("gateway.redb")).unwrap();
        let bus = EventBus::new(100);
        let inbox = Inbox::open(db, bus.clone()).unwrap();
        inbox
            .take_in("gone", "org_a", vec![message("G1")])
            .await
            .unwrap();
        inbox
            .take_in("kept", "org_a", vec![message("K1")])
            .await
            .unwrap();
        inbox.purge_session("gone").await.unwrap();
        let replayed = EventBus::new(100);
        let again = Inbox::open(inbox.0.db.clone(), replayed.clone()).unwrap();
        assert_eq!(again.replay().unwrap(), 1);
        assert_eq!(next(&replayed).await.session, "kept");
        // The deleted session's memory went too: the same message is new again.
        assert_eq!(
            inbox
                .take_in("gone", "org_a", vec![message("G1")])
                .await
                .unwrap(),
            1
        );
        // Memories older than the cut-off are pruned; newer ones stay.
        assert_eq!(inbox.prune(0).await.unwrap(), 0);
        assert_eq!(inbox.prune(u64::MAX).await.unwrap(), 2);
        assert_eq!(
            inbox
                .take_in("kept", "org_a", vec![message("K1")])
                .await
                .unwrap(),
            1
        );
    }
}
