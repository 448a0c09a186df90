//! `outbox` in memory, for native plugin tests.
//!
//! The host's rules in small (API.md §6.3): idempotency keys per organization (the same
//! key and fingerprint answer the original status with the item's current result and
//! `replayed`; another fingerprint is `key-reused`; keys live 24 h), one FIFO queue per
//! session with the WhatsApp id assigned at accept, token buckets from the session's
//! `ratePerMin`/`ratePerHour` (sync submits are refused over them, async ones wait), a cap
//! on waiting items, and monotonic statuses. A synchronous submit "sends" at once (after
//! the items queued before it); an asynchronous one stays `pending` until the test
//! dispatches the queue. Every status change is a `message.status` event, delivered to the
//! plugin by the [`OutboxWorld`] helpers (as the host publishes them after the call).
//!
//! The session's connection: `working` sessions are connected unless a test drops the
//! link ([`OutboxWorld::set_connected`]), which reads as reconnecting (async accepted,
//! sync 501); `starting` is reconnecting; any other status refuses both.

use super::{TestHost, current_call, media, sessions::SessionWorld};
use crate::guest::bindings::wa::gateway::outbox::{
    Content, MediaSource, Outbound, OutboxError, RateLimit, SendMode, SendResult, SendStatus,
    SubmitOptions, Submitted,
};
use crate::jid::Jid;
use crate::paging::{DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// `messages.idempotency_ttl_ms`.
const KEY_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// `messages.max_pending_per_session`.
const MAX_PENDING: usize = 10_000;
const MINUTE_MS: f64 = 60_000.0;
const HOUR_MS: f64 = 3_600_000.0;
/// Inline media above this is refused, as the host does (`limits.max_media_bytes`).
const MAX_MEDIA_BYTES: usize = 16 << 20;

/// One accepted message, as the test sees it.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub organization: String,
    pub session: String,
    pub message: Outbound,
    pub result: SendResult,
    /// What the accepting call answered (200 or 202), kept for replays.
    pub http_status: u16,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
}

struct KeyRecord {
    item: usize,
    at: u64,
}

/// A session's token buckets, each holding at most one period's budget.
struct Bucket {
    per_min: f64,
    per_hour: f64,
    at: u64,
}

/// Whether a session can send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Connected,
    /// Accepts async items, which wait; sync ones are refused.
    Reconnecting,
    Down,
}

struct Queue {
    items: Vec<OutboxItem>,
    keys: BTreeMap<(String, String), KeyRecord>,
    link_down: BTreeSet<String>,
    buckets: BTreeMap<String, Bucket>,
    refuse_next: Option<(String, String)>,
    max_pending: usize,
    clock: u64,
    /// `message.status` payloads not yet delivered, with their session.
    events: Vec<(String, Value)>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            items: Vec::new(),
            keys: BTreeMap::new(),
            link_down: BTreeSet::new(),
            buckets: BTreeMap::new(),
            refuse_next: None,
            max_pending: MAX_PENDING,
            clock: wall_clock_ms(),
            events: Vec::new(),
        }
    }
}

/// The fake clock starts at the real time, so what a plugin compares with its own clock
/// (WhatsApp's 15-minute edit window) behaves as in the gateway.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

pub(crate) fn reset() {
    QUEUE.with_borrow_mut(|q| *q = Queue::default());
}

/// The session's connection as the outbox and media fakes see it.
pub(crate) fn link(session: &str) -> Link {
    QUEUE.with_borrow(|q| q.link(session))
}

fn rank(s: SendStatus) -> u8 {
    match s {
        SendStatus::Pending => 0,
        SendStatus::Sent => 1,
        SendStatus::Delivered => 2,
        SendStatus::Read => 3,
        SendStatus::Failed => 0,
    }
}

fn rates(session: &str) -> (u32, u32) {
    SessionWorld
        .get(session)
        .map(|s| (s.rate_per_min.max(1), s.rate_per_hour.max(1)))
        .unwrap_or((20, 600))
}

impl Queue {
    fn link(&self, session: &str) -> Link {
        let dropped = self.link_down.contains(session);
        match SessionWorld.get(session).map(|s| s.status) {
            Some(s) if s == "working" && !dropped => Link::Connected,
            Some(s) if s == "working" || s == "starting" => Link::Reconnecting,
            _ => Link::Down,
        }
    }

