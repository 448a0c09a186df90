//! `whatsapp-groups` (and the group look-ups of `whatsapp-read`) against fake groups that
//! follow WhatsApp's rules: admin-only settings, members, requests and invites; subject,
//! description and picture admin-only when locked; a group the account is not in is
//! not found. The account is the session's paired number; the fake connection of
//! [`super::whatsapp`] applies (dropped: `not-connected`).

use super::current_call;
use crate::guest::bindings::wa::gateway::whatsapp_groups::{
    GroupSetting, JoinRequest, Joined, ParticipantAction, ParticipantResult,
};
use crate::guest::bindings::wa::gateway::whatsapp_read::Identity;
use crate::guest::bindings::wa::gateway::whatsapp_types::{
    GroupInfo, GroupParticipant, WhatsappError,
};
use crate::jid::{parse_group, parse_person};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A group the fake WhatsApp knows, with its invite code, requests and picture.
#[derive(Debug, Clone)]
pub struct FakeGroup {
    pub info: GroupInfo,
    pub invite: String,
    pub requests: Vec<JoinRequest>,
    pub picture: Option<String>,
}

#[derive(Default)]
struct Groups {
    groups: BTreeMap<String, FakeGroup>,
    next: u64,
}

thread_local! {
    static GROUPS: RefCell<Groups> = RefCell::new(Groups::default());
}

pub(crate) fn reset() {
    GROUPS.with_borrow_mut(|g| *g = Groups::default());
}

/// The handle tests set groups up (and read them back) with.
#[derive(Debug, Clone, Copy)]
pub struct GroupsWorld;

impl GroupsWorld {
    /// Adds (or replaces) a group; put the account among `info.participants` (see
    /// [`GroupsWorld::me`]) to make it a member.
    pub fn add(&self, info: GroupInfo, invite: &str) {
        GROUPS.with_borrow_mut(|g| {
            g.groups.insert(
                info.jid.clone(),
                FakeGroup {
                    info,
                    invite: invite.to_owned(),
                    requests: Vec::new(),
                    picture: None,
                },
            )
        });
    }

    pub fn get(&self, jid: &str) -> Option<FakeGroup> {
        GROUPS.with_borrow(|g| g.groups.get(jid).cloned())
    }

    /// Someone asks to join.
    pub fn add_request(&self, group: &str, request: JoinRequest) {
        GROUPS.with_borrow_mut(|g| {
            if let Some(f) = g.groups.get_mut(group) {
                f.requests.push(request);
            }
        });
    }

    /// The account of `session` as a participant with `role`.
    pub fn me(&self, session: &str, role: &str) -> GroupParticipant {
        let s = super::sessions::SessionWorld.get(session);
        GroupParticipant {
            jid: s.as_ref().and_then(|s| s.wa_jid.clone()),
            lid: s.and_then(|s| s.wa_lid),
            role: role.to_owned(),
            tag: None,
        }
    }
}

/// The account of the call's session.
pub(crate) fn self_identity() -> Result<Option<Identity>, WhatsappError> {
    let session = current_call()
        .and_then(|c| c.session)
        .ok_or_else(|| WhatsappError::Failed("live calls need a session route".into()))?;
    Ok(super::sessions::SessionWorld.get(&session).and_then(|s| {
        Some(Identity {
            jid: s.wa_jid?,
            lid: s.wa_lid,
            push_name: s.push_name,
        })
    }))
}

fn me() -> Result<GroupParticipant, WhatsappError> {
    let id = self_identity()?.ok_or_else(|| WhatsappError::NotConnected("not paired".into()))?;
    Ok(GroupParticipant {
        jid: Some(id.jid),
        lid: id.lid,
        role: "member".into(),
        tag: None,
    })
}

fn same(a: &GroupParticipant, b: &GroupParticipant) -> bool {
    (a.lid.is_some() && a.lid == b.lid) || (a.jid.is_some() && a.jid == b.jid)
}

fn person(raw: &str) -> Result<GroupParticipant, WhatsappError> {
    let j = parse_person(raw).map_err(|e| WhatsappError::Invalid(e.to_string()))?;
    let s = j.to_non_device().to_string();
    let (jid, lid) = if j.is_lid() {
        (None, Some(s))
    } else {
        (Some(s), None)
    };
    Ok(GroupParticipant {
        jid,
        lid,
        role: "member".into(),
        tag: None,
    })
}

