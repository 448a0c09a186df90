//! WhatsApp engines: one trait, two implementations — `whatsapp-rust` (the real
//! multi-device protocol) and `sandbox` (a deterministic simulated WhatsApp). An engine
//! knows sessions only by id; it reports progress as [`EngineEvent`]s that the session
//! manager turns into stored status and published events.

pub mod groups;
pub mod messaging;
pub mod sandbox;
pub mod whatsapp_web;

pub use groups::{
    GroupInfo, GroupParticipant, GroupSetting, JoinRequest, Joined, ParticipantAction,
    ParticipantResult,
};
pub use messaging::{
    ChatSettings, ChatState, MediaBlob, MediaBytes, MediaKind, MessageRef, OutgoingContent,
    OutgoingMedia, OutgoingMessage, Receipt, ReceiptKind, SendError, SentAck,
};

use crate::events::{EventBus, QueueFull};
use crate::metrics::{EventLabels, Metrics};
use crate::sessions::SessionManager;
use async_trait::async_trait;
use gateway_sdk::Jid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, OnceLock, Weak};

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

/// A chat as a backfill re-reads it: its JID (and LID when known) and the account's
/// settings for it, where the engine knows them (`None` fields are unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSnapshot {
    pub jid: String,
    pub lid: Option<String>,
    pub settings: ChatSettings,
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
    /// Receipts for messages this account sent (the outbox advances their status).
    Receipt { session: String, receipt: Receipt },
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
            EngineEvent::Receipt { .. } => "receipt",
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
            | EngineEvent::Receipt { session, .. }
            | EngineEvent::Domain { session, .. } => session,
        }
    }
}

/// Where engines send their events. Lifecycle events are applied to the session's record
/// at once (in order, on the engine's own task); WhatsApp events go to the session's
/// bounded delivery queue, so a session flooding events holds back only itself.
#[derive(Clone)]
pub struct EngineSink {
    manager: Arc<OnceLock<Weak<SessionManager>>>,
    /// Receipts go to the outbox, in order, through one task.
    receipts: Arc<OnceLock<tokio::sync::mpsc::UnboundedSender<(String, Receipt)>>>,
    bus: EventBus,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for EngineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineSink")
    }
}

impl EngineSink {
    /// A sink whose events reach `bus`; lifecycle events reach the manager once
    /// [`EngineSink::attach`] names it (engines are built before it).
    pub fn new(bus: EventBus, metrics: Arc<Metrics>) -> EngineSink {
        EngineSink {
            manager: Arc::new(OnceLock::new()),
            receipts: Arc::new(OnceLock::new()),
            bus,
            metrics,
        }
    }

    pub fn attach(&self, manager: &Arc<SessionManager>) {
        let _ = self.manager.set(Arc::downgrade(manager));
    }

    /// Sends receipts to the outbox from now on, applied one after another.
    pub fn attach_outbox(&self, outbox: &crate::outbox::Outbox) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Receipt)>();
        if self.receipts.set(tx).is_err() {
            return;
        }
        let outbox = outbox.clone();
        crate::background::spawn(async move {
            while let Some((session, receipt)) = rx.recv().await {
                outbox.on_receipt(&session, receipt).await;
            }
        });
    }

    /// Applies or queues an event whatever the queue bound (lifecycle events, and the
    /// sandbox's own syncs, which are bounded by its world).
    pub fn send(&self, event: EngineEvent) {
        self.count(event.kind());
        if let EngineEvent::Receipt { session, receipt } = event {
            if let Some(r) = self.receipts.get() {
                let _ = r.send((session, receipt));
            }
            return;
        }
        let Some(manager) = self.manager.get().and_then(Weak::upgrade) else {
            return; // Shutting down.
        };
        if let Err(e) = manager.apply(event) {
            tracing::error!(error = %e, "applying engine event failed");
        }
    }

    /// Counts an engine event of `kind` (those that reach plugins through the inbound
    /// journal instead of [`EngineSink::send`] are counted too).
    pub fn count(&self, kind: &str) {
        self.metrics
            .engine_events
            .get_or_create(&EventLabels {
                event: kind.to_owned(),
            })
            .inc();
    }

    /// The organization owning `session`, while it exists.
    pub fn organization_of(&self, session: &str) -> Option<String> {
        let manager = self.manager.get().and_then(Weak::upgrade)?;
        let record = manager.registry().get(session)?;
        Some(record.organization_id.clone())
    }

    /// Like [`EngineSink::send`], waiting first for room in the session's queue when the
    /// event is a WhatsApp event (the real engine: WhatsApp then waits on us).
    pub async fn send_waiting(&self, event: EngineEvent) {
        if let EngineEvent::Domain { session, .. } = &event {
            self.bus.room_for(session).await;
        }
        self.send(event);
    }

    /// Like [`EngineSink::send`], refusing a WhatsApp event when the session's queue is
    /// full (injected events: the caller is told to slow down).
    pub fn try_send(&self, event: EngineEvent) -> Result<(), QueueFull> {
        if let EngineEvent::Domain { session, .. } = &event
            && !self.bus.has_room(session)
        {
            return Err(QueueFull);
        }
        self.send(event);
        Ok(())
    }
}

