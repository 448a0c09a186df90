//! The group calls on WhatsApp through `whatsapp-rust`'s `w:g2` IQs (and
//! `w:profile:picture` for the group picture): metadata, create, subject, description,
//! settings, members with WhatsApp's per-participant codes, join requests, invites, join
//! and leave. WhatsApp's refusals become [`EngineError`]s as the sandbox answers them:
//! 403 forbidden (not an admin), 404 not found (no such group, or not in it), an unknown
//! or revoked invite code invalid.

use super::translate::{jid_string, person};
use super::{Inner, live_error, wa_jid};
use crate::engines::{
    EngineError, GroupInfo, GroupParticipant, GroupSetting, JoinRequest, Joined, ParticipantAction,
    ParticipantResult,
};
use gateway_sdk::Jid;
use whatsapp_rust::ErrorChainExt;
use whatsapp_rust::features::{
    GroupCreateOptions, GroupDescription, GroupError, GroupMetadata, GroupParticipantOptions,
    GroupSubject, JoinGroupResult, MemberAddMode, MembershipApprovalMode,
    ParticipantChangeResponse, ParticipantType, PreviousDescription,
};

/// WhatsApp answers a join by someone already in the group with `304 not-modified`.
const ALREADY_MEMBER: u16 = 304;
/// The prefix of the invite links WhatsApp hands out around the bare code.
const INVITE_LINK_PREFIX: &str = "https://chat.whatsapp.com/";

/// WhatsApp's refusal of a group IQ as the engine error the sandbox gives for it.
pub(super) fn refused(e: GroupError) -> EngineError {
    if let Some(r) = e.server_rejection() {
        let why = format!("WhatsApp refused the group call: {} {}", r.code, r.text);
        return match r.code {
            401 | 403 => EngineError::Forbidden(why),
            404 => EngineError::NotFound(why),
            // 409: the group changed under the request (a description replaced meanwhile);
            // 410: an invite code that was reset. The engine has no conflict answer.
            400 | 406 | 409 | 410 => EngineError::Invalid(why),
            429 => EngineError::RateLimited(why),
            501 => EngineError::Unsupported(why),
            _ => EngineError::Failed(why),
        };
    }
    match e {
        GroupError::InvalidRequest(m) => EngineError::Invalid(m),
        GroupError::DescriptionConflict => EngineError::Invalid(e.to_string()),
        other => live_error(other),
    }
}

/// The code WhatsApp answered for one rejection, if it answered one.
fn rejection_code(e: &GroupError) -> Option<u16> {
    e.server_rejection().map(|r| r.code)
}

/// A query about a group the account is not in (WhatsApp: 403) is "not found", as the
/// trait promises.
fn not_in_group(e: GroupError, group: &Jid) -> EngineError {
    match rejection_code(&e) {
        Some(403 | 404) => EngineError::NotFound(format!(
            "group {group} not found or the account is not in it"
        )),
        _ => refused(e),
    }
}

/// An invite code WhatsApp does not know (404), reset (410) or rejects (400, 406).
fn bad_invite(e: GroupError) -> EngineError {
    match rejection_code(&e) {
        Some(400 | 404 | 406 | 410) => {
            EngineError::Invalid("the invite code is not valid or was revoked".into())
        }
        _ => refused(e),
    }
}

fn role(t: ParticipantType) -> &'static str {
    match t {
        ParticipantType::Member => "member",
        ParticipantType::Admin => "admin",
        ParticipantType::SuperAdmin => "superadmin",
    }
}

/// One member as the engine reports it: phone JID and LID, whichever WhatsApp gave.
pub(super) fn participant(p: &whatsapp_rust::features::GroupParticipant) -> GroupParticipant {
    let (lid, jid) = person(&p.jid, p.lid.as_ref().or(p.phone_number.as_ref()));
    GroupParticipant {
        jid: jid.or_else(|| p.phone_number.as_ref().map(jid_string)),
        lid,
        role: role(p.participant_type).into(),
        tag: None,
    }
}

