//! The outbox (API.md §6.3): one durable FIFO send queue per session. Every message write
//! (send, edit, revoke, forward, vote, react) is an item: accepted after the idempotency
//! key and the rate are checked, committed to redb with its WhatsApp id before anything
//! is answered, then sent in order by the session's dispatcher — retried with backoff
//! while the failure is transient, until the TTL — and followed through the receipts
//! (pending → sent → delivered → read, or failed), each step a `message.status` event.
//! An item answered 202 is sent after a restart or a `kill -9`; it keeps its WhatsApp id
//! across attempts, so a resend of something that did go out is dropped by WhatsApp.

mod model;
mod rate;
mod store;

pub use model::{KeyRecord, OutboxItem, SendMode, SendStatus, StoredContent, StoredMediaSource};
pub use rate::Limit;

use crate::clock::now_ms;
use crate::config::MessagesConfig;
use crate::engines::{
    ChatState, MediaBytes, OutgoingContent, OutgoingMedia, OutgoingMessage, Receipt, ReceiptKind,
    SendError,
};
use crate::events::{EventBus, EventEnvelope};
use crate::media::MediaStore;
use crate::sessions::{SessionManager, SessionStatus};
use crate::storage::{Database, StorageError};
use rate::Buckets;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// Why a message was not accepted or an item cannot be acted on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("session is not connected: {0}")]
    NotConnected(String),
    #[error("rate limited ({}): retry in {retry_after_ms} ms", limit)]
    RateLimited {
        /// `perMinute`, `perHour`, or `pending` (the queue's cap).
        limit: &'static str,
        rate_per_min: u32,
        rate_per_hour: u32,
        retry_after_ms: u64,
    },
    /// The idempotency key went with another request; its outbox id.
    #[error("the idempotency key was used with another request ({0})")]
    KeyReused(String),
    #[error("{0}")]
    NotPending(String),
    #[error("outbox: {0}")]
    Storage(String),
}

impl From<StorageError> for OutboxError {
    fn from(e: StorageError) -> Self {
        OutboxError::Storage(e.to_string())
    }
}

/// A message to accept, as the plugin described it (after its validation).
#[derive(Debug, Clone)]
pub struct Submission {
    pub session: String,
    pub organization: String,
    pub chat: String,
    pub content: StoredContent,
    /// Inline media bytes to store with the item (written to the media store at accept).
    pub inline_media: Option<Vec<u8>>,
    pub reply_to: Option<crate::engines::MessageRef>,
    pub mentions: Vec<String>,
    pub forwarded: bool,
    pub mode: SendMode,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
}

/// What accepting answered.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub item: OutboxItem,
    /// 200 (settled) or 202 (still pending).
    pub http_status: u16,
    pub replayed: bool,
}

/// One session's queue in memory: the positions of its pending items, in order.
#[derive(Default)]
struct Queue {
    pending: VecDeque<u64>,
    /// The item the dispatcher is sending right now (cannot be cancelled).
    in_flight: Option<u64>,
    running: bool,
    wake: Arc<Notify>,
}

struct Inner {
    db: Database,
    sessions: Arc<SessionManager>,
    bus: EventBus,
    media: MediaStore,
    config: MessagesConfig,
    queues: Mutex<HashMap<String, Queue>>,
    last_seq: Mutex<HashMap<String, u64>>,
    buckets: Mutex<HashMap<String, Buckets>>,
    /// Sync requests waiting for their item to settle, by outbox id.
    waiters: Mutex<HashMap<String, watch::Sender<SendStatus>>>,
    /// Idempotency keys being accepted right now: a concurrent request with the same key
    /// waits for the first to commit, then replays it.
    accepting: Mutex<HashMap<(String, String), Arc<Notify>>>,
}

/// The outbox service.
#[derive(Clone)]
pub struct Outbox(Arc<Inner>);

/// Backoff of transient failures: 1 s, doubling, at most 60 s.
fn backoff(attempts: u32) -> Duration {
    Duration::from_millis((1_000u64 << attempts.saturating_sub(1).min(6)).min(60_000))
}

/// A WhatsApp Web message id: `3EB0` and 16 hex digits.
fn new_wa_message_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    format!("3EB0{}", hex::encode_upper(b))
}

