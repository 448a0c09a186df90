//! Live WhatsApp calls through the request's session: look-ups (`whatsapp-read`) and
//! actions (`whatsapp-send`). Each answers a typed [`WhatsappError`], which `?` turns into
//! the envelope's terms (not connected is 501, API.md §1.5).

use super::bindings::wa::gateway::whatsapp_read;
use crate::error::{ApiError, ErrorCode};

#[cfg(target_arch = "wasm32")]
use super::bindings::wa::gateway::whatsapp_send as send_imp;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::whatsapp as read_imp;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::whatsapp as send_imp;
#[cfg(target_arch = "wasm32")]
use whatsapp_read as read_imp;

pub use super::bindings::wa::gateway::whatsapp_types::{
    GroupInfo, GroupParticipant, WhatsappError,
};
pub use whatsapp_read::{BlockedContact, Identity, OnWhatsapp, Picture};

impl From<WhatsappError> for ApiError {
    fn from(e: WhatsappError) -> Self {
        match e {
            WhatsappError::NotConnected(m) => ApiError::not_implemented(if m.is_empty() {
                "session is not connected".to_owned()
            } else {
                m
            }),
            WhatsappError::NotFound(m) => ApiError::not_found(m),
            WhatsappError::Invalid(m) => ApiError::validation(m),
            WhatsappError::Forbidden(m) => ApiError::forbidden(m),
            WhatsappError::RateLimited(m) => ApiError::new(ErrorCode::RateLimited, m),
            WhatsappError::Unsupported(m) => ApiError::not_implemented(m),
            WhatsappError::Failed(m) => ApiError::internal(m),
        }
    }
}

/// Whether a phone number (digits) has a WhatsApp account, with its JID and LID.
pub fn check_phone(phone: &str) -> Result<OnWhatsapp, WhatsappError> {
    read_imp::check_phone(phone)
}

/// The profile picture; `None` when there is none or privacy hides it.
pub fn profile_picture(jid: &str) -> Result<Option<Picture>, WhatsappError> {
    read_imp::profile_picture(jid)
}

/// The about text; empty when not set or hidden.
pub fn about(jid: &str) -> Result<String, WhatsappError> {
    read_imp::about(jid)
}

/// The account's block list.
pub fn blocklist() -> Result<Vec<BlockedContact>, WhatsappError> {
    read_imp::blocklist()
}

/// The session's own account (works while disconnected); `None` when never paired.
pub fn self_identity() -> Result<Option<Identity>, WhatsappError> {
    read_imp::self_identity()
}

/// A group's metadata and members, read from WhatsApp; `NotFound` when there is no such
/// group or the account is not in it.
pub fn group_metadata(group: &str) -> Result<GroupInfo, WhatsappError> {
    read_imp::group_metadata(group)
}

/// What an invite code leads to, without joining; `Invalid` for an unknown code.
pub fn invite_info(code: &str) -> Result<GroupInfo, WhatsappError> {
    read_imp::invite_info(code)
}

pub fn block(jid: &str) -> Result<(), WhatsappError> {
    send_imp::block(jid)
}

pub fn unblock(jid: &str) -> Result<(), WhatsappError> {
    send_imp::unblock(jid)
}
