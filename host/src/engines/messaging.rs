//! What engines send and report for messaging: an outgoing message with its content
//! resolved (media bytes loaded), the server's acknowledgement, why a send failed (and
//! whether trying again can help), receipts, chat states and chat settings.

use serde::{Deserialize, Serialize};

/// A message on WhatsApp: its chat, id and author (`None` = this account).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub chat: String,
    pub id: String,
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// Media to send, its bytes loaded (or the stored message to forward it from).
#[derive(Debug, Clone)]
pub struct OutgoingMedia {
    pub kind: MediaKind,
    pub bytes: MediaBytes,
    pub mimetype: String,
    pub caption: Option<String>,
    pub file_name: Option<String>,
    pub voice_note: bool,
}

/// Where media comes from when it is sent.
#[derive(Debug, Clone)]
pub enum MediaBytes {
    /// Bytes to upload.
    Data(std::sync::Arc<Vec<u8>>),
    /// The media of a message already on WhatsApp: forwarded by reference.
    Message(MessageRef),
}

/// What an outgoing message says.
#[derive(Debug, Clone)]
pub enum OutgoingContent {
    Text(String),
    Media(OutgoingMedia),
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    Contact {
        name: String,
        vcard: String,
    },
    Poll {
        name: String,
        options: Vec<String>,
        selectable_count: u32,
    },
    Reaction {
        target: MessageRef,
        emoji: String,
    },
    Edit {
        target: MessageRef,
        text: String,
    },
    Revoke {
        target: MessageRef,
    },
    Vote {
        target: MessageRef,
        options: Vec<String>,
    },
}

impl OutgoingContent {
    /// Whether WhatsApp shows it as a message someone reads (typing is shown before
    /// these), rather than an action on another message.
    pub fn is_readable(&self) -> bool {
        matches!(self, OutgoingContent::Text(_) | OutgoingContent::Media(_))
    }
}

/// A message the outbox hands to an engine.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// The chat: a user JID, LID or group JID.
    pub to: String,
    /// The id it gets on WhatsApp, assigned at accept and kept across retries, so
    /// WhatsApp drops a resend of something already delivered.
    pub id: String,
    pub content: OutgoingContent,
    pub reply_to: Option<MessageRef>,
    pub mentions: Vec<String>,
    pub forwarded: bool,
}

/// The server took the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentAck {
    /// Epoch ms of the server's acknowledgement.
    pub timestamp: u64,
}

/// Why a send did not go through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Not connected right now: the outbox waits for the connection.
    #[error("not connected: {0}")]
    NotConnected(String),
    /// Worth trying again (timeout, connection lost mid-send, WhatsApp 5xx/429).
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot help; `code` is the SendResult's `errorCode`
    /// (`not_on_whatsapp`, `media_failed`, `rejected`).
    #[error("{message}")]
    Permanent { code: &'static str, message: String },
}

/// How far a sent message got with its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Delivered,
    Read,
    /// A voice note or video was played; counts as read.
    Played,
}

/// A receipt for messages this account sent.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub chat: String,
    pub ids: Vec<String>,
    pub kind: ReceiptKind,
    /// Who sent the receipt (in groups, one member).
    pub recipient: Option<String>,
    /// Epoch ms.
    pub timestamp: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatState {
    Composing,
    Recording,
    Paused,
}

/// Changes to a chat's settings; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChatSettings {
    pub archived: Option<bool>,
    pub pinned: Option<bool>,
    /// Epoch ms; 0 unmutes, -1 mutes forever.
    pub muted_until: Option<i64>,
}

/// Downloaded media.
#[derive(Debug, Clone)]
pub struct MediaBlob {
    pub bytes: std::sync::Arc<Vec<u8>>,
    pub mimetype: String,
    pub file_name: Option<String>,
}
