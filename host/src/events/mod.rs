//! Event fan-out: session events in the envelope of API.md §7.5, queued per session and
//! delivered in order to the plugins that subscribe (the contact store is built this way),
//! and broadcast to any other listener (webhooks, realtime streams).
//!
//! Each session has its own bounded queue; delivery workers take sessions round-robin, one
//! event at a time, and never two workers the same session — so a session's events arrive
//! in order, and a session flooding events delays no other session by more than one event
//! per worker. Producers that can wait (the real engine) wait for room in their session's
//! queue; those that cannot are told the queue is full.

pub mod delivery;
pub mod filter;
pub mod inbox;

use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, broadcast};

/// `{schema, id, event, session, organization, timestamp, payload}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventEnvelope {
    pub schema: &'static str,
    pub id: String,
    pub event: String,
    /// Empty for organization-level events (`webhook.*`), serialized as null.
    #[serde(serialize_with = "null_if_empty")]
    pub session: String,
    pub organization: String,
    pub timestamp: u64,
    pub payload: Value,
    /// How many plugin emits led to this event (0 for the engine's and the host's own);
    /// chains deeper than [`MAX_EMIT_DEPTH`] are dropped.
    #[serde(skip)]
    pub depth: u8,
    /// The event's row in the inbound journal ([`inbox::Inbox`]), removed once the
    /// event reached every subscriber.
    #[serde(skip)]
    pub journal: Option<u64>,
}

fn null_if_empty<S: serde::Serializer>(s: &str, ser: S) -> Result<S::Ok, S::Error> {
    if s.is_empty() {
        ser.serialize_none()
    } else {
        ser.serialize_str(s)
    }
}

/// Emits an event may be away from the engine's or host's event that caused it.
pub const MAX_EMIT_DEPTH: u8 = 4;

impl EventEnvelope {
    pub fn new(event: &str, session: &str, organization: &str, payload: Value) -> Self {
        EventEnvelope {
            schema: "v1",
            id: format!("evt_{}", crate::ids::ordered()),
            event: event.to_owned(),
            session: session.to_owned(),
            organization: organization.to_owned(),
            timestamp: crate::clock::now_ms(),
            payload,
            depth: 0,
            journal: None,
        }
    }
}

/// A session's queue is at its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's event queue is full")]
pub struct QueueFull;

#[derive(Default)]
struct SessionQueue {
    events: VecDeque<Arc<EventEnvelope>>,
    /// A worker is delivering this session's head event.
    busy: bool,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, SessionQueue>,
    /// Sessions with events waiting and no worker on them, in turn order.
    ready: VecDeque<String>,
    queued: usize,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes a worker when a session becomes ready.
    work: Notify,
    /// Wakes producers waiting for room when any queue shrinks.
    room: Notify,
    per_session: usize,
    broadcast: broadcast::Sender<Arc<EventEnvelope>>,
}

/// Publishes events to the per-session delivery queues and to broadcast listeners
/// (which may lag and skip).
#[derive(Clone)]
pub struct EventBus(Arc<Inner>);

/// Events a slow broadcast listener may fall behind by before it skips some.
const BROADCAST_CAPACITY: usize = 4096;

impl EventBus {
    /// A bus whose sessions hold at most `per_session` queued events each (producers
    /// that respect the bound; host lifecycle events always enter).
    pub fn new(per_session: usize) -> EventBus {
        let (broadcast, _) = broadcast::channel(BROADCAST_CAPACITY);
        EventBus(Arc::new(Inner {
            state: Mutex::new(State::default()),
            work: Notify::new(),
            room: Notify::new(),
            per_session: per_session.max(1),
            broadcast,
        }))
    }

    /// Queues an event whatever the bound (host lifecycle events: few, and never lost).
    pub fn publish(&self, envelope: EventEnvelope) {
        tracing::debug!(event = %envelope.event, session = %envelope.session, id = %envelope.id, "event");
        let envelope = Arc::new(envelope);
        {
            let mut state = self.0.state.lock().expect("lock");
            let State {
                queues,
                ready,
                queued,
            } = &mut *state;
            let q = queues.entry(envelope.session.clone()).or_default();
            q.events.push_back(envelope.clone());
            *queued += 1;
            if q.events.len() == 1 && !q.busy {
                ready.push_back(envelope.session.clone());
            }
        }
        self.0.work.notify_one();
        let _ = self.0.broadcast.send(envelope);
    }

