//! What the outbox keeps per item: the message as accepted (its content, its WhatsApp
//! id), where it is in its life (pending → sent → delivered → read, or failed), and the
//! answer replays of its idempotency key get.

use crate::engines::{MediaKind, MessageRef};
use serde::{Deserialize, Serialize};

/// Where an item is; only ever moves forward (a late receipt never moves it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl SendStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Pending => "pending",
            SendStatus::Sent => "sent",
            SendStatus::Delivered => "delivered",
            SendStatus::Read => "read",
            SendStatus::Failed => "failed",
        }
    }

    /// Sent, or failed: what a sync request waits for.
    pub fn is_settled(self) -> bool {
        self != SendStatus::Pending
    }

    /// Whether a receipt or status of rank `next` moves an item at `self` forward.
    pub fn advances_to(self, next: SendStatus) -> bool {
        self != SendStatus::Failed && next > self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    Sync,
    Async,
}

/// Where the media of an item comes from, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "from")]
pub enum StoredMediaSource {
    /// A file in the media store (`med_…`); inline bytes are written there at accept.
    Upload { id: String },
    /// The media of a message already on WhatsApp.
    Message { message: MessageRef },
}

/// An item's content, as stored (media by reference, never its bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum StoredContent {
    Text {
        text: String,
    },
    Media {
        kind: MediaKind,
        source: StoredMediaSource,
        mimetype: Option<String>,
        caption: Option<String>,
        file_name: Option<String>,
        voice_note: bool,
    },
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

/// One message write in a session's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    /// `out_<ULID>`.
    pub outbox_id: String,
    pub session: String,
    pub organization: String,
    /// Position in the session's queue (accept order).
    pub seq: u64,
    /// The id on WhatsApp, assigned at accept and kept across retries.
    pub wa_message_id: String,
    /// The chat it goes to.
    pub chat: String,
    pub content: StoredContent,
    pub reply_to: Option<MessageRef>,
    #[serde(default)]
    pub mentions: Vec<String>,
    #[serde(default)]
    pub forwarded: bool,
    pub mode: SendMode,
    pub status: SendStatus,
    /// When the current status was reached (epoch ms).
    pub status_at: u64,
    pub created_at: u64,
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (epoch ms) is the next attempt made.
    #[serde(default)]
    pub next_attempt_at: u64,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// What the accepting request answered (200 settled, 202 pending), for replays;
    /// `None` while that request still waits.
    pub http_status: Option<u16>,
}

impl OutboxItem {
    /// The status and its time after a change (never backwards).
    pub fn advance(&mut self, status: SendStatus, at: u64) -> bool {
        if !self.status.advances_to(status) {
            return false;
        }
        self.status = status;
        self.status_at = at;
        true
    }

    pub fn fail(&mut self, code: &str, message: String, at: u64) {
        self.status = SendStatus::Failed;
        self.status_at = at;
        self.error_code = Some(code.to_owned());
        self.error = Some(message);
    }
}

/// An idempotency key's record: the request it was first used with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub fingerprint: String,
    pub outbox_id: String,
    pub session: String,
    /// Epoch ms after which the key starts a new send.
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_failed_is_final() {
        use SendStatus::*;
        assert!(Pending.advances_to(Sent));
        assert!(Sent.advances_to(Read));
        assert!(!Read.advances_to(Delivered));
        assert!(!Failed.advances_to(Sent));
        assert!(Pending.advances_to(Failed));
        assert!(Sent.is_settled() && !Pending.is_settled());
    }
}