fn group_info(m: &GroupMetadata) -> GroupInfo {
    let participants: Vec<GroupParticipant> = m.participants.iter().map(participant).collect();
    GroupInfo {
        jid: jid_string(&m.id),
        subject: m.subject.clone(),
        description: m.description.clone(),
        owner: m.creator_pn.as_ref().or(m.creator.as_ref()).map(jid_string),
        created_at: m.creation_time.map(|t| t.saturating_mul(1000)),
        announce: m.is_announcement,
        locked: m.is_locked,
        join_approval: m.membership_approval,
        members_can_add: m.member_add_mode == Some(MemberAddMode::AllMemberAdd),
        size: m
            .size
            .unwrap_or_else(|| u32::try_from(participants.len()).unwrap_or(u32::MAX)),
        participants,
    }
}

/// A JID the gateway validated, as the library names it; groups only where one is due.
fn group_jid(group: &Jid) -> Result<whatsapp_rust::Jid, EngineError> {
    if !group.is_group() {
        return Err(EngineError::Invalid(format!("{group} is not a group")));
    }
    wa_jid(group)
}

/// WhatsApp's answers matched to the people asked about, in the order asked: by JID
/// (WhatsApp echoes the one asked, or answers a LID with its phone number), else by
/// position. Someone WhatsApp did not answer for is left out.
pub(super) fn per_participant(
    asked: &[Jid],
    answers: &[ParticipantChangeResponse],
) -> Vec<ParticipantResult> {
    asked
        .iter()
        .enumerate()
        .filter_map(|(i, j)| {
            let want = j.to_non_device().to_string();
            let answer = answers
                .iter()
                .find(|r| {
                    jid_string(&r.jid) == want
                        || r.phone_number
                            .as_ref()
                            .is_some_and(|p| jid_string(p) == want)
                })
                .or_else(|| answers.get(i).filter(|_| answers.len() == asked.len()))?;
            // An unreadable code is still a refusal.
            let code = answer
                .error
                .as_deref()
                .map_or(200, |c| c.trim().parse().unwrap_or(500));
            Some(ParticipantResult {
                jid: j.to_string(),
                code,
            })
        })
        .collect()
}

fn subject(raw: &str) -> Result<GroupSubject, EngineError> {
    if raw.trim().is_empty() {
        return Err(EngineError::Invalid("a subject is 1-100 characters".into()));
    }
    GroupSubject::new(raw).map_err(|e| EngineError::Invalid(e.to_string()))
}

pub(super) async fn group_metadata(
    inner: &Inner,
    session: &str,
    group: &Jid,
) -> Result<GroupInfo, EngineError> {
    let client = inner.client(session)?;
    let meta = client
        .groups()
        .get_metadata(&group_jid(group)?)
        .await
        .map_err(|e| not_in_group(e, group))?;
    Ok(group_info(&meta))
}

pub(super) async fn invite_info(
    inner: &Inner,
    session: &str,
    code: &str,
) -> Result<GroupInfo, EngineError> {
    let client = inner.client(session)?;
    let meta = client
        .groups()
        .get_invite_info(code)
        .await
        .map_err(bad_invite)?;
    let mut info = group_info(&meta);
    // A preview, as WhatsApp shows it before joining: no member list.
    info.participants.clear();
    Ok(info)
}

pub(super) async fn create_group(
    inner: &Inner,
    session: &str,
    name: &str,
    people: &[Jid],
) -> Result<GroupInfo, EngineError> {
    let client = inner.client(session)?;
    subject(name)?;
    // The account is the creator; naming it (or someone twice) adds nobody.
    let me: Vec<String> = [client.pn(), client.lid()]
        .into_iter()
        .flatten()
        .map(|j| jid_string(&j))
        .collect();
    let mut members: Vec<GroupParticipantOptions> = Vec::with_capacity(people.len());
    let mut seen: Vec<String> = Vec::with_capacity(people.len());
    for p in people {
        let s = p.to_non_device().to_string();
        if me.contains(&s) || seen.contains(&s) {
            continue;
        }
        seen.push(s);
        members.push(GroupParticipantOptions::new(wa_jid(&p.to_non_device())?));
    }
    let options: GroupCreateOptions = GroupCreateOptions::builder()
        .subject(name)
        .participants(members)
        .build();
    let created = client
        .groups()
        .create_group(options)
        .await
        .map_err(refused)?;
    Ok(group_info(&created.metadata))
}