impl Outbox {
    /// The outbox over `db`; `start` resumes what was pending.
    pub fn new(
        db: Database,
        sessions: Arc<SessionManager>,
        bus: EventBus,
        media: MediaStore,
        config: MessagesConfig,
    ) -> Result<Outbox, StorageError> {
        store::create_tables(&db)?;
        let last_seq = store::last_seqs(&db)?.into_iter().collect();
        Ok(Outbox(Arc::new(Inner {
            db,
            sessions,
            bus,
            media,
            config,
            queues: Mutex::new(HashMap::new()),
            last_seq: Mutex::new(last_seq),
            buckets: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            accepting: Mutex::new(HashMap::new()),
        })))
    }

    /// Queues every item still pending from before the (re)start and starts sending, and
    /// sweeps old items and keys every hour.
    pub fn start(&self) -> Result<usize, StorageError> {
        let pending = store::pending(&self.0.db)?;
        let n = pending.len();
        for item in pending {
            self.enqueue(&item.session, item.seq);
        }
        if n > 0 {
            tracing::info!(items = n, "outbox: resuming pending items");
        }
        let this = self.clone();
        crate::background::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                this.sweep().await;
            }
        });
        Ok(n)
    }

    async fn sweep(&self) {
        let now = now_ms();
        let before = now.saturating_sub(self.0.config.outbox_retention_ms);
        let result = self
            .0
            .db
            .committer()
            .write(move |txn| store::sweep(txn, before, now))
            .await;
        match result {
            Ok((items, keys)) if items + keys > 0 => {
                tracing::info!(items, keys, "outbox: swept old items and keys")
            }
            Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
            _ => {}
        }
        self.0.media.sweep();
    }

    /// Accepts a message: session state, idempotency key, rate (sync), the pending cap;
    /// then the item and its key record are committed together, and sync mode waits for
    /// the send (up to `messages.sync_timeout_ms`).
    pub async fn submit(&self, sub: Submission) -> Result<Accepted, OutboxError> {
        let record = self
            .0
            .sessions
            .registry()
            .get(&sub.session)
            .ok_or_else(|| OutboxError::NotFound("session not found".into()))?;
        let connected = record.status == SessionStatus::Working;
        let reconnecting = record.status == SessionStatus::Starting && record.is_paired();
        match sub.mode {
            SendMode::Sync if !connected => {
                return Err(OutboxError::NotConnected(
                    "a sync send needs a connected session; use async to queue it".into(),
                ));
            }
            SendMode::Async if !(connected || reconnecting) => {
                return Err(OutboxError::NotConnected(format!(
                    "the session is {}; it must be working or reconnecting",
                    record.status.as_str()
                )));
            }
            _ => {}
        }
        // Concurrent requests with one key: the first accepts, the others replay it.
        let _claim = match &sub.idempotency_key {
            Some(key) => Some(self.claim_key(&sub.organization, key).await),
            None => None,
        };
        if let Some(key) = &sub.idempotency_key
            && let Some(rec) = store::key_record(&self.0.db, &sub.organization, key)?
            && rec.expires_at > now_ms()
        {
            return self.replay(&rec, &sub.fingerprint).await;
        }
        if sub.mode == SendMode::Sync {
            let mut buckets = self.0.buckets.lock().expect("lock");
            let b = buckets.entry(sub.session.clone()).or_insert_with(|| {
                Buckets::new(record.rate_per_min, record.rate_per_hour, Instant::now())
            });
            b.set_limits(record.rate_per_min, record.rate_per_hour);
            if let Err((limit, wait)) = b.check(Instant::now()) {
                return Err(OutboxError::RateLimited {
                    limit: limit.as_str(),
                    rate_per_min: record.rate_per_min,
                    rate_per_hour: record.rate_per_hour,
                    retry_after_ms: wait,
                });
            }
        }
        let queued = self.queued(&sub.session);
        if queued >= self.0.config.max_pending_per_session {
            // Estimated from the rate: how long until the queue has shrunk by one.
            let retry_after_ms = 60_000 / u64::from(record.rate_per_min.max(1));
            return Err(OutboxError::RateLimited {
                limit: "pending",
                rate_per_min: record.rate_per_min,
                rate_per_hour: record.rate_per_hour,
                retry_after_ms,
            });
        }
        let mut content = sub.content.clone();
        if let Some(bytes) = sub.inline_media.clone()
            && let StoredContent::Media {
                source,
                mimetype,
                file_name,
                ..
            } = &mut content
        {
            let mt = mimetype
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            let stored = self
                .0
                .media
                .save_bytes(&sub.session, &mt, file_name.as_deref(), bytes)
                .await
                .map_err(|e| OutboxError::Invalid(e.to_string()))?;
            *source = StoredMediaSource::Upload { id: stored.id };
        } else if let StoredContent::Media {
            source: StoredMediaSource::Upload { id },
            kind,
            mimetype,
            ..
        } = &content
        {
            let meta =
                self.0.media.meta(&sub.session, id).await.map_err(|_| {
                    OutboxError::NotFound(format!("media {id} not found (or expired)"))
                })?;
            let sent_as = mimetype.as_deref().unwrap_or(&meta.mimetype);
            if !gateway_sdk::media_types::accepts(kind.as_str(), sent_as) {
                return Err(OutboxError::Invalid(format!(
                    "media {id} is {sent_as}; {} takes {}",
                    kind.as_str(),
                    gateway_sdk::media_types::allowed(kind.as_str())
                        .unwrap_or_default()
                        .join(", ")
                )));
            }
        }
        let now = now_ms();
        let seq = self.next_seq(&sub.session);
        let item = OutboxItem {
            outbox_id: format!("out_{}", ulid::Ulid::generate()),
            session: sub.session.clone(),
            organization: sub.organization.clone(),
            seq,
            wa_message_id: new_wa_message_id(),
            chat: sub.chat.clone(),
            content,
            reply_to: sub.reply_to.clone(),
            mentions: sub.mentions.clone(),
            forwarded: sub.forwarded,
            mode: sub.mode,
            status: SendStatus::Pending,
            status_at: now,
            created_at: now,
            attempts: 0,
            next_attempt_at: 0,
            error_code: None,
            error: None,
            http_status: (sub.mode == SendMode::Async).then_some(202),
        };
        let key = sub.idempotency_key.clone().map(|k| {
            (
                k,
                KeyRecord {
                    fingerprint: sub.fingerprint.clone(),
                    outbox_id: item.outbox_id.clone(),
                    session: sub.session.clone(),
                    expires_at: now + self.0.config.idempotency_ttl_ms,
                },
            )
        });
        let waiter = (sub.mode == SendMode::Sync).then(|| {
            let (tx, rx) = watch::channel(SendStatus::Pending);
            self.0
                .waiters
                .lock()
                .expect("lock")
                .insert(item.outbox_id.clone(), tx);
            rx
        });
        let (org, to_store) = (sub.organization.clone(), item.clone());
        let committed = self
            .0
            .db
            .committer()
            .write(move |txn| {
                store::put_item(txn, &to_store)?;
                if let Some((k, rec)) = &key {
                    store::put_key(txn, &org, k, rec)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = committed {
            self.0.waiters.lock().expect("lock").remove(&item.outbox_id);
            return Err(e.into());
        }
        self.publish_status(&item, None, None);
        self.enqueue(&item.session, item.seq);
        let Some(mut rx) = waiter else {
            return Ok(Accepted {
                item,
                http_status: 202,
                replayed: false,
            });
        };
        let timeout = Duration::from_millis(self.0.config.sync_timeout_ms);
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.is_settled())).await;
        self.0.waiters.lock().expect("lock").remove(&item.outbox_id);
        let mut current = store::item(&self.0.db, &item.outbox_id)?.unwrap_or(item);
        let http_status = if current.status.is_settled() {
            200
        } else {
            202
        };
        current.http_status = Some(http_status);
        let answered = current.clone();
        // Replays of the key answer what this request answered.
        self.0
            .db
            .committer()
            .write(move |txn| {
                if let Some(mut latest) = store::item_in(txn, &answered.outbox_id)? {
                    latest.http_status = Some(http_status);
                    store::put_item(txn, &latest)?;
                }
                Ok(())
            })
            .await?;
        Ok(Accepted {
            item: current,
            http_status,
            replayed: false,
        })
    }

    /// Waits until no other request is accepting `(org, key)`, then holds it until the
    /// returned claim drops.
    async fn claim_key(&self, org: &str, key: &str) -> KeyClaim {
        let id = (org.to_owned(), key.to_owned());
        loop {
            let busy = {
                let mut accepting = self.0.accepting.lock().expect("lock");
                match accepting.get(&id) {
                    Some(n) => Some(n.clone()),
                    None => {
                        accepting.insert(id.clone(), Arc::new(Notify::new()));
                        None
                    }
                }
            };
            match busy {
                None => {
                    return KeyClaim {
                        outbox: self.clone(),
                        id,
                    };
                }
                Some(n) => {
                    let notified = n.notified();
                    if self.0.accepting.lock().expect("lock").contains_key(&id) {
                        notified.await;
                    }
                }
            }
        }
    }

    /// The answer for a key used before: the same request replays the item as it is now;
    /// another request is refused.
    async fn replay(&self, rec: &KeyRecord, fingerprint: &str) -> Result<Accepted, OutboxError> {
        if rec.fingerprint != fingerprint {
            return Err(OutboxError::KeyReused(rec.outbox_id.clone()));
        }
        let item = store::item(&self.0.db, &rec.outbox_id)?
            .ok_or_else(|| OutboxError::NotFound("the key's outbox item is gone".into()))?;
        // While the first request still waits, the current state is answered.
        let http_status =
            item.http_status
                .unwrap_or(if item.status.is_settled() { 200 } else { 202 });
        Ok(Accepted {
            item,
            http_status,
            replayed: true,
        })
    }

    fn next_seq(&self, session: &str) -> u64 {
        let mut last = self.0.last_seq.lock().expect("lock");
        let n = last.entry(session.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    /// Items waiting in a session's queue.
    pub fn queued(&self, session: &str) -> usize {
        self.0
            .queues
            .lock()
            .expect("lock")
            .get(session)
            .map_or(0, |q| q.pending.len())
    }

    fn enqueue(&self, session: &str, seq: u64) {
        let start = {
            let mut queues = self.0.queues.lock().expect("lock");
            let q = queues.entry(session.to_owned()).or_default();
            q.pending.push_back(seq);
            q.wake.notify_one();
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            crate::background::spawn(self.clone().dispatch(session.to_owned()));
        }
    }

    /// Sends a session's items in order until its queue is empty.
    async fn dispatch(self, session: String) {
        loop {
            let (next, wake) = {
                let mut queues = self.0.queues.lock().expect("lock");
                let Some(q) = queues.get_mut(&session) else {
                    return;
                };
                match q.pending.front().copied() {
                    Some(seq) => (seq, q.wake.clone()),
                    None => {
                        q.running = false;
                        return;
                    }
                }
            };
            match self.attempt(&session, next).await {
                Attempt::Done => {
                    let mut queues = self.0.queues.lock().expect("lock");
                    if let Some(q) = queues.get_mut(&session) {
                        q.in_flight = None;
                        if q.pending.front() == Some(&next) {
                            q.pending.pop_front();
                        }
                    }
                }
                Attempt::Wait(d) => {
                    let _ = tokio::time::timeout(d, wake.notified()).await;
                }
                Attempt::Gone => {
                    self.0.queues.lock().expect("lock").remove(&session);
                    return;
                }
            }
        }
    }

    /// One try at the item at `seq`.
    async fn attempt(&self, session: &str, seq: u64) -> Attempt {
        let Some(record) = self.0.sessions.registry().get(session) else {
            return Attempt::Gone;
        };
        let mut item = match store::item_at(&self.0.db, session, seq) {
            Ok(Some(i)) => i,
            Ok(None) => return Attempt::Done,
            Err(e) => {
                tracing::error!(session, error = %e, "outbox: cannot read an item");
                return Attempt::Wait(Duration::from_secs(1));
            }
        };
        if item.status != SendStatus::Pending {
            return Attempt::Done;
        }
        let now = now_ms();
        if now >= item.created_at + self.0.config.outbox_ttl_ms {
            item.fail(
                "expired",
                "not sent within messages.outbox_ttl_ms".into(),
                now,
            );
            self.settle(item, SendStatus::Pending).await;
            return Attempt::Done;
        }
        if record.status != SessionStatus::Working {
            return Attempt::Wait(Duration::from_millis(500));
        }
        if item.next_attempt_at > now {
            return Attempt::Wait(Duration::from_millis(item.next_attempt_at - now));
        }
        let taken = {
            let mut buckets = self.0.buckets.lock().expect("lock");
            let b = buckets.entry(session.to_owned()).or_insert_with(|| {
                Buckets::new(record.rate_per_min, record.rate_per_hour, Instant::now())
            });
            b.set_limits(record.rate_per_min, record.rate_per_hour);
            b.take(Instant::now())
        };
        if let Err((_, wait)) = taken {
            return Attempt::Wait(Duration::from_millis(wait));
        }
        let message = match self.resolve(&item).await {
            Ok(m) => m,
            Err(e) => {
                item.fail("media_failed", e, now_ms());
                self.settle(item, SendStatus::Pending).await;
                return Attempt::Done;
            }
        };
        if let Some(q) = self.0.queues.lock().expect("lock").get_mut(session) {
            q.in_flight = Some(seq);
        }
        let engine = self.0.sessions.engine().clone();
        let chat = gateway_sdk::Jid::parse(&item.chat).ok();
        let typing = record.presence_typing && message.content.is_readable() && chat.is_some();
        if let (true, Some(chat)) = (typing, &chat) {
            let _ = engine
                .send_chat_state(session, chat, ChatState::Composing)
                .await;
            tokio::time::sleep(typing_time(&message.content)).await;
        }
        let sent = tokio::time::timeout(SEND_TIMEOUT, engine.send_message(session, &message))
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transient(
                    "WhatsApp did not answer in time".into(),
                ))
            });
        if let (true, Some(chat)) = (typing, &chat) {
            let _ = engine
                .send_chat_state(session, chat, ChatState::Paused)
                .await;
        }
        match sent {
            Ok(ack) => {
                item.advance(SendStatus::Sent, ack.timestamp.max(1));
                item.attempts += 1;
                self.settle(item, SendStatus::Pending).await;
                Attempt::Done
            }
            Err(SendError::NotConnected(_)) => Attempt::Wait(Duration::from_millis(500)),
            Err(SendError::Transient(why)) => {
                item.attempts += 1;
                let delay = backoff(item.attempts);
                item.next_attempt_at = now_ms() + delay.as_millis() as u64;
                item.error = Some(why.clone());
                tracing::info!(session, outbox_id = %item.outbox_id, attempts = item.attempts, error = %why, "outbox: send failed, retrying");
                if let Err(e) = self.save(item).await {
                    tracing::error!(session, error = %e, "outbox: cannot record a retry");
                }
                Attempt::Wait(delay)
            }
            Err(SendError::Permanent { code, message }) => {
                item.attempts += 1;
                item.fail(code, message, now_ms());
                self.settle(item, SendStatus::Pending).await;
                Attempt::Done
            }
        }
    }

    /// Loads what an item sends: media bytes from the media store.
    async fn resolve(&self, item: &OutboxItem) -> Result<OutgoingMessage, String> {
        let content = match &item.content {
            StoredContent::Text { text } => OutgoingContent::Text(text.clone()),
            StoredContent::Media {
                kind,
                source,
                mimetype,
                caption,
                file_name,
                voice_note,
            } => {
                let (bytes, mt) = match source {
                    StoredMediaSource::Upload { id } => {
                        let (meta, data) = self
                            .0
                            .media
                            .load(&item.session, id)
                            .await
                            .map_err(|e| e.to_string())?;
                        (MediaBytes::Data(Arc::new(data)), meta.mimetype)
                    }
                    StoredMediaSource::Message { message } => (
                        MediaBytes::Message(message.clone()),
                        mimetype.clone().unwrap_or_default(),
                    ),
                };
                OutgoingContent::Media(OutgoingMedia {
                    kind: *kind,
                    bytes,
                    mimetype: mimetype.clone().unwrap_or(mt),
                    caption: caption.clone(),
                    file_name: file_name.clone(),
                    voice_note: *voice_note,
                })
            }
            StoredContent::Location {
                latitude,
                longitude,
                name,
                address,
            } => OutgoingContent::Location {
                latitude: *latitude,
                longitude: *longitude,
                name: name.clone(),
                address: address.clone(),
            },
            StoredContent::Contact { name, vcard } => OutgoingContent::Contact {
                name: name.clone(),
                vcard: vcard.clone(),
            },
            StoredContent::Poll {
                name,
                options,
                selectable_count,
            } => OutgoingContent::Poll {
                name: name.clone(),
                options: options.clone(),
                selectable_count: *selectable_count,
            },
            StoredContent::Reaction { target, emoji } => OutgoingContent::Reaction {
                target: target.clone(),
                emoji: emoji.clone(),
            },
            StoredContent::Edit { target, text } => OutgoingContent::Edit {
                target: target.clone(),
                text: text.clone(),
            },
            StoredContent::Revoke { target } => OutgoingContent::Revoke {
                target: target.clone(),
            },
            StoredContent::Vote { target, options } => OutgoingContent::Vote {
                target: target.clone(),
                options: options.clone(),
            },
        };
        Ok(OutgoingMessage {
            to: item.chat.clone(),
            id: item.wa_message_id.clone(),
            content,
            reply_to: item.reply_to.clone(),
            mentions: item.mentions.clone(),
            forwarded: item.forwarded,
        })
    }

    /// Writes the dispatcher's view of an item, keeping any progress a receipt recorded
    /// meanwhile (a fast recipient's `delivered` can land before our `sent`).
    /// Answers the item as stored.
    async fn save(&self, item: OutboxItem) -> Result<OutboxItem, StorageError> {
        self.0
            .db
            .committer()
            .write(move |txn| {
                let mut item = item;
                if let Some(stored) = store::item_in(txn, &item.outbox_id)?
                    && stored.status != SendStatus::Failed
                    && item.status != SendStatus::Failed
                    && item.status.advances_to(stored.status)
                {
                    item.status = stored.status;
                    item.status_at = stored.status_at;
                }
                store::put_item(txn, &item)?;
                Ok(item)
            })
            .await
    }

    /// Records a settled step durably, then tells the waiting request and publishes it.
    /// When a receipt got further meanwhile, that status stands and was published already:
    /// `message.status` never goes back.
    async fn settle(&self, item: OutboxItem, previous: SendStatus) {
        let stored = match self.save(item.clone()).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(outbox_id = %item.outbox_id, error = %e, "outbox: cannot record a status");
                return;
            }
        };
        if let Some(w) = self.0.waiters.lock().expect("lock").get(&item.outbox_id) {
            let _ = w.send(stored.status);
        }
        if stored.status == item.status {
            self.publish_status(&stored, Some(previous), None);
        }
    }

    /// `message.status` for an item's current status.
    fn publish_status(
        &self,
        item: &OutboxItem,
        previous: Option<SendStatus>,
        recipient: Option<&str>,
    ) {
        self.0.bus.publish(EventEnvelope::new(
            "message.status",
            &item.session,
            &item.organization,
            json!({
                "id": item.wa_message_id,
                "outboxId": item.outbox_id,
                "chat": item.chat,
                "status": item.status.as_str(),
                "previous": previous.map(SendStatus::as_str),
                "recipient": recipient,
                "errorCode": item.error_code,
                "error": item.error,
                "timestamp": item.status_at,
            }),
        ));
    }

    /// Applies receipts for messages the session sent: an item moves forward (never
    /// back), and every receipt is a `message.status` event with its recipient — also for
    /// messages sent from the phone, which the outbox never held.
    pub async fn on_receipt(&self, session: &str, receipt: Receipt) {
        let Some(record) = self.0.sessions.registry().get(session) else {
            return;
        };
        let status = match receipt.kind {
            ReceiptKind::Delivered => SendStatus::Delivered,
            ReceiptKind::Read | ReceiptKind::Played => SendStatus::Read,
        };
        for id in &receipt.ids {
            let found = store::item_by_wa_id(&self.0.db, session, id).ok().flatten();
            match found {
                Some(item) => {
                    // Advanced on the stored row, inside the write: the dispatcher may be
                    // recording `sent` at the same moment.
                    let at = receipt.timestamp.max(1);
                    let outbox_id = item.outbox_id.clone();
                    let advanced = self
                        .0
                        .db
                        .committer()
                        .write(move |txn| {
                            let Some(mut stored) = store::item_in(txn, &outbox_id)? else {
                                return Ok(None);
                            };
                            let previous = stored.status;
                            if stored.advance(status, at) {
                                store::put_item(txn, &stored)?;
                            }
                            Ok(Some((previous, stored)))
                        })
                        .await;
                    let (previous, item) = match advanced {
                        Ok(Some(found)) => found,
                        Ok(None) => (item.status, item),
                        Err(e) => {
                            tracing::error!(error = %e, "outbox: cannot record a receipt");
                            (item.status, item)
                        }
                    };
                    // Published when it moved the item forward — and, in groups, for each
                    // member's receipt (who has read it), at the item's status.
                    if item.status != previous || receipt.chat.ends_with("@g.us") {
                        let mut shown = item.clone();
                        shown.status = status.max(item.status);
                        self.publish_status(&shown, Some(previous), receipt.recipient.as_deref());
                    }
                }
                None => self.0.bus.publish(EventEnvelope::new(
                    "message.status",
                    session,
                    &record.organization_id,
                    json!({
                        "id": id,
                        "outboxId": null,
                        "chat": receipt.chat,
                        "status": status.as_str(),
                        "previous": null,
                        "recipient": receipt.recipient,
                        "timestamp": receipt.timestamp,
                    }),
                )),
            }
        }
    }

    /// An item of the session.
    pub fn get(&self, session: &str, outbox_id: &str) -> Result<Option<OutboxItem>, OutboxError> {
        Ok(store::item(&self.0.db, outbox_id)?.filter(|i| i.session == session))
    }

    /// A page of the session's items, newest first.
    pub fn list(
        &self,
        session: &str,
        status: Option<SendStatus>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<OutboxItem>, Option<u64>), OutboxError> {
        Ok(store::list(&self.0.db, session, status, before, limit)?)
    }

    /// Cancels a pending item (not one being sent right now).
    pub async fn cancel(&self, session: &str, outbox_id: &str) -> Result<OutboxItem, OutboxError> {
        let mut item = self
            .get(session, outbox_id)?
            .ok_or_else(|| OutboxError::NotFound("outbox item not found".into()))?;
        {
            let mut queues = self.0.queues.lock().expect("lock");
            let q = queues.get_mut(session);
            let sending = q.as_ref().is_some_and(|q| q.in_flight == Some(item.seq));
            if item.status != SendStatus::Pending || sending {
                return Err(OutboxError::NotPending(format!(
                    "the item is {}",
                    if sending {
                        "being sent"
                    } else {
                        item.status.as_str()
                    }
                )));
            }
            if let Some(q) = q {
                q.pending.retain(|s| *s != item.seq);
            }
        }
        item.fail("cancelled", "cancelled by the API".into(), now_ms());
        self.settle(item.clone(), SendStatus::Pending).await;
        Ok(item)
    }

    /// Removes a session's items (deleting the session).
    pub async fn purge_session(&self, session: &str) -> Result<(), StorageError> {
        self.0.queues.lock().expect("lock").remove(session);
        self.0.buckets.lock().expect("lock").remove(session);
        let s = session.to_owned();
        self.0
            .db
            .committer()
            .write(move |txn| store::purge_session(txn, &s).map(|_| ()))
            .await?;
        self.0.media.purge_session(session);
        Ok(())
    }
}

/// How long the outbox gives WhatsApp to take one message.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long "typing…" shows before a text or media send: about as long as reading it
/// takes, never more than a second (API.md §6.3).
fn typing_time(content: &OutgoingContent) -> Duration {
    let chars = match content {
        OutgoingContent::Text(t) => t.chars().count(),
        _ => 40,
    };
    Duration::from_millis((150 + chars as u64 * 10).min(1_000))
}

enum Attempt {
    /// The head item settled (or was not pending): take the next.
    Done,
    /// Try the head again after this long (or when woken).
    Wait(Duration),
    /// The session is gone.
    Gone,
}

/// Held while one request accepts an idempotency key.
struct KeyClaim {
    outbox: Outbox,
    id: (String, String),
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        if let Some(n) = self
            .outbox
            .0
            .accepting
            .lock()
            .expect("lock")
            .remove(&self.id)
        {
            n.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(new_wa_message_id().starts_with("3EB0"));
        assert_eq!(new_wa_message_id().len(), 20);
    }
}
