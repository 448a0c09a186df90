//! The session registry and manager (`session-control`), restricted by the host to the
//! caller's organization: another organization's session reads as not found.

use super::bindings::wa::gateway::session_control as wit;
use crate::error::ApiError;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::sessions as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use wit::{Code, Session, SessionError, SessionOptions};

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