pub(super) async fn set_group_subject(
    inner: &Inner,
    session: &str,
    group: &Jid,
    name: &str,
) -> Result<(), EngineError> {
    let client = inner.client(session)?;
    client
        .groups()
        .set_subject(group_jid(group)?, subject(name)?)
        .await
        .map_err(refused)
}

pub(super) async fn set_group_description(
    inner: &Inner,
    session: &str,
    group: &Jid,
    description: Option<&str>,
) -> Result<(), EngineError> {
    let client = inner.client(session)?;
    let gid = group_jid(group)?;
    let body = description
        .map(GroupDescription::new)
        .transpose()
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    let groups = client.groups();
    // The update names the description it replaces; one that changed between the read
    // and the write (another admin) is read again once.
    match groups
        .set_description(gid.clone(), body.clone(), PreviousDescription::Resolve)
        .await
    {
        Err(GroupError::DescriptionConflict) => groups
            .set_description(gid, body, PreviousDescription::Resolve)
            .await
            .map_err(refused),
        other => other.map_err(refused),
    }
}

pub(super) async fn set_group_setting(
    inner: &Inner,
    session: &str,
    group: &Jid,
    setting: GroupSetting,
    on: bool,
) -> Result<(), EngineError> {
    let client = inner.client(session)?;
    let gid = group_jid(group)?;
    let groups = client.groups();
    match setting {
        GroupSetting::Announce => groups.set_announce(gid, on).await,
        GroupSetting::Locked => groups.set_locked(gid, on).await,
        GroupSetting::JoinApproval => {
            let mode = if on {
                MembershipApprovalMode::On
            } else {
                MembershipApprovalMode::Off
            };
            groups.set_membership_approval(gid, mode).await
        }
        GroupSetting::MembersCanAdd => {
            let mode = if on {
                MemberAddMode::AllMemberAdd
            } else {
                MemberAddMode::AdminAdd
            };
            groups.set_member_add_mode(gid, mode).await
        }
    }
    .map_err(refused)
}

pub(super) async fn update_group_participants(
    inner: &Inner,
    session: &str,
    group: &Jid,
    action: ParticipantAction,
    people: &[Jid],
) -> Result<Vec<ParticipantResult>, EngineError> {
    let client = inner.client(session)?;
    let gid = group_jid(group)?;
    let targets = people
        .iter()
        .map(|p| wa_jid(&p.to_non_device()))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = client.groups();
    let answers = match action {
        ParticipantAction::Add => groups.add_participants(gid, &targets).await,
        ParticipantAction::Remove => groups.remove_participants(gid, &targets).await,
        ParticipantAction::Promote => groups.promote_participants(gid, &targets).await,
        ParticipantAction::Demote => groups.demote_participants(gid, &targets).await,
        ParticipantAction::Approve => groups.approve_membership_requests(gid, &targets).await,
        ParticipantAction::Reject => groups.reject_membership_requests(gid, &targets).await,
    }
    .map_err(refused)?;
    Ok(per_participant(people, &answers))
}

