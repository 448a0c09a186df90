//! Realtime event streams (API.md §7.4): an organization's events pushed over WebSocket
//! as they happen. Streams and their bytes belong to the host, never to a plugin.
//!
//! One task reads the event bus's broadcast and, per event, appends it to its
//! organization's resume buffer and offers it to that organization's open streams, all
//! under one lock — so a stream that opens with `after` gets the buffered events and then
//! the live ones with nothing missed or doubled between them. Each stream has a bounded
//! queue: a client that falls more than `max_unsent_frames` behind is closed (4008)
//! instead of holding memory. If the task itself falls behind the broadcast, every
//! stream is told with a `stream.gap` frame and the buffers are emptied, so no resume can
//! skip over the hole silently.

pub mod buffer;
pub(crate) mod routes;
mod stream;
pub mod ticket;

use crate::auth::{ApiKeyStore, Principal};
use crate::config::RealtimeConfig;
use crate::events::EventEnvelope;
use crate::events::filter::{StreamFilter, is_internal};
use buffer::{Buffered, EventBuffer};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
pub use ticket::Audience;
use ticket::{Ticket, TicketStore, TooManyTickets};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// How often expired tickets and aged-out buffered events are dropped when no event
/// comes to do it.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Why a stream could not be opened or a ticket minted; mapped to the envelope in
/// `http/errors.rs`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RealtimeError {
    /// A ticket request the contract answers with 422.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the ticket is unknown, already used or expired; mint a new one")]
    BadTicket,
    #[error(
        "the organization has {max} realtime streams open, the most it may (realtime.max_streams_per_org)"
    )]
    TooManyStreams { max: usize },
    #[error("the organization holds {max} unused tickets; use some or let them expire")]
    TooManyTickets { max: usize },
    /// A request to the stream route that is not a WebSocket upgrade.
    #[error("{0}")]
    NotWebSocket(&'static str),
}

impl RealtimeError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        RealtimeError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Why the hub ended a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// Over `max_unsent_frames` frames waiting (close 4008).
    TooSlow,
}

/// An open stream as the hub sees it.
struct Subscriber {
    id: u64,
    filter: StreamFilter,
    frames: mpsc::Sender<Utf8Bytes>,
    kick: watch::Sender<Option<Kick>>,
    /// The last event sent or queued: where a `stream.gap` says the client may resume.
    last_id: Option<String>,
}

