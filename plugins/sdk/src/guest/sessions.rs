//! The session registry and manager (`session-control`), restricted by the host to the
//! caller's organization: another organization's session reads as not found.

use super::bindings::wa::gateway::session_control as wit;
use crate::error::ApiError;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::sessions as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use wit::{Code, Session, SessionError, SessionOptions};

use schemars::JsonSchema;
use serde::Serialize;

/// A session: one attached (or to-be-attached) WhatsApp number (API.md §2).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// ULID.
    pub id: String,
    pub organization_id: String,
    pub label: Option<String>,
    #[schemars(extend("enum" = ["stopped", "starting", "scan_qr_code", "working", "failed"]))]
    pub status: String,
    /// Why the session is not working, when known.
    pub status_reason: Option<String>,
    pub phone_number: Option<String>,
    pub wa_jid: Option<String>,
    pub wa_lid: Option<String>,
    /// The gateway node holding the session.
    pub gateway_id: String,
    pub is_admin_session: bool,
    pub auto_read: bool,
    pub presence_typing: bool,
    pub rate_per_min: u32,
    pub rate_per_hour: u32,
    /// The JWT `sub`, or `apikey:<key id>`.
    pub created_by_user_id: String,
    /// Epoch ms.
    pub created_at: u64,
    pub updated_at: u64,
    pub last_connected_at: Option<u64>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView {
            id: s.id,
            organization_id: s.organization_id,
            label: s.label,
            status: s.status,
            status_reason: s.status_reason,
            phone_number: s.phone_number,
            wa_jid: s.wa_jid,
            wa_lid: s.wa_lid,
            gateway_id: s.gateway_id,
            is_admin_session: s.is_admin_session,
            auto_read: s.auto_read,
            presence_typing: s.presence_typing,
            rate_per_min: s.rate_per_min,
            rate_per_hour: s.rate_per_hour,
            created_by_user_id: s.created_by_user_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            last_connected_at: s.last_connected_at,
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => ApiError::not_found("session not found"),
            SessionError::Invalid(m) => ApiError::validation(m),
            SessionError::Conflict(m) => ApiError::conflict(m),
            SessionError::NotConnected(m) => {
                ApiError::not_implemented(format!("session is not connected: {m}"))
            }
            SessionError::Failed(m) => ApiError::internal(m),
        }
    }
}

pub fn list() -> Result<Vec<Session>, SessionError> {
    imp::list_sessions()
}

/// Every organization's sessions; only for callers with the platform-admin capability.
pub fn list_all() -> Result<Vec<Session>, SessionError> {
    imp::list_all_sessions()
}

pub fn create(options: &SessionOptions) -> Result<Session, SessionError> {
    imp::create(options)
}

pub fn get(id: &str) -> Result<Session, SessionError> {
    imp::get(id)
}

pub fn delete(id: &str) -> Result<(), SessionError> {
    imp::delete(id)
}

pub fn start(id: &str) -> Result<Session, SessionError> {
    imp::start(id)
}

pub fn stop(id: &str) -> Result<Session, SessionError> {
    imp::stop(id)
}

pub fn restart(id: &str) -> Result<Session, SessionError> {
    imp::restart(id)
}

pub fn logout(id: &str) -> Result<Session, SessionError> {
    imp::logout(id)
}

/// The current QR code, starting pairing when needed; `None` until one exists.
pub fn qr(id: &str) -> Result<Option<Code>, SessionError> {
    imp::qr(id)
}

/// A pair code for the phone (digits only).
pub fn request_pairing_code(id: &str, phone: &str) -> Result<Code, SessionError> {
    imp::request_pairing_code(id, phone)
}
