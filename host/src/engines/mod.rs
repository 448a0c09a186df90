//! WhatsApp engines: one trait, two implementations — `whatsapp-rust` (the real
//! multi-device protocol) and `sandbox` (a deterministic simulated WhatsApp). An engine
//! knows sessions only by id; it reports progress as [`EngineEvent`]s that the session
//! manager turns into stored status and published events.

pub mod sandbox;
pub mod whatsapp_web;

use async_trait::async_trait;
use gateway_sdk::Jid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

/// A failed engine call. `NotConnected` is 501 to API clients (API.md §1.5).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("session is not connected: {0}")]
    NotConnected(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Failed(String),
}

/// The account a session is paired with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub phone_number: String,
    pub jid: String,
    pub lid: Option<String>,
    pub push_name: Option<String>,
}

/// A QR code or pair code with its expiry (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingCode {
    pub code: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnWhatsapp {
    pub query: String,
    pub is_on_whatsapp: bool,
    pub jid: Option<String>,
    pub lid: Option<String>,
}

impl OnWhatsapp {
    /// The answer for a number that has no WhatsApp account.
    pub fn absent(query: String) -> OnWhatsapp {
        OnWhatsapp {
            query,
            is_on_whatsapp: false,
            jid: None,
            lid: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub id: String,
    pub url: String,
    pub kind: String,
    pub direct_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedContact {
    pub jid: String,
    pub lid: Option<String>,
    pub blocked_at: Option<u64>,
}

/// What an engine reports about a session.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// Connecting (first time or reconnecting).
    Connecting {
        session: String,
        reason: Option<String>,
    },
    /// A new QR code to scan.
    Qr { session: String, code: PairingCode },
    /// Pairing completed; the account is known.
    Paired { session: String, account: Account },
    /// Connected and authenticated: live calls work.
    Connected {
        session: String,
        account: Option<Account>,
    },
    /// The connection dropped; `retrying` says whether the engine reconnects by itself.
    Disconnected {
        session: String,
        reason: String,
        retrying: bool,
    },
    /// The device was unlinked (from the phone or by WhatsApp); the pairing is gone.
    LoggedOut { session: String, reason: String },
    /// The engine gave up on this session.
    Failed { session: String, reason: String },
    /// A WhatsApp event for plugins (`contacts.upsert`, `message`…) with its JSON payload.
    Domain {
        session: String,
        name: String,
        payload: Value,
    },
}

impl EngineEvent {
    /// A label for metrics: the lifecycle step or the domain event's name.
    pub fn kind(&self) -> &str {
        match self {
            EngineEvent::Connecting { .. } => "connecting",
            EngineEvent::Qr { .. } => "qr",
            EngineEvent::Paired { .. } => "paired",
            EngineEvent::Connected { .. } => "connected",
            EngineEvent::Disconnected { .. } => "disconnected",
            EngineEvent::LoggedOut { .. } => "logged_out",
            EngineEvent::Failed { .. } => "failed",
            EngineEvent::Domain { name, .. } => name,
        }
    }

    pub fn session(&self) -> &str {
        match self {
            EngineEvent::Connecting { session, .. }
            | EngineEvent::Qr { session, .. }
            | EngineEvent::Paired { session, .. }
            | EngineEvent::Connected { session, .. }
            | EngineEvent::Disconnected { session, .. }
            | EngineEvent::LoggedOut { session, .. }
            | EngineEvent::Failed { session, .. }
            | EngineEvent::Domain { session, .. } => session,
        }
    }
}

/// Where engines send their events.
#[derive(Clone, Debug)]
pub struct EngineSink(mpsc::UnboundedSender<EngineEvent>);

impl EngineSink {
    pub fn channel() -> (EngineSink, mpsc::UnboundedReceiver<EngineEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EngineSink(tx), rx)
    }

    pub fn send(&self, event: EngineEvent) {
        // The receiver lives as long as the gateway; a send after shutdown is moot.
        let _ = self.0.send(event);
    }
}

/// One way to reach WhatsApp.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// `sandbox` or `whatsapp-rust`.
    fn name(&self) -> &'static str;

    /// Starts connecting in the background; progress arrives as events.
    async fn start(&self, session: &str) -> Result<(), EngineError>;

    /// Disconnects, keeping the pairing. After it returns, no more events of the old
    /// connection are sent.
    async fn stop(&self, session: &str) -> Result<(), EngineError>;

    /// Unlinks the device and forgets the pairing (the engine's stored state for the session).
    async fn logout(&self, session: &str) -> Result<(), EngineError>;

    /// Asks for a pair code to type on the phone (starting the connection if needed).
    async fn request_pairing_code(
        &self,
        session: &str,
        phone: &str,
    ) -> Result<PairingCode, EngineError>;

    async fn check_phone(&self, session: &str, phone: &str) -> Result<OnWhatsapp, EngineError>;
    async fn profile_picture(
        &self,
        session: &str,
        jid: &Jid,
    ) -> Result<Option<Picture>, EngineError>;
    async fn about(&self, session: &str, jid: &Jid) -> Result<String, EngineError>;
    async fn block(&self, session: &str, jid: &Jid) -> Result<(), EngineError>;
    async fn unblock(&self, session: &str, jid: &Jid) -> Result<(), EngineError>;
    async fn blocklist(&self, session: &str) -> Result<Vec<BlockedContact>, EngineError>;

    /// Stops every session (gateway shutdown).
    async fn shutdown(&self);
}
