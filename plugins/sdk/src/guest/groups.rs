//! Group administration on WhatsApp (`whatsapp-groups`): create, change, members, join
//! requests, invites, join, leave and the picture, through the request's session. Each
//! call answers a typed [`WhatsappError`], which `?` turns into the envelope's terms
//! (`forbidden` — the account is not a group admin — is 403; not connected is 501).

use super::bindings::wa::gateway::whatsapp_groups as wit;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::groups as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use super::bindings::wa::gateway::whatsapp_types::{
    GroupInfo, GroupParticipant, WhatsappError,
};
pub use wit::{GroupSetting, JoinRequest, Joined, ParticipantAction, ParticipantResult};

/// Creates a group with the account as its superadmin.
pub fn create(subject: &str, participants: &[String]) -> Result<GroupInfo, WhatsappError> {
    imp::create(subject, participants)
}

pub fn set_subject(group: &str, subject: &str) -> Result<(), WhatsappError> {
    imp::set_subject(group, subject)
}

/// `None` (or empty) clears the description.
pub fn set_description(group: &str, description: Option<&str>) -> Result<(), WhatsappError> {
    imp::set_description(group, description)
}

pub fn set_setting(group: &str, setting: GroupSetting, on: bool) -> Result<(), WhatsappError> {
    imp::set_setting(group, setting, on)
}

/// Adds, removes, promotes, demotes, approves or rejects; WhatsApp answers a code per
/// participant (200 done, 403 privacy, 404 not there, 408 left recently, 409 already in).
pub fn update_participants(
    group: &str,
    action: ParticipantAction,
    jids: &[String],
) -> Result<Vec<ParticipantResult>, WhatsappError> {
    imp::update_participants(group, action, jids)
}

pub fn join_requests(group: &str) -> Result<Vec<JoinRequest>, WhatsappError> {
    imp::join_requests(group)
}

/// The invite code; `reset` revokes the current one and answers the new one.
pub fn invite_link(group: &str, reset: bool) -> Result<String, WhatsappError> {
    imp::invite_link(group, reset)
}

pub fn join(code: &str) -> Result<Joined, WhatsappError> {
    imp::join(code)
}

pub fn leave(group: &str) -> Result<(), WhatsappError> {
    imp::leave(group)
}

/// Sets (JPEG bytes) or removes (`None`) the picture; answers the new picture's id.
pub fn set_picture(group: &str, jpeg: Option<&[u8]>) -> Result<Option<String>, WhatsappError> {
    imp::set_picture(group, jpeg)
}