/// Runs `f` on a group the account is in, with its role there.
fn with_group<T>(
    group: &str,
    f: impl FnOnce(&mut FakeGroup, &str) -> Result<T, WhatsappError>,
) -> Result<T, WhatsappError> {
    super::whatsapp::blocklist()?;
    let gid = parse_group(group)
        .map_err(|e| WhatsappError::Invalid(e.to_string()))?
        .to_string();
    let me = me()?;
    GROUPS.with_borrow_mut(|g| {
        let fake = g
            .groups
            .get_mut(&gid)
            .ok_or_else(|| WhatsappError::NotFound(format!("group {gid} not found")))?;
        let role = fake
            .info
            .participants
            .iter()
            .find(|p| same(p, &me))
            .map(|p| p.role.clone())
            .ok_or_else(|| WhatsappError::NotFound(format!("not a participant of {gid}")))?;
        f(fake, &role)
    })
}

fn admin(role: &str) -> Result<(), WhatsappError> {
    if matches!(role, "admin" | "superadmin") {
        Ok(())
    } else {
        Err(WhatsappError::Forbidden("not a group admin".into()))
    }
}

fn editor(g: &FakeGroup, role: &str) -> Result<(), WhatsappError> {
    if g.info.locked { admin(role) } else { Ok(()) }
}

pub(crate) fn group_metadata(group: &str) -> Result<GroupInfo, WhatsappError> {
    with_group(group, |g, _| Ok(g.info.clone()))
}

pub(crate) fn invite_info(code: &str) -> Result<GroupInfo, WhatsappError> {
    super::whatsapp::blocklist()?;
    GROUPS.with_borrow(|g| {
        g.groups
            .values()
            .find(|f| f.invite == code)
            .map(|f| GroupInfo {
                participants: Vec::new(),
                ..f.info.clone()
            })
            .ok_or_else(|| WhatsappError::Invalid("unknown invite code".into()))
    })
}

pub(crate) fn create(subject: &str, participants: &[String]) -> Result<GroupInfo, WhatsappError> {
    super::whatsapp::blocklist()?;
    if subject.is_empty() || subject.chars().count() > 100 {
        return Err(WhatsappError::Invalid(
            "a subject is 1-100 characters".into(),
        ));
    }
    let mut owner = me()?;
    owner.role = "superadmin".into();
    let mut members = vec![owner.clone()];
    for p in participants {
        let p = person(p)?;
        if !members.iter().any(|m| same(m, &p)) {
            members.push(p);
        }
    }
    GROUPS.with_borrow_mut(|g| {
        g.next += 1;
        let jid = format!("1203630000{:08}@g.us", g.next);
        let info = GroupInfo {
            jid: jid.clone(),
            subject: subject.to_owned(),
            description: None,
            owner: owner.jid,
            created_at: Some(1_719_662_400_000),
            announce: false,
            locked: false,
            join_approval: false,
            members_can_add: false,
            size: members.len() as u32,
            participants: members,
        };
        g.groups.insert(
            jid.clone(),
            FakeGroup {
                info: info.clone(),
                invite: format!("INVITE{}", g.next),
                requests: Vec::new(),
                picture: None,
            },
        );
        Ok(info)
    })
}

pub(crate) fn set_subject(group: &str, subject: &str) -> Result<(), WhatsappError> {
    with_group(group, |g, role| {
        editor(g, role)?;
        if subject.is_empty() || subject.chars().count() > 100 {
            return Err(WhatsappError::Invalid(
                "a subject is 1-100 characters".into(),
            ));
        }
        g.info.subject = subject.to_owned();
        Ok(())
    })
}

pub(crate) fn set_description(group: &str, description: Option<&str>) -> Result<(), WhatsappError> {
    with_group(group, |g, role| {
        editor(g, role)?;
        g.info.description = description.filter(|d| !d.is_empty()).map(str::to_owned);
        Ok(())
    })
}

pub(crate) fn set_setting(
    group: &str,
    setting: GroupSetting,
    on: bool,
) -> Result<(), WhatsappError> {
    with_group(group, |g, role| {
        admin(role)?;
        match setting {
            GroupSetting::Announce => g.info.announce = on,
            GroupSetting::Locked => g.info.locked = on,
            GroupSetting::JoinApproval => g.info.join_approval = on,
            GroupSetting::MembersCanAdd => g.info.members_can_add = on,
        }
        Ok(())
    })
}