    fn bucket(&mut self, session: &str) -> &mut Bucket {
        let (per_min, per_hour) = rates(session);
        let now = self.clock;
        let b = self
            .buckets
            .entry(session.to_owned())
            .or_insert_with(|| Bucket {
                per_min: per_min as f64,
                per_hour: per_hour as f64,
                at: now,
            });
        let elapsed = now.saturating_sub(b.at) as f64;
        b.per_min = (b.per_min + elapsed * per_min as f64 / MINUTE_MS).min(per_min as f64);
        b.per_hour = (b.per_hour + elapsed * per_hour as f64 / HOUR_MS).min(per_hour as f64);
        b.at = now;
        b
    }

    /// The limit a send would break now, if any.
    fn over_rate(&mut self, session: &str) -> Option<RateLimit> {
        let (per_min, per_hour) = rates(session);
        let b = self.bucket(session);
        let wait = |tokens: f64, period: f64, rate: u32| {
            ((1.0 - tokens) * period / rate as f64).ceil().max(1.0) as u64
        };
        let (limit, retry_after_ms) = if b.per_min < 1.0 {
            ("perMinute", wait(b.per_min, MINUTE_MS, per_min))
        } else if b.per_hour < 1.0 {
            ("perHour", wait(b.per_hour, HOUR_MS, per_hour))
        } else {
            return None;
        };
        Some(RateLimit {
            limit: limit.into(),
            rate_per_min: per_min,
            rate_per_hour: per_hour,
            retry_after_ms,
        })
    }

    fn take_token(&mut self, session: &str) -> bool {
        if self.over_rate(session).is_some() {
            return false;
        }
        let b = self.bucket(session);
        b.per_min -= 1.0;
        b.per_hour -= 1.0;
        true
    }

    /// Moves an item to `status`, monotonically (a late receipt never moves it back;
    /// `failed` only from `pending`), and queues its `message.status` event.
    fn set_status(&mut self, index: usize, status: SendStatus, error: Option<(String, String)>) {
        let now = self.clock;
        let item = &mut self.items[index];
        let previous = item.result.status;
        let allowed = match status {
            SendStatus::Failed => previous == SendStatus::Pending,
            _ => previous != SendStatus::Failed && rank(status) > rank(previous),
        };
        if !allowed {
            return;
        }
        item.result.status = status;
        item.result.timestamp = now;
        if let Some((code, message)) = error {
            item.result.error_code = Some(code);
            item.result.error = Some(message);
        }
        let r = &item.result;
        let payload = json!({
            "id": r.wa_message_id, "outboxId": r.outbox_id, "chat": r.chat,
            "status": status.as_str(), "previous": previous.as_str(),
            "errorCode": r.error_code, "error": r.error, "timestamp": now,
        });
        self.events.push((item.session.clone(), payload));
    }

    /// Sends the session's pending items in accept order while the link and the rate
    /// allow; returns how many left the queue.
    fn dispatch(&mut self, session: &str) -> usize {
        if self.link(session) != Link::Connected {
            return 0;
        }
        let mut sent = 0;
        for i in 0..self.items.len() {
            let item = &self.items[i];
            if item.session != session || item.result.status != SendStatus::Pending {
                continue;
            }
            if !self.take_token(session) {
                break;
            }
            match self.refuse_next.take() {
                Some(refusal) => self.set_status(i, SendStatus::Failed, Some(refusal)),
                None => self.set_status(i, SendStatus::Sent, None),
            }
            sent += 1;
        }
        sent
    }

    fn find(&self, session: &str, outbox_id: &str) -> Option<usize> {
        self.items
            .iter()
            .position(|i| i.session == session && i.result.outbox_id == outbox_id)
    }
}

fn call_session() -> Result<(String, String), OutboxError> {
    let call = current_call().ok_or_else(|| OutboxError::Failed("no call in progress".into()))?;
    let session = call
        .session
        .ok_or_else(|| OutboxError::Invalid("the outbox needs a session route".into()))?;
    Ok((call.organization, session))
}