    /// Whether `session`'s queue is below its bound.
    pub fn has_room(&self, session: &str) -> bool {
        let state = self.0.state.lock().expect("lock");
        state
            .queues
            .get(session)
            .is_none_or(|q| q.events.len() < self.0.per_session)
    }

    /// Queues an event if the session's queue has room.
    pub fn try_publish(&self, envelope: EventEnvelope) -> Result<(), QueueFull> {
        if !self.has_room(&envelope.session) {
            return Err(QueueFull);
        }
        self.publish(envelope);
        Ok(())
    }

    /// Waits until `session`'s queue has room.
    pub async fn room_for(&self, session: &str) {
        loop {
            let notified = self.0.room.notified();
            if self.has_room(session) {
                return;
            }
            notified.await;
        }
    }

    /// Events waiting in every queue (for metrics).
    pub fn queued(&self) -> usize {
        self.0.state.lock().expect("lock").queued
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventEnvelope>> {
        self.0.broadcast.subscribe()
    }

    /// The next event to deliver: the head of the next ready session's queue. The session
    /// is the caller's until it calls [`EventBus::done`].
    pub(crate) async fn next(&self) -> Arc<EventEnvelope> {
        loop {
            let notified = self.0.work.notified();
            {
                let mut state = self.0.state.lock().expect("lock");
                let State { queues, ready, .. } = &mut *state;
                while let Some(session) = ready.pop_front() {
                    if let Some(q) = queues.get_mut(&session)
                        && !q.busy
                        && let Some(head) = q.events.front()
                    {
                        q.busy = true;
                        let head = head.clone();
                        drop(state);
                        // Another worker may take the next ready session meanwhile.
                        self.0.work.notify_one();
                        return head;
                    }
                }
            }
            notified.await;
        }
    }

    /// Marks `event` (the head of its session's queue) delivered: the session goes back
    /// in turn if more events wait.
    pub(crate) fn done(&self, event: &EventEnvelope) {
        {
            let mut state = self.0.state.lock().expect("lock");
            let State {
                queues,
                ready,
                queued,
            } = &mut *state;
            if let Some(q) = queues.get_mut(&event.session) {
                q.events.pop_front();
                *queued -= 1;
                q.busy = false;
                if q.events.is_empty() {
                    queues.remove(&event.session);
                } else {
                    ready.push_back(event.session.clone());
                }
            }
        }
        self.0.work.notify_one();
        self.0.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(session: &str, n: u32) -> EventEnvelope {
        EventEnvelope::new("message", session, "org", json!({"n": n}))
    }

    #[tokio::test]
    async fn sessions_take_turns_and_keep_their_order() {
        let bus = EventBus::new(100);
        for n in 0..5 {
            bus.publish(ev("flood", n));
        }
        bus.publish(ev("quiet", 0));
        let mut seen = Vec::new();
        for _ in 0..6 {
            let e = bus.next().await;
            seen.push(format!("{}{}", e.session, e.payload["n"]));
            bus.done(&e);
        }
        // The quiet session's one event comes second, not after the whole flood.
        assert_eq!(
            seen,
            vec!["flood0", "quiet0", "flood1", "flood2", "flood3", "flood4"]
        );
        assert_eq!(bus.queued(), 0);
    }

    #[tokio::test]
    async fn a_session_is_never_delivered_by_two_workers_at_once() {
        let bus = EventBus::new(100);
        bus.publish(ev("s", 0));
        bus.publish(ev("s", 1));
        let first = bus.next().await;
        // The second worker finds nothing: the session is busy until `done`.
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), bus.next()).await;
        assert!(second.is_err());
        bus.done(&first);
        let next = bus.next().await;
        assert_eq!(next.payload["n"], 1);
    }

    #[tokio::test]
    async fn the_bound_refuses_or_waits_per_session() {
        let bus = EventBus::new(2);
        bus.try_publish(ev("a", 0)).unwrap();
        bus.try_publish(ev("a", 1)).unwrap();
        assert_eq!(bus.try_publish(ev("a", 2)), Err(QueueFull));
        // Another session is not affected.
        bus.try_publish(ev("b", 0)).unwrap();
        let waiter = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.room_for("a").await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        let e = bus.next().await;
        assert_eq!(e.session, "a");
        bus.done(&e);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("room freed")
            .unwrap();
        // Host lifecycle events enter whatever the bound.
        bus.publish(ev("a", 3));
        bus.publish(ev("a", 4));
        assert_eq!(bus.queued(), 4);
    }
}