pub(crate) fn update_participants(
    group: &str,
    action: ParticipantAction,
    jids: &[String],
) -> Result<Vec<ParticipantResult>, WhatsappError> {
    with_group(group, |g, role| {
        if !(matches!(action, ParticipantAction::Add) && g.info.members_can_add) {
            admin(role)?;
        }
        let mut out = Vec::new();
        for raw in jids {
            let p = person(raw)?;
            let at = g.info.participants.iter().position(|m| same(m, &p));
            let req = g.requests.iter().position(|r| {
                Some(&r.jid) == p.jid.as_ref() || (r.lid.is_some() && r.lid == p.lid)
            });
            let code = match (action, at, req) {
                (ParticipantAction::Add, Some(_), _) => 409,
                (ParticipantAction::Add, None, _) => {
                    g.info.participants.push(p);
                    200
                }
                (
                    ParticipantAction::Remove
                    | ParticipantAction::Promote
                    | ParticipantAction::Demote,
                    None,
                    _,
                ) => 404,
                (ParticipantAction::Remove, Some(i), _) => {
                    g.info.participants.remove(i);
                    200
                }
                (ParticipantAction::Promote, Some(i), _) => {
                    if g.info.participants[i].role == "member" {
                        g.info.participants[i].role = "admin".into();
                    }
                    200
                }
                (ParticipantAction::Demote, Some(i), _) => {
                    g.info.participants[i].role = "member".into();
                    200
                }
                (ParticipantAction::Approve | ParticipantAction::Reject, _, None) => 404,
                (ParticipantAction::Approve, _, Some(r)) => {
                    g.requests.remove(r);
                    g.info.participants.push(p);
                    200
                }
                (ParticipantAction::Reject, _, Some(r)) => {
                    g.requests.remove(r);
                    200
                }
            };
            out.push(ParticipantResult {
                jid: raw.clone(),
                code,
            });
        }
        g.info.size = g.info.participants.len() as u32;
        Ok(out)
    })
}

pub(crate) fn join_requests(group: &str) -> Result<Vec<JoinRequest>, WhatsappError> {
    with_group(group, |g, role| {
        admin(role)?;
        Ok(g.requests.clone())
    })
}

pub(crate) fn invite_link(group: &str, reset: bool) -> Result<String, WhatsappError> {
    with_group(group, |g, role| {
        admin(role)?;
        if reset {
            g.invite = format!("{}R", g.invite);
        }
        Ok(g.invite.clone())
    })
}

pub(crate) fn join(code: &str) -> Result<Joined, WhatsappError> {
    super::whatsapp::blocklist()?;
    let me = me()?;
    GROUPS.with_borrow_mut(|g| {
        let f = g
            .groups
            .values_mut()
            .find(|f| f.invite == code)
            .ok_or_else(|| WhatsappError::Invalid("unknown invite code".into()))?;
        let group = f.info.jid.clone();
        if f.info.participants.iter().any(|p| same(p, &me)) {
            return Ok(Joined {
                group,
                pending_approval: false,
            });
        }
        if f.info.join_approval {
            f.requests.push(JoinRequest {
                jid: me.jid.clone().unwrap_or_default(),
                lid: me.lid.clone(),
                requested_at: None,
            });
            return Ok(Joined {
                group,
                pending_approval: true,
            });
        }
        f.info.participants.push(me);
        f.info.size = f.info.participants.len() as u32;
        Ok(Joined {
            group,
            pending_approval: false,
        })
    })
}

pub(crate) fn leave(group: &str) -> Result<(), WhatsappError> {
    let me = me()?;
    with_group(group, |g, _| {
        g.info.participants.retain(|p| !same(p, &me));
        g.info.size = g.info.participants.len() as u32;
        Ok(())
    })
}

pub(crate) fn set_picture(
    group: &str,
    jpeg: Option<&[u8]>,
) -> Result<Option<String>, WhatsappError> {
    with_group(group, |g, role| {
        editor(g, role)?;
        g.picture = jpeg.map(|b| format!("pic{}", b.len()));
        Ok(g.picture.clone())
    })
}
