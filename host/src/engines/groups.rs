//! What engines answer and take for WhatsApp groups: a group's metadata with its members,
//! the settings and participant actions the group calls change, WhatsApp's per-member
//! answers, join requests and the outcome of joining by invite.

use serde::{Deserialize, Serialize};

/// One member of a group; at least one of `jid` (phone) and `lid` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupParticipant {
    pub jid: Option<String>,
    pub lid: Option<String>,
    /// `member`, `admin` or `superadmin`.
    pub role: String,
    pub tag: Option<String>,
}

/// A group's metadata as WhatsApp answers it (the account itself among the participants
/// when it is a member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub jid: String,
    pub subject: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    /// Epoch ms.
    pub created_at: Option<u64>,
    pub announce: bool,
    pub locked: bool,
    pub join_approval: bool,
    pub members_can_add: bool,
    pub size: u32,
    pub participants: Vec<GroupParticipant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupSetting {
    Announce,
    Locked,
    JoinApproval,
    MembersCanAdd,
}

impl GroupSetting {
    /// The field name in `groups.update` and the API.
    pub fn field(self) -> &'static str {
        match self {
            GroupSetting::Announce => "announce",
            GroupSetting::Locked => "locked",
            GroupSetting::JoinApproval => "joinApproval",
            GroupSetting::MembersCanAdd => "membersCanAdd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantAction {
    Add,
    Remove,
    Promote,
    Demote,
    Approve,
    Reject,
}

impl ParticipantAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantAction::Add => "add",
            ParticipantAction::Remove => "remove",
            ParticipantAction::Promote => "promote",
            ParticipantAction::Demote => "demote",
            ParticipantAction::Approve => "approve",
            ParticipantAction::Reject => "reject",
        }
    }
}

/// WhatsApp's answer for one participant of an update (200 done, 403 privacy, 404 not on
/// WhatsApp or not a member, 408 left recently, 409 already in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantResult {
    pub jid: String,
    pub code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub jid: String,
    pub lid: Option<String>,
    pub requested_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub group: String,
    pub pending_approval: bool,
}