impl Subscriber {
    /// Queues a frame; false when the stream is gone or too far behind (then kicked).
    fn offer(&mut self, id: Option<&str>, text: Utf8Bytes) -> bool {
        match self.frames.try_send(text) {
            Ok(()) => {
                if let Some(id) = id {
                    self.last_id = Some(id.to_owned());
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = self.kick.send(Some(Kick::TooSlow));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

struct OrgState {
    buffer: EventBuffer,
    streams: Vec<Subscriber>,
    /// Until when the organization's events are buffered with no stream open: a buffer
    /// window after its last ticket or stream. Organizations that never use realtime
    /// keep no buffer, so memory follows realtime use, not the number of tenants.
    buffer_until: Instant,
}

struct Hub {
    config: RealtimeConfig,
    tickets: TicketStore,
    /// Streams and resume buffers by audience: each organization's, and the platform's.
    orgs: Mutex<HashMap<Audience, OrgState>>,
    keys: Arc<ApiKeyStore>,
    next_id: AtomicU64,
    /// `server.public_url`, else the API listener's bound address (set once it is bound).
    public_url: Option<String>,
    listen: OnceLock<SocketAddr>,
    shutdown: watch::Receiver<bool>,
}

/// The realtime service: tickets, per-organization buffers and the open streams.
#[derive(Clone)]
pub struct Realtime(Arc<Hub>);

/// A stream the hub has admitted: its queue, what to send before the queue, and who
/// opened it. Dropping it removes the stream from the hub (its slot is free again).
pub(crate) struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    pub audience: Audience,
    pub principal: Principal,
    credential_expires_at: Option<u64>,
    /// Frames to send first: the resumed events, or a `stream.gap`.
    pub replay: VecDeque<Utf8Bytes>,
    pub frames: mpsc::Receiver<Utf8Bytes>,
    pub kick: watch::Receiver<Option<Kick>>,
}

impl Drop for Subscription {
    /// The stream leaves; its organization's events stay buffered for a resume.
    fn drop(&mut self) {
        let until = Instant::now() + self.hub.buffer_window();
        let mut orgs = self.hub.orgs.lock().expect("lock");
        if let Some(org) = orgs.get_mut(&self.audience) {
            org.streams.retain(|s| s.id != self.id);
            org.buffer_until = org.buffer_until.max(until);
        }
    }
}

impl Subscription {
    /// Turns true when the gateway shuts down.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.hub.shutdown.clone()
    }

    /// Whether the credential that minted the ticket still holds: the API key is not
    /// revoked, the JWT has not expired.
    pub(crate) fn credential_holds(&self) -> bool {
        self.hub.credential_holds(
            &self.principal,
            self.credential_expires_at,
            crate::clock::now_ms(),
        )
    }
}

/// A `stream.gap` envelope (API.md §7.5): `{after}` is where the client's view has a hole.
fn gap_frame(audience: &Audience, after: Option<&str>) -> Utf8Bytes {
    serde_json::json!({
        "schema": "v1",
        "id": format!("evt_{}", crate::ids::ordered()),
        "event": "stream.gap",
        "session": null,
        "organization": audience.organization(),
        "timestamp": crate::clock::now_ms(),
        "payload": {"after": after},
    })
    .to_string()
    .into()
}

impl Realtime {
    /// `shutdown` turning true closes every stream.
    pub fn new(
        config: RealtimeConfig,
        keys: Arc<ApiKeyStore>,
        public_url: Option<String>,
        shutdown: watch::Receiver<bool>,
    ) -> Realtime {
        Realtime(Arc::new(Hub {
            tickets: TicketStore::new(config.ticket_ttl_ms),
            config,
            orgs: Mutex::new(HashMap::new()),
            keys,
            next_id: AtomicU64::new(1),
            public_url,
            listen: OnceLock::new(),
            shutdown,
        }))
    }

    pub fn config(&self) -> &RealtimeConfig {
        &self.0.config
    }

    /// Records the API listener's address, for stream URLs when no public URL is set.
    pub fn set_listen_addr(&self, addr: SocketAddr) {
        let _ = self.0.listen.set(addr);
    }

    /// Starts the task that feeds buffers and streams from the bus's broadcast.
    pub fn spawn_feed(&self, mut events: broadcast::Receiver<Arc<EventEnvelope>>) {
        let hub = self.0.clone();
        crate::background::spawn(async move {
            let mut prune = tokio::time::interval(PRUNE_EVERY);
            loop {
                tokio::select! {
                    received = events.recv() => match received {
                        Ok(event) => hub.publish(&event, Instant::now()),
                        Err(broadcast::error::RecvError::Lagged(missed)) => hub.lost(missed),
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = prune.tick() => hub.prune(),
                }
            }
        });
    }

    /// Mints a ticket for a caller; returns the secret and the ticket.
    pub fn mint(
        &self,
        audience: impl Into<Audience>,
        principal: Principal,
        credential_expires_at: Option<u64>,
        filter: StreamFilter,
        after: Option<String>,
    ) -> Result<(String, Ticket), RealtimeError> {
        let audience = audience.into();
        self.0.keep_buffering(&audience, Instant::now());
        self.0
            .tickets
            .mint(
                &audience,
                principal,
                credential_expires_at,
                filter,
                after,
                crate::clock::now_ms(),
            )
            .map_err(|TooManyTickets| RealtimeError::TooManyTickets {
                max: ticket::MAX_TICKETS_PER_ORG,
            })
    }

    /// Whether `secret` is a usable ticket, without using it.
    pub fn ticket_is_valid(&self, secret: &str) -> bool {
        self.0.tickets.is_valid(secret, crate::clock::now_ms())
    }

    /// Uses a ticket and admits its stream: 401 when the ticket (or the credential behind
    /// it) is no good, 429 when the organization's streams are at the cap (the ticket is
    /// then kept for a retry).
    pub(crate) fn open(&self, secret: &str) -> Result<Subscription, RealtimeError> {
        self.0.open(secret, Instant::now())
    }

    /// The stream URL for a ticket: `server.public_url` with `ws`/`wss` for `http`/
    /// `https`, else the listener's address. A listener on every interface (`0.0.0.0`)
    /// has no address a client can use, so the request's `Host` is taken instead.
    pub fn stream_url(&self, ticket: &str, host_header: Option<&str>) -> String {
        let path = format!("/api/v1/realtime?ticket={ticket}");
        if let Some(public) = &self.0.public_url {
            let base = public.trim_end_matches('/');
            let base = match base.split_once("://") {
                Some(("https", rest)) => format!("wss://{rest}"),
                Some((_, rest)) => format!("ws://{rest}"),
                None => format!("ws://{base}"),
            };
            return format!("{base}{path}");
        }
        let addr = self.0.listen.get().copied();
        let authority = match (addr, host_header.filter(|h| is_authority(h))) {
            (Some(a), _) if !a.ip().is_unspecified() => a.to_string(),
            (_, Some(host)) => host.to_owned(),
            (Some(a), None) => format!("localhost:{}", a.port()),
            (None, None) => "localhost".to_owned(),
        };
        format!("ws://{authority}{path}")
    }

    /// Waits (at most `limit`) until every stream has closed: streams are upgraded
    /// connections, which the HTTP server's graceful shutdown no longer tracks.
    pub async fn closed(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline
            && self
                .0
                .orgs
                .lock()
                .expect("lock")
                .values()
                .any(|o| !o.streams.is_empty())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Streams open for an organization.
    pub fn open_streams(&self, organization: &str) -> usize {
        self.0
            .orgs
            .lock()
            .expect("lock")
            .get(&Audience::from(organization))
            .map_or(0, |o| o.streams.len())
    }
}

/// A `Host` header fit to put in a URL: a name or address and an optional port.
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

impl Hub {
    fn buffer_window(&self) -> Duration {
        Duration::from_millis(self.config.buffer_ms)
    }

    fn org_state(&self) -> OrgState {
        OrgState {
            buffer: EventBuffer::new(self.config.buffer_events, self.buffer_window()),
            streams: Vec::new(),
            buffer_until: Instant::now() + self.buffer_window(),
        }
    }

    /// The organization is using realtime (a ticket was minted): its events are buffered
    /// from now on, for a buffer window past its last use.
    fn keep_buffering(&self, audience: &Audience, now: Instant) {
        let until = now + self.buffer_window();
        let mut orgs = self.orgs.lock().expect("lock");
        let org = orgs
            .entry(audience.clone())
            .or_insert_with(|| self.org_state());
        org.buffer_until = org.buffer_until.max(until);
    }

    fn publish(&self, event: &EventEnvelope, now: Instant) {
        if is_internal(&event.event) {
            return;
        }
        let text = match serde_json::to_string(event) {
            Ok(t) => Utf8Bytes::from(t),
            Err(e) => {
                tracing::error!(id = %event.id, error = %e, "cannot encode an event for realtime streams");
                return;
            }
        };
        let buffered = Arc::new(Buffered {
            id: event.id.clone(),
            event: event.event.clone(),
            session: event.session.clone(),
            text,
        });
        let mut orgs = self.orgs.lock().expect("lock");
        // Only audiences using realtime keep a buffer (see `OrgState::buffer_until`): the
        // event's organization, and the platform's monitor, which sees every organization.
        for audience in [
            Audience::from(event.organization.as_str()),
            Audience::Platform,
        ] {
            let Some(org) = orgs.get_mut(&audience) else {
                continue;
            };
            org.buffer.push(buffered.clone(), now);
            org.streams.retain_mut(|s| {
                !s.filter.matches(&buffered.event, &buffered.session)
                    || s.offer(Some(&buffered.id), buffered.text.clone())
            });
        }
    }

    /// The feed fell behind the broadcast and `missed` events never reached it: which
    /// organizations they belonged to is unknown, so every stream gets a `stream.gap` and
    /// every buffer is emptied (a later resume from before the hole starts with a gap).
    fn lost(&self, missed: u64) {
        tracing::warn!(
            missed,
            "realtime fell behind the event bus; streams are told with stream.gap"
        );
        let mut orgs = self.orgs.lock().expect("lock");
        for (audience, org) in orgs.iter_mut() {
            org.buffer.clear();
            org.streams.retain_mut(|s| {
                let gap = gap_frame(audience, s.last_id.as_deref());
                s.offer(None, gap)
            });
        }
    }

    fn prune(&self) {
        self.tickets.prune(crate::clock::now_ms());
        let now = Instant::now();
        let mut orgs = self.orgs.lock().expect("lock");
        orgs.retain(|_, org| {
            org.buffer.prune(now);
            !org.streams.is_empty() || now < org.buffer_until
        });
    }

    fn credential_holds(
        &self,
        principal: &Principal,
        credential_expires_at: Option<u64>,
        now_ms: u64,
    ) -> bool {
        match principal {
            Principal::ApiKey(id) => self.keys.is_live(id),
            Principal::User(_) => credential_expires_at.is_none_or(|exp| now_ms < exp),
        }
    }

    fn open(self: &Arc<Self>, secret: &str, now: Instant) -> Result<Subscription, RealtimeError> {
        let ticket = self
            .tickets
            .redeem(secret, crate::clock::now_ms())
            .ok_or(RealtimeError::BadTicket)?;
        if !self.credential_holds(
            &ticket.principal,
            ticket.credential_expires_at,
            crate::clock::now_ms(),
        ) {
            return Err(RealtimeError::BadTicket);
        }
        let mut orgs = self.orgs.lock().expect("lock");
        let org = orgs
            .entry(ticket.audience.clone())
            .or_insert_with(|| self.org_state());
        if org.streams.len() >= self.config.max_streams_per_org {
            drop(orgs);
            self.tickets.put_back(secret, ticket);
            return Err(RealtimeError::TooManyStreams {
                max: self.config.max_streams_per_org,
            });
        }
        org.buffer.prune(now);
        let mut replay = VecDeque::new();
        let mut last_id = ticket.after.clone();
        if let Some(after) = &ticket.after {
            match org.buffer.after(after) {
                Some(newer) => {
                    for e in newer.filter(|e| ticket.filter.matches(&e.event, &e.session)) {
                        replay.push_back(e.text.clone());
                        last_id = Some(e.id.clone());
                    }
                }
                None => replay.push_back(gap_frame(&ticket.audience, Some(after))),
            }
        }
        let (frames_tx, frames) = mpsc::channel(self.config.max_unsent_frames);
        let (kick_tx, kick) = watch::channel(None);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        org.streams.push(Subscriber {
            id,
            filter: ticket.filter.clone(),
            frames: frames_tx,
            kick: kick_tx,
            last_id,
        });
        drop(orgs);
        Ok(Subscription {
            hub: self.clone(),
            id,
            audience: ticket.audience,
            principal: ticket.principal,
            credential_expires_at: ticket.credential_expires_at,
            replay,
            frames,
            kick,
        })
    }
}

#[cfg(test)]
mod tests;
