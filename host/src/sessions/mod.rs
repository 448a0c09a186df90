//! WhatsApp sessions: the stored record of each attached number ([`SessionRegistry`]) and
//! the manager that drives its engine connection and keeps the record in step
//! ([`SessionManager`]).

pub mod auto_read;
mod manager;
mod registry;

pub use manager::{
    CreateSession, OnDelete, SessionError, SessionLimits, SessionManager, SessionPolicy,
};
pub use registry::SessionRegistry;

use serde::{Deserialize, Serialize};

/// `stopped` | `starting` | `scan_qr_code` | `working` | `failed` (API.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Stopped,
    Starting,
    ScanQrCode,
    Working,
    Failed,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 5] = [
        SessionStatus::Stopped,
        SessionStatus::Starting,
        SessionStatus::ScanQrCode,
        SessionStatus::Working,
        SessionStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Stopped => "stopped",
            SessionStatus::Starting => "starting",
            SessionStatus::ScanQrCode => "scan_qr_code",
            SessionStatus::Working => "working",
            SessionStatus::Failed => "failed",
        }
    }

    /// Whether a connection is running or being set up.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            SessionStatus::Starting | SessionStatus::ScanQrCode | SessionStatus::Working
        )
    }
}

/// One session, as stored and as answered (the API's session object plus `statusReason`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    pub organization_id: String,
    pub label: Option<String>,
    pub status: SessionStatus,
    /// Why the session is not working (ours): `not connected: …`, `logged out`…
    pub status_reason: Option<String>,
    pub phone_number: Option<String>,
    pub wa_jid: Option<String>,
    pub wa_lid: Option<String>,
    pub push_name: Option<String>,
    pub gateway_id: String,
    pub is_admin_session: bool,
    pub auto_read: bool,
    pub presence_typing: bool,
    pub rate_per_min: u32,
    pub rate_per_hour: u32,
    pub created_by_user_id: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub last_connected_at: Option<u64>,
    /// Whether the session should be running: set by start, cleared by stop/logout, so a
    /// gateway restart brings back exactly the sessions that were running.
    #[serde(default)]
    pub want_running: bool,
}

impl SessionRecord {
    pub fn is_paired(&self) -> bool {
        self.wa_jid.is_some()
    }

    /// Asked to run and not given up: the engine holds (or is opening) its connection, so
    /// pairing can ask it for a code without starting it again.
    pub fn is_connecting(&self) -> bool {
        self.want_running && self.status.is_running()
    }
}
