//! Platform operators' powers over a session (`platform-admin`): its send rates and admin
//! flag, and backfills that re-read its contacts, groups and chats from WhatsApp. Every
//! call reads as not found unless the caller is a platform admin; on `/admin/…` routes the
//! host scopes the call to the session's own organization.

use super::bindings::wa::gateway::platform_admin as wit;
use super::sessions::{Session, SessionError};

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::platform_admin as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use wit::{BackfillJob, BackfillScope, SessionLimits};

impl BackfillScope {
    /// The scope's name in the API (`contacts`, `groups`, `chats`).
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillScope::Contacts => "contacts",
            BackfillScope::Groups => "groups",
            BackfillScope::Chats => "chats",
        }
    }

    /// The scope an API name stands for.
    pub fn parse(name: &str) -> Option<BackfillScope> {
        [
            BackfillScope::Contacts,
            BackfillScope::Groups,
            BackfillScope::Chats,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Changes the session's send rates or admin flag; `Invalid` when a rate is out of range
/// (`ratePerMin` 1–1000, `ratePerHour` 1–60 000).
pub fn update_session(id: &str, limits: SessionLimits) -> Result<Session, SessionError> {
    imp::update_session(id, limits)
}

/// Starts a backfill over `scope` (empty = all); `Conflict` while one runs, `NotConnected`
/// when the session is not connected.
pub fn start_backfill(id: &str, scope: &[BackfillScope]) -> Result<BackfillJob, SessionError> {
    imp::start_backfill(id, scope)
}

/// The running backfill, else the last one; `None` when the session never had one.
pub fn backfill_status(id: &str) -> Result<Option<BackfillJob>, SessionError> {
    imp::backfill_status(id)
}