pub(super) async fn group_join_requests(
    inner: &Inner,
    session: &str,
    group: &Jid,
) -> Result<Vec<JoinRequest>, EngineError> {
    let client = inner.client(session)?;
    let requests = client
        .groups()
        .get_membership_requests(group_jid(group)?)
        .await
        .map_err(refused)?;
    // WhatsApp names each requester by one address; the other comes from the LID map.
    let mut other: Vec<Option<whatsapp_rust::Jid>> = Vec::with_capacity(requests.len());
    for r in &requests {
        other.push(match client.get_lid_pn_entry(&r.jid).await {
            Ok(Some(e)) if r.jid.is_lid() => Some(whatsapp_rust::Jid::pn(&*e.phone_number)),
            Ok(Some(e)) => Some(whatsapp_rust::Jid::lid(&*e.lid)),
            _ => None,
        });
    }
    // Phone numbers it does not map yet are asked about in one look-up; the list is
    // complete without it, so a failed look-up leaves their LIDs unknown.
    let unmapped: Vec<whatsapp_rust::Jid> = requests
        .iter()
        .zip(&other)
        .filter(|(r, o)| o.is_none() && r.jid.is_pn())
        .map(|(r, _)| r.jid.clone())
        .collect();
    if !unmapped.is_empty()
        && let Ok(found) = client.contacts().is_on_whatsapp(&unmapped).await
    {
        for f in found {
            let pn = if f.jid.is_lid() {
                f.pn_jid
            } else {
                Some(f.jid.clone())
            };
            let lid = f.lid.or_else(|| f.jid.is_lid().then(|| f.jid.clone()));
            let (Some(pn), Some(lid)) = (pn, lid) else {
                continue;
            };
            for (r, o) in requests.iter().zip(other.iter_mut()) {
                if o.is_none() && r.jid.user == pn.user {
                    *o = Some(lid.clone());
                }
            }
        }
    }
    Ok(requests
        .iter()
        .zip(&other)
        .map(|(r, o)| {
            let (lid, pn) = person(&r.jid, o.as_ref());
            JoinRequest {
                jid: pn
                    .or_else(|| lid.clone())
                    .unwrap_or_else(|| jid_string(&r.jid)),
                lid,
                requested_at: r.request_time.map(|t| t.saturating_mul(1000)),
            }
        })
        .collect())
}

pub(super) async fn group_invite_code(
    inner: &Inner,
    session: &str,
    group: &Jid,
    reset: bool,
) -> Result<String, EngineError> {
    let client = inner.client(session)?;
    let link = client
        .groups()
        .get_invite_link(group_jid(group)?, reset)
        .await
        .map_err(refused)?;
    Ok(link
        .strip_prefix(INVITE_LINK_PREFIX)
        .unwrap_or(&link)
        .to_owned())
}

pub(super) async fn join_group(
    inner: &Inner,
    session: &str,
    code: &str,
) -> Result<Joined, EngineError> {
    let client = inner.client(session)?;
    let groups = client.groups();
    match groups.join_with_invite_code(code).await {
        Ok(JoinGroupResult::Joined(g)) => Ok(Joined {
            group: jid_string(&g),
            pending_approval: false,
        }),
        Ok(JoinGroupResult::PendingApproval(g)) => Ok(Joined {
            group: jid_string(&g),
            pending_approval: true,
        }),
        // Already in: the same answer as joining, for the group the code opens.
        Err(e) if rejection_code(&e) == Some(ALREADY_MEMBER) => {
            let meta = groups.get_invite_info(code).await.map_err(bad_invite)?;
            Ok(Joined {
                group: jid_string(&meta.id),
                pending_approval: false,
            })
        }
        Err(e) => Err(bad_invite(e)),
    }
}

pub(super) async fn leave_group(
    inner: &Inner,
    session: &str,
    group: &Jid,
) -> Result<(), EngineError> {
    let client = inner.client(session)?;
    client
        .groups()
        .leave(group_jid(group)?)
        .await
        .map_err(|e| not_in_group(e, group))
}

pub(super) async fn set_group_picture(
    inner: &Inner,
    session: &str,
    group: &Jid,
    jpeg: Option<Vec<u8>>,
) -> Result<Option<String>, EngineError> {
    let client = inner.client(session)?;
    let gid = group_jid(group)?;
    let groups = client.groups();
    match jpeg.filter(|b| !b.is_empty()) {
        Some(bytes) => groups
            .set_profile_picture(gid, bytes)
            .await
            .map(|r| Some(r.id))
            .map_err(refused),
        None => groups
            .remove_profile_picture(gid)
            .await
            .map(|_| None)
            .map_err(refused),
    }
}
