//! `wa:gateway/whatsapp-groups`: group administration through the request's session —
//! create, change, members, join requests, invites, join, leave and the picture. Every
//! call is bound to the call's session and the plugin's deadline; WhatsApp's refusals
//! arrive as the typed `whatsapp-error` (`forbidden` when the account is not an admin).

use super::InstanceState;
use super::convert::group_info;
use super::wa::gateway::whatsapp_groups::{
    GroupSetting, Host, JoinRequest, Joined, ParticipantAction, ParticipantResult,
};
use super::wa::gateway::whatsapp_types::{GroupInfo, WhatsappError};
use super::whatsapp::bounded;
use crate::engines;
use gateway_sdk::Jid;

/// The most participants one call may name (a group holds 1024, the creator included).
const MAX_PARTICIPANTS: usize = 1023;

/// A list of user JIDs (phone or LID), or `invalid` naming the first bad one.
fn people(raw: &[String]) -> Result<Vec<Jid>, WhatsappError> {
    if raw.len() > MAX_PARTICIPANTS {
        return Err(WhatsappError::Invalid(format!(
            "at most {MAX_PARTICIPANTS} participants per call"
        )));
    }
    raw.iter()
        .map(|j| {
            gateway_sdk::jid::parse_person(j)
                .map(|j| j.to_non_device())
                .map_err(|e| WhatsappError::Invalid(format!("{j}: {e}")))
        })
        .collect()
}

/// A bare invite code: letters and digits, as WhatsApp issues them.
fn invite_code(raw: &str) -> Result<&str, WhatsappError> {
    let code = raw.trim();
    if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WhatsappError::Invalid(
            "an invite code is letters and digits".into(),
        ));
    }
    Ok(code)
}

impl Host for InstanceState {
    async fn create(
        &mut self,
        subject: String,
        participants: Vec<String>,
    ) -> Result<GroupInfo, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let people = people(&participants)?;
        bounded(deadline, engine.create_group(&session, &subject, &people))
            .await
            .map(group_info)
    }

    async fn set_subject(&mut self, group: String, subject: String) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        bounded(
            deadline,
            engine.set_group_subject(&session, &group, &subject),
        )
        .await
    }

    async fn set_description(
        &mut self,
        group: String,
        description: Option<String>,
    ) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        let description = description.as_deref().filter(|d| !d.is_empty());
        bounded(
            deadline,
            engine.set_group_description(&session, &group, description),
        )
        .await
    }

    async fn set_setting(
        &mut self,
        group: String,
        setting: GroupSetting,
        on: bool,
    ) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        let setting = match setting {
            GroupSetting::Announce => engines::GroupSetting::Announce,
            GroupSetting::Locked => engines::GroupSetting::Locked,
            GroupSetting::JoinApproval => engines::GroupSetting::JoinApproval,
            GroupSetting::MembersCanAdd => engines::GroupSetting::MembersCanAdd,
        };
        bounded(
            deadline,
            engine.set_group_setting(&session, &group, setting, on),
        )
        .await
    }

    async fn update_participants(
        &mut self,
        group: String,
        action: ParticipantAction,
        jids: Vec<String>,
    ) -> Result<Vec<ParticipantResult>, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        let people = people(&jids)?;
        let action = match action {
            ParticipantAction::Add => engines::ParticipantAction::Add,
            ParticipantAction::Remove => engines::ParticipantAction::Remove,
            ParticipantAction::Promote => engines::ParticipantAction::Promote,
            ParticipantAction::Demote => engines::ParticipantAction::Demote,
            ParticipantAction::Approve => engines::ParticipantAction::Approve,
            ParticipantAction::Reject => engines::ParticipantAction::Reject,
        };
        let results = bounded(
            deadline,
            engine.update_group_participants(&session, &group, action, &people),
        )
        .await?;
        Ok(results
            .into_iter()
            .map(|r| ParticipantResult {
                jid: r.jid,
                code: r.code,
            })
            .collect())
    }

    async fn join_requests(&mut self, group: String) -> Result<Vec<JoinRequest>, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        let list = bounded(deadline, engine.group_join_requests(&session, &group)).await?;
        Ok(list
            .into_iter()
            .map(|r| JoinRequest {
                jid: r.jid,
                lid: r.lid,
                requested_at: r.requested_at,
            })
            .collect())
    }

    async fn invite_link(&mut self, group: String, reset: bool) -> Result<String, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        bounded(deadline, engine.group_invite_code(&session, &group, reset)).await
    }

    async fn join(&mut self, code: String) -> Result<Joined, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let code = invite_code(&code)?;
        let j = bounded(deadline, engine.join_group(&session, code)).await?;
        Ok(Joined {
            group: j.group,
            pending_approval: j.pending_approval,
        })
    }

    async fn leave(&mut self, group: String) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        bounded(deadline, engine.leave_group(&session, &group)).await
    }

    async fn set_picture(
        &mut self,
        group: String,
        jpeg: Option<Vec<u8>>,
    ) -> Result<Option<String>, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        if jpeg
            .as_ref()
            .is_some_and(|b| !b.starts_with(&[0xFF, 0xD8, 0xFF]))
        {
            return Err(WhatsappError::Invalid("the picture is not a JPEG".into()));
        }
        bounded(deadline, engine.set_group_picture(&session, &group, jpeg)).await
    }
}
