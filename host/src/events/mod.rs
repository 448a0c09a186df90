//! Event fan-out: session events in the envelope of API.md §4, delivered in order to the
//! plugins that subscribe (the contact store is built this way) and broadcast to any other
//! listener (webhooks, realtime streams).

pub mod delivery;

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// `{schema, id, event, session, organization, timestamp, payload}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventEnvelope {
    pub schema: &'static str,
    pub id: String,
    pub event: String,
    pub session: String,
    pub organization: String,
    pub timestamp: u64,
    pub payload: Value,
}

impl EventEnvelope {
    pub fn new(event: &str, session: &str, organization: &str, payload: Value) -> Self {
        EventEnvelope {
            schema: "v1",
            id: format!("evt_{}", ulid::Ulid::generate()),
            event: event.to_owned(),
            session: session.to_owned(),
            organization: organization.to_owned(),
            timestamp: crate::clock::now_ms(),
            payload,
        }
    }
}

/// Publishes events to the plugin dispatcher (lossless, in order) and to broadcast
/// listeners (which may lag and skip).
#[derive(Clone)]
pub struct EventBus {
    plugins: mpsc::UnboundedSender<Arc<EventEnvelope>>,
    broadcast: broadcast::Sender<Arc<EventEnvelope>>,
}

/// Events a slow broadcast listener may fall behind by before it skips some.
const BROADCAST_CAPACITY: usize = 4096;

impl EventBus {
    pub fn new() -> (EventBus, mpsc::UnboundedReceiver<Arc<EventEnvelope>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (btx, _) = broadcast::channel(BROADCAST_CAPACITY);
        (
            EventBus {
                plugins: tx,
                broadcast: btx,
            },
            rx,
        )
    }

    pub fn publish(&self, envelope: EventEnvelope) {
        tracing::debug!(event = %envelope.event, session = %envelope.session, id = %envelope.id, "event");
        let envelope = Arc::new(envelope);
        let _ = self.plugins.send(envelope.clone());
        let _ = self.broadcast.send(envelope);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventEnvelope>> {
        self.broadcast.subscribe()
    }
}