/// What the host checks of a message on its own (the plugin validated the rest).
fn check(message: &Outbound, session: &str) -> Result<(), OutboxError> {
    let to = Jid::parse(&message.to).map_err(|e| OutboxError::Invalid(e.to_string()))?;
    if !(to.is_person() || to.is_group()) {
        return Err(OutboxError::Invalid(format!(
            "{} is not a user, LID or group",
            message.to
        )));
    }
    match &message.content {
        Content::Text(t) if t.is_empty() => Err(OutboxError::Invalid("empty text".into())),
        Content::Media(m) => match &m.source {
            MediaSource::Upload(id) if !media::upload_exists(session, id) => Err(
                OutboxError::NotFound(format!("no uploaded media {id} for this session")),
            ),
            MediaSource::Inline(b) if b.is_empty() || b.len() > MAX_MEDIA_BYTES => Err(
                OutboxError::Invalid("inline media must be 1 byte to 16 MiB".into()),
            ),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

pub(crate) fn submit(
    message: &Outbound,
    options: &SubmitOptions,
) -> Result<Submitted, OutboxError> {
    let (organization, session) = call_session()?;
    if options.fingerprint.is_empty() {
        return Err(OutboxError::Invalid("a fingerprint is required".into()));
    }
    QUEUE.with_borrow_mut(|q| {
        // Idempotency first: a replay answers whatever the session's state is now.
        if let Some(key) = &options.idempotency_key {
            let slot = (organization.clone(), key.clone());
            if let Some(record) = q.keys.get(&slot) {
                if q.clock.saturating_sub(record.at) < KEY_TTL_MS {
                    let item = &q.items[record.item];
                    if item.fingerprint != options.fingerprint {
                        return Err(OutboxError::KeyReused(item.result.outbox_id.clone()));
                    }
                    return Ok(Submitted {
                        result: item.result.clone(),
                        http_status: item.http_status,
                        replayed: true,
                    });
                }
                q.keys.remove(&slot);
            }
        }
        check(message, &session)?;
        let sync = options.mode == SendMode::Synchronous;
        match (q.link(&session), sync) {
            (Link::Connected, _) | (Link::Reconnecting, false) => {}
            _ => {
                return Err(OutboxError::NotConnected("session is not connected".into()));
            }
        }
        let (per_min, per_hour) = rates(&session);
        let waiting = q
            .items
            .iter()
            .filter(|i| i.session == session && i.result.status == SendStatus::Pending)
            .count();
        if waiting >= q.max_pending {
            return Err(OutboxError::RateLimited(RateLimit {
                limit: "pending".into(),
                rate_per_min: per_min,
                rate_per_hour: per_hour,
                retry_after_ms: (MINUTE_MS / per_min as f64).ceil() as u64,
            }));
        }
        if sync && let Some(limit) = q.over_rate(&session) {
            return Err(OutboxError::RateLimited(limit));
        }
        let n = q.items.len() as u64 + 1;
        let index = q.items.len();
        q.items.push(OutboxItem {
            organization: organization.clone(),
            session: session.clone(),
            message: message.clone(),
            result: SendResult {
                outbox_id: format!("out_01J{n:023}"),
                mode: options.mode,
                status: SendStatus::Pending,
                timestamp: q.clock,
                wa_message_id: format!("3EB0{n:016X}"),
                chat: message.to.clone(),
                error_code: None,
                error: None,
            },
            http_status: 202,
            idempotency_key: options.idempotency_key.clone(),
            fingerprint: options.fingerprint.clone(),
        });
        if let Some(key) = &options.idempotency_key {
            let at = q.clock;
            q.keys
                .insert((organization, key.clone()), KeyRecord { item: index, at });
        }
        if sync {
            q.dispatch(&session);
        }
        let item = &mut q.items[index];
        if item.result.status != SendStatus::Pending {
            item.http_status = 200;
        }
        Ok(Submitted {
            result: item.result.clone(),
            http_status: item.http_status,
            replayed: false,
        })
    })
}

pub(crate) fn get(outbox_id: &str) -> Result<Option<SendResult>, OutboxError> {
    let (_, session) = call_session()?;
    Ok(QUEUE.with_borrow(|q| {
        q.find(&session, outbox_id)
            .map(|i| q.items[i].result.clone())
    }))
}

pub(crate) fn list(
    status: Option<SendStatus>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<SendResult>, Option<String>), OutboxError> {
    let (_, session) = call_session()?;
    let before = match cursor {
        Some(c) => {
            let raw = decode_cursor(c).map_err(|e| OutboxError::Invalid(e.message))?;
            let bytes: [u8; 8] = raw.try_into().map_err(|_| {
                OutboxError::Invalid("cursor is not one this gateway issued".into())
            })?;
            u64::from_be_bytes(bytes) as usize
        }
        None => usize::MAX,
    };
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    } as usize;
    Ok(QUEUE.with_borrow(|q| {
        let mut matching = q.items.iter().enumerate().rev().filter(|(i, item)| {
            *i < before && item.session == session && status.is_none_or(|s| item.result.status == s)
        });
        let page: Vec<(usize, &OutboxItem)> = matching.by_ref().take(limit).collect();
        let next = match (page.last(), matching.next()) {
            (Some((i, _)), Some(_)) => Some(encode_cursor(&(*i as u64).to_be_bytes())),
            _ => None,
        };
        (
            page.into_iter().map(|(_, i)| i.result.clone()).collect(),
            next,
        )
    }))
}

pub(crate) fn cancel(outbox_id: &str) -> Result<SendResult, OutboxError> {
    let (_, session) = call_session()?;
    QUEUE.with_borrow_mut(|q| {
        let i = q
            .find(&session, outbox_id)
            .ok_or_else(|| OutboxError::NotFound(format!("no outbox item {outbox_id}")))?;
        let status = q.items[i].result.status;
        if status != SendStatus::Pending {
            return Err(OutboxError::NotPending(format!(
                "outbox item {outbox_id} is already {}",
                status.as_str()
            )));
        }
        let cancelled = Some(("cancelled".into(), "cancelled by the caller".into()));
        q.set_status(i, SendStatus::Failed, cancelled);
        Ok(q.items[i].result.clone())
    })
}

/// The handle tests drive the fake outbox with; each change is published to the plugin
/// as `message.status`, after any events earlier calls left waiting.
#[derive(Debug, Clone, Copy)]
pub struct OutboxWorld<'a> {
    pub(crate) host: &'a TestHost,
}

impl OutboxWorld<'_> {
    /// Every item of `session`, in accept order.
    pub fn items(&self, session: &str) -> Vec<OutboxItem> {
        QUEUE.with_borrow(|q| {
            q.items
                .iter()
                .filter(|i| i.session == session)
                .cloned()
                .collect()
        })
    }

    /// The item with this outbox id.
    pub fn item(&self, outbox_id: &str) -> Option<OutboxItem> {
        QUEUE.with_borrow(|q| {
            q.items
                .iter()
                .find(|i| i.result.outbox_id == outbox_id)
                .cloned()
        })
    }

    /// Drops (false) or restores (true) the session's link to WhatsApp; a dropped link
    /// reads as reconnecting.
    pub fn set_connected(&self, session: &str, connected: bool) {
        QUEUE.with_borrow_mut(|q| {
            if connected {
                q.link_down.remove(session);
            } else {
                q.link_down.insert(session.to_owned());
            }
        });
    }

    /// Sends the session's pending items, in order, as far as the link and the rate
    /// allow; returns how many were sent (or refused).
    pub fn dispatch(&self, session: &str) -> usize {
        let n = QUEUE.with_borrow_mut(|q| q.dispatch(session));
        self.publish();
        n
    }

    /// WhatsApp refuses the next item sent: it fails with `error_code`.
    pub fn refuse_next(&self, error_code: &str, error: &str) {
        QUEUE.with_borrow_mut(|q| q.refuse_next = Some((error_code.into(), error.into())));
    }

    /// A receipt or a failure for an item: `delivered`, `read`, or `failed` (from
    /// `pending` only). Moves are monotonic, as the host's.
    pub fn mark(&self, outbox_id: &str, status: SendStatus, error_code: Option<&str>) {
        QUEUE.with_borrow_mut(|q| {
            let i = q
                .items
                .iter()
                .position(|i| i.result.outbox_id == outbox_id)
                .unwrap_or_else(|| panic!("no outbox item {outbox_id}"));
            let error = error_code.map(|c| (c.to_owned(), format!("{c} (test)")));
            q.set_status(i, status, error);
        });
        self.publish();
    }

    /// Caps the items waiting per session (`messages.max_pending_per_session`).
    pub fn set_max_pending(&self, n: usize) {
        QUEUE.with_borrow_mut(|q| q.max_pending = n);
    }

    /// Moves the fake clock on (rate buckets refill, idempotency keys age).
    pub fn advance_clock(&self, ms: u64) {
        QUEUE.with_borrow_mut(|q| q.clock += ms);
    }

    /// Delivers the `message.status` events waiting, in order, to the plugin.
    pub fn publish(&self) {
        let events = QUEUE.with_borrow_mut(|q| std::mem::take(&mut q.events));
        for (session, payload) in events {
            self.host
                .event(&session, "message.status", payload)
                .unwrap_or_else(|e| panic!("the plugin refused message.status: {e}"));
        }
    }
}
