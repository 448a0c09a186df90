//! What the real engine re-reads for an admin backfill (API.md §8): the groups the account
//! is in, from WhatsApp, in the engine-neutral [`GroupInfo`] form, and the LID ↔ phone
//! mappings the device has learnt, as contacts. Chat settings and contact names come only
//! through WhatsApp's own app-state syncs, which the library does not let us re-run.

use super::live_error;
use super::store::RedbBackend;
use super::translate::{jid_string, person};
use crate::engines::{EngineError, GroupInfo, GroupParticipant};
use serde_json::{Value, json};
use whatsapp_rust::Client;
use whatsapp_rust::wacore::iq::groups::{MemberAddMode, ParticipantType};
use whatsapp_rust::wacore::store::traits::ProtocolStore;

/// Every LID ↔ phone mapping the session's device holds, as `contacts.upsert` entries.
pub(super) async fn known_contacts(backend: &RedbBackend) -> Result<Vec<Value>, EngineError> {
    let mappings = backend
        .get_all_lid_mappings()
        .await
        .map_err(|e| EngineError::Failed(format!("cannot read the LID mappings: {e}")))?;
    Ok(mappings
        .into_iter()
        .map(|m| {
            json!({
                "lid": format!("{}@lid", m.lid),
                "jid": format!("{}@s.whatsapp.net", m.phone_number),
                "phoneNumber": m.phone_number,
            })
        })
        .collect())
}

/// Every group the account is in, with members and roles.
pub(super) async fn joined_groups(client: &Client) -> Result<Vec<GroupInfo>, EngineError> {
    let groups = client
        .groups()
        .get_participating()
        .await
        .map_err(live_error)?;
    Ok(groups
        .values()
        .map(|g| {
            let participants: Vec<GroupParticipant> = g
                .participants
                .iter()
                .map(|p| {
                    let (lid, jid) = person(&p.jid, p.lid.as_ref().or(p.phone_number.as_ref()));
                    GroupParticipant {
                        jid: jid.or_else(|| p.phone_number.as_ref().map(jid_string)),
                        lid,
                        role: match p.participant_type {
                            ParticipantType::Admin => "admin",
                            ParticipantType::SuperAdmin => "superadmin",
                            ParticipantType::Member => "member",
                        }
                        .to_owned(),
                        tag: None,
                    }
                })
                .collect();
            GroupInfo {
                jid: jid_string(&g.id),
                subject: g.subject.clone(),
                description: g.description.clone(),
                owner: g.creator.as_ref().map(jid_string),
                created_at: g.creation_time.map(|s| s.saturating_mul(1000)),
                announce: g.is_announcement,
                locked: g.is_locked,
                join_approval: g.membership_approval,
                members_can_add: matches!(g.member_add_mode, Some(MemberAddMode::AllMemberAdd)),
                size: g.size.unwrap_or(participants.len() as u32),
                participants,
            }
        })
        .collect())
}