fn groups_unsupported() -> EngineError {
    EngineError::Unsupported("this engine does not support group calls".into())
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

    /// Sends one message with the id the outbox assigned.
    async fn send_message(
        &self,
        session: &str,
        message: &OutgoingMessage,
    ) -> Result<SentAck, SendError>;
    /// Shows typing/recording (or stops) in a chat.
    async fn send_chat_state(
        &self,
        session: &str,
        chat: &Jid,
        state: ChatState,
    ) -> Result<(), EngineError>;
    /// Sends read receipts for incoming messages.
    async fn mark_read(
        &self,
        session: &str,
        chat: &Jid,
        messages: &[MessageRef],
    ) -> Result<(), EngineError>;
    /// Archives, pins or mutes a chat on WhatsApp (app state).
    async fn apply_chat_settings(
        &self,
        session: &str,
        chat: &Jid,
        settings: ChatSettings,
    ) -> Result<(), EngineError>;
    /// Deletes a chat on WhatsApp (app state).
    async fn delete_chat(&self, session: &str, chat: &Jid) -> Result<(), EngineError>;
    /// The bytes of a message's media (received or sent); `NotFound` when it has none or
    /// it is gone from the CDN and the phone will not upload it again.
    async fn download_media(
        &self,
        session: &str,
        message: &MessageRef,
    ) -> Result<MediaBlob, EngineError>;

    // Groups. An engine that cannot do them answers `Unsupported` (501 to clients).

    /// A group's metadata and members; `NotFound` when there is no such group or the
    /// account is not in it.
    async fn group_metadata(&self, _session: &str, _group: &Jid) -> Result<GroupInfo, EngineError> {
        Err(groups_unsupported())
    }
    /// What an invite code leads to, without joining; `Invalid` for an unknown code.
    async fn invite_info(&self, _session: &str, _code: &str) -> Result<GroupInfo, EngineError> {
        Err(groups_unsupported())
    }
    /// Creates a group with the account as superadmin and these members.
    async fn create_group(
        &self,
        _session: &str,
        _subject: &str,
        _participants: &[Jid],
    ) -> Result<GroupInfo, EngineError> {
        Err(groups_unsupported())
    }
    async fn set_group_subject(
        &self,
        _session: &str,
        _group: &Jid,
        _subject: &str,
    ) -> Result<(), EngineError> {
        Err(groups_unsupported())
    }
    /// `None` clears the description.
    async fn set_group_description(
        &self,
        _session: &str,
        _group: &Jid,
        _description: Option<&str>,
    ) -> Result<(), EngineError> {
        Err(groups_unsupported())
    }
    async fn set_group_setting(
        &self,
        _session: &str,
        _group: &Jid,
        _setting: GroupSetting,
        _on: bool,
    ) -> Result<(), EngineError> {
        Err(groups_unsupported())
    }
    /// Adds, removes, promotes or demotes members, or approves or rejects join requests;
    /// WhatsApp answers per participant.
    async fn update_group_participants(
        &self,
        _session: &str,
        _group: &Jid,
        _action: ParticipantAction,
        _participants: &[Jid],
    ) -> Result<Vec<ParticipantResult>, EngineError> {
        Err(groups_unsupported())
    }
    async fn group_join_requests(
        &self,
        _session: &str,
        _group: &Jid,
    ) -> Result<Vec<JoinRequest>, EngineError> {
        Err(groups_unsupported())
    }
    /// The invite code; `reset` revokes the current one first.
    async fn group_invite_code(
        &self,
        _session: &str,
        _group: &Jid,
        _reset: bool,
    ) -> Result<String, EngineError> {
        Err(groups_unsupported())
    }
    async fn join_group(&self, _session: &str, _code: &str) -> Result<Joined, EngineError> {
        Err(groups_unsupported())
    }
    async fn leave_group(&self, _session: &str, _group: &Jid) -> Result<(), EngineError> {
        Err(groups_unsupported())
    }
    /// Sets (JPEG) or removes the group's picture; answers the new picture's id.
    async fn set_group_picture(
        &self,
        _session: &str,
        _group: &Jid,
        _jpeg: Option<Vec<u8>>,
    ) -> Result<Option<String>, EngineError> {
        Err(groups_unsupported())
    }

    // Backfill (API.md §8): what the engine can re-read of the account right now, in the
    // shapes its sync events carry. An engine that cannot answers `Unsupported`.

    /// The account's contacts, as `contacts.upsert` entries (LID ↔ phone mappings included).
    async fn backfill_contacts(&self, _session: &str) -> Result<Vec<Value>, EngineError> {
        Err(backfill_unsupported("contacts"))
    }
    /// Every group the account is in, members and roles included.
    async fn backfill_groups(&self, _session: &str) -> Result<Vec<GroupInfo>, EngineError> {
        Err(backfill_unsupported("groups"))
    }
    /// The account's chats, with their archive/pin/mute settings where the engine knows them.
    async fn backfill_chats(&self, _session: &str) -> Result<Vec<ChatSnapshot>, EngineError> {
        Err(backfill_unsupported("chats"))
    }

    /// Stops every session (gateway shutdown).
    async fn shutdown(&self);
}

fn backfill_unsupported(scope: &str) -> EngineError {
    EngineError::Unsupported(format!("this engine cannot re-read {scope}"))
}
