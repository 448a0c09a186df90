//! The sandbox's groups: each session's own copy of the world's groups (metadata,
//! members, invite code, join requests, picture), kept in the engine's store so changes
//! survive restarts, and the group calls acting on it with WhatsApp's rules (admin-only
//! settings, members, requests and invites; subject, description and picture admin-only
//! when locked). The account's own changes are not echoed as events (WhatsApp does not
//! reliably echo them to the device that made them); another admin's changes, simulated
//! by [`SandboxEngine::change_group`], are published as WhatsApp would.

use super::*;
use crate::engines::{
    GroupInfo, GroupParticipant, GroupSetting, JoinRequest, Joined, ParticipantAction,
    ParticipantResult,
};
use serde::{Deserialize, Serialize};

const GROUP_PREFIX: &[u8] = b"group/";
const GROUPS_INIT_KEY: &[u8] = b"groups-init";
/// A group holds at most this many members, the creator included.
const MAX_MEMBERS: usize = 1024;

/// One group as this session's simulated WhatsApp knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SimGroup {
    pub(super) jid: String,
    subject: String,
    description: Option<String>,
    owner: Option<String>,
    created_at: Option<u64>,
    announce: bool,
    locked: bool,
    join_approval: bool,
    members_can_add: bool,
    invite: String,
    /// How many times the invite was reset (the next code derives from it).
    invite_resets: u32,
    picture: Option<String>,
    requests: Vec<JoinRequest>,
    participants: Vec<GroupParticipant>,
}

/// What another admin changes in a group (`POST /sandbox/sessions/{id}/group-change`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupChange {
    /// The group's JID.
    pub group: String,
    /// Who makes the change (a participant's LID or JID); default: the owner, else the
    /// first other admin.
    pub author: Option<String>,
    pub subject: Option<String>,
    /// `""` clears it.
    pub description: Option<String>,
    pub announce: Option<bool>,
    pub locked: Option<bool>,
    pub join_approval: Option<bool>,
    pub members_can_add: Option<bool>,
    /// People (world contacts, or the session's own account by its JID/LID) added.
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub promote: Vec<String>,
    #[serde(default)]
    pub demote: Vec<String>,
    /// Contacts asking to join (`group.join_request` created).
    #[serde(default)]
    pub request: Vec<String>,
    /// Contacts withdrawing their request (`group.join_request` cancelled).
    #[serde(default)]
    pub cancel_request: Vec<String>,
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

fn group_key(jid: &str) -> Vec<u8> {
    let mut k = GROUP_PREFIX.to_vec();
    k.extend_from_slice(jid.as_bytes());
    k
}

/// A 22-character invite code (letters and digits) derived from its parts.
fn derive_code(parts: &[&str]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(22)
        .map(|b| char::from(ALPHABET[*b as usize % ALPHABET.len()]))
        .collect()
}

fn is_admin(role: &str) -> bool {
    matches!(role, "admin" | "superadmin")
}

impl SimGroup {
    fn position(&self, who: &GroupParticipant) -> Option<usize> {
        self.participants.iter().position(|p| is_same(p, who))
    }

    fn role_of(&self, who: &GroupParticipant) -> Option<&str> {
        self.position(who)
            .map(|i| self.participants[i].role.as_str())
    }

    pub(super) fn info(&self) -> GroupInfo {
        GroupInfo {
            jid: self.jid.clone(),
            subject: self.subject.clone(),
            description: self.description.clone(),
            owner: self.owner.clone(),
            created_at: self.created_at,
            announce: self.announce,
            locked: self.locked,
            join_approval: self.join_approval,
            members_can_add: self.members_can_add,
            size: self.participants.len() as u32,
            participants: self.participants.clone(),
        }
    }

    /// The group in a `groups.upsert` payload, members included.
    pub(super) fn upsert_payload(&self) -> Value {
        json!({
            "jid": self.jid,
            "subject": self.subject,
            "description": self.description,
            "owner": self.owner,
            "createdAt": self.created_at,
            "announce": self.announce,
            "locked": self.locked,
            "joinApproval": self.join_approval,
            "membersCanAdd": self.members_can_add,
            "participants": self.participants,
        })
    }
}

fn participant_value(p: &GroupParticipant, with_role: bool) -> Value {
    let mut v = json!({"lid": p.lid, "jid": p.jid});
    if with_role {
        v["role"] = json!(p.role);
    }
    if let Some(t) = &p.tag {
        v["tag"] = json!(t);
    }
    v
}

impl SandboxEngine {
    /// The account as a group participant.
    fn me(&self, session: &str) -> Result<GroupParticipant, EngineError> {
        let a = self
            .account(session)?
            .ok_or_else(|| EngineError::NotConnected("session is not paired".into()))?;
        Ok(GroupParticipant {
            jid: Some(a.jid),
            lid: a.lid,
            role: "member".into(),
            tag: None,
        })
    }

    /// A person as a participant: a world contact (by phone JID or LID) or the account.
    fn person(&self, session: &str, jid: &Jid) -> Result<Option<GroupParticipant>, EngineError> {
        if let Some(c) = self.world.contact(jid) {
            return Ok(Some(GroupParticipant {
                jid: c.phone_jid(),
                lid: Some(c.lid.clone()),
                role: "member".into(),
                tag: None,
            }));
        }
        let me = self.me(session)?;
        let s = jid.to_non_device().to_string();
        Ok(
            (me.jid.as_deref() == Some(s.as_str()) || me.lid.as_deref() == Some(s.as_str()))
                .then_some(me),
        )
    }

    fn world_group(&self, session: &str, g: &world::WorldGroup, member: bool) -> SimGroup {
        let contact = |lid: &str| {
            Jid::parse(lid)
                .ok()
                .and_then(|j| self.world.contact(&j))
                .cloned()
        };
        let mut participants: Vec<GroupParticipant> = g
            .participants
            .iter()
            .map(|p| GroupParticipant {
                jid: contact(&p.lid).and_then(|c| c.phone_jid()),
                lid: Some(p.lid.clone()),
                role: p.role.clone(),
                tag: p.tag.clone(),
            })
            .collect();
        if member && let Ok(mut me) = self.me(session) {
            me.role = g.me.clone();
            participants.push(me);
        }
        let owner = g
            .owner
            .as_deref()
            .and_then(contact)
            .map(|c| c.phone_jid().unwrap_or(c.lid))
            .or_else(|| {
                participants
                    .iter()
                    .find(|p| p.role == "superadmin")
                    .and_then(|p| p.jid.clone().or_else(|| p.lid.clone()))
            });
        let requests = g
            .requests
            .iter()
            .filter_map(|lid| contact(lid))
            .map(|c| JoinRequest {
                jid: c.phone_jid().unwrap_or_else(|| c.lid.clone()),
                lid: Some(c.lid.clone()),
                requested_at: g.created_at,
            })
            .collect();
        SimGroup {
            jid: g.jid.clone(),
            subject: g.subject.clone(),
            description: g.description.clone(),
            owner,
            created_at: g.created_at,
            announce: g.announce,
            locked: g.locked,
            join_approval: g.join_approval,
            members_can_add: g.members_can_add,
            invite: g
                .invite_code
                .clone()
                .unwrap_or_else(|| derive_code(&["invite", session, &g.jid, "0"])),
            invite_resets: 0,
            picture: g.picture.as_ref().map(|p| p.id.clone()),
            requests,
            participants,
        }
    }

    /// Copies the world's groups into the session's store the first time it needs them
    /// (the account must be paired: it is a member of the world's `groups`).
    pub(super) fn ensure_groups(&self, session: &str) -> Result<(), EngineError> {
        let scope = Self::scope(session);
        if self
            .kv
            .get(&scope, GROUPS_INIT_KEY)
            .map_err(failed)?
            .is_some()
        {
            return Ok(());
        }
        self.me(session)?;
        let w = &self.world.world;
        let mut ops = vec![(GROUPS_INIT_KEY.to_vec(), Some(b"1".to_vec()))];
        for (g, member) in w
            .groups
            .iter()
            .map(|g| (g, true))
            .chain(w.other_groups.iter().map(|g| (g, false)))
        {
            let sim = self.world_group(session, g, member);
            ops.push((
                group_key(&sim.jid),
                Some(serde_json::to_vec(&sim).map_err(failed)?),
            ));
        }
        self.kv.write(&scope, &ops).map(|_| ()).map_err(failed)
    }

    /// Every group of the session's simulated WhatsApp, the ones it left included.
    pub(super) fn sim_groups(&self, session: &str) -> Result<Vec<SimGroup>, EngineError> {
        self.ensure_groups(session)?;
        let rows = self
            .kv
            .scan_all(&Self::scope(session), GROUP_PREFIX)
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// The groups the account is in, for the connect-time sync.
    pub(super) fn member_groups(&self, session: &str) -> Result<Vec<SimGroup>, EngineError> {
        let me = self.me(session)?;
        Ok(self
            .sim_groups(session)?
            .into_iter()
            .filter(|g| g.position(&me).is_some())
            .collect())
    }

    fn load_group(&self, session: &str, jid: &str) -> Result<Option<SimGroup>, EngineError> {
        self.ensure_groups(session)?;
        let raw = self
            .kv
            .get(&Self::scope(session), &group_key(jid))
            .map_err(failed)?;
        Ok(raw.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    async fn save_group(&self, session: &str, g: &SimGroup) -> Result<(), EngineError> {
        let value = serde_json::to_vec(g).map_err(failed)?;
        self.write(Self::scope(session), vec![(group_key(&g.jid), Some(value))])
            .await
    }

    /// A group the account is in, with the account's role; `NotFound` otherwise.
    fn my_group(&self, session: &str, group: &Jid) -> Result<(SimGroup, String), EngineError> {
        self.live(session)?;
        let me = self.me(session)?;
        let g = self
            .load_group(session, &group.to_string())?
            .ok_or_else(|| EngineError::NotFound(format!("group {group} not found")))?;
        let role = g
            .role_of(&me)
            .map(str::to_owned)
            .ok_or_else(|| EngineError::NotFound(format!("not a participant of {group}")))?;
        Ok((g, role))
    }

    fn require_admin(role: &str) -> Result<(), EngineError> {
        if is_admin(role) {
            Ok(())
        } else {
            Err(EngineError::Forbidden("not a group admin".into()))
        }
    }

    /// Editing the group's info: anyone unless locked.
    fn require_editor(g: &SimGroup, role: &str) -> Result<(), EngineError> {
        if g.locked {
            Self::require_admin(role)
        } else {
            Ok(())
        }
    }

    pub(super) async fn group_metadata(
        &self,
        session: &str,
        group: &Jid,
    ) -> Result<GroupInfo, EngineError> {
        Ok(self.my_group(session, group)?.0.info())
    }

    fn by_code(&self, session: &str, code: &str) -> Result<SimGroup, EngineError> {
        self.sim_groups(session)?
            .into_iter()
            .find(|g| g.invite == code)
            .ok_or_else(|| {
                EngineError::Invalid("the invite code is not valid or was revoked".into())
            })
    }

    pub(super) async fn invite_info(
        &self,
        session: &str,
        code: &str,
    ) -> Result<GroupInfo, EngineError> {
        self.live(session)?;
        let mut info = self.by_code(session, code)?.info();
        // WhatsApp shows a preview, not the member list.
        info.participants.clear();
        Ok(info)
    }

    pub(super) async fn create_group(
        &self,
        session: &str,
        subject: &str,
        participants: &[Jid],
    ) -> Result<GroupInfo, EngineError> {
        self.live(session)?;
        check_subject(subject)?;
        let mut me = self.me(session)?;
        me.role = "superadmin".into();
        let mut members = vec![me.clone()];
        for j in participants {
            if let Some(p) = self.person(session, j)?
                && !members.iter().any(|m| is_same(m, &p))
            {
                members.push(p);
            }
        }
        if members.len() > MAX_MEMBERS {
            return Err(EngineError::Invalid(format!(
                "a group holds at most {MAX_MEMBERS} members"
            )));
        }
        let now = now_ms();
        let n = self
            .wire_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let jid = format!("120363{}@g.us", digest_number(&["group", session, &n], 12));
        let g = SimGroup {
            jid: jid.clone(),
            subject: subject.to_owned(),
            description: None,
            owner: me.jid.clone(),
            created_at: Some(now),
            announce: false,
            locked: false,
            join_approval: false,
            members_can_add: false,
            invite: derive_code(&["invite", session, &jid, "0"]),
            invite_resets: 0,
            picture: None,
            requests: Vec::new(),
            participants: members,
        };
        self.save_group(session, &g).await?;
        Ok(g.info())
    }

    pub(super) async fn set_group_subject(
        &self,
        session: &str,
        group: &Jid,
        subject: &str,
    ) -> Result<(), EngineError> {
        let (mut g, role) = self.my_group(session, group)?;
        Self::require_editor(&g, &role)?;
        check_subject(subject)?;
        g.subject = subject.to_owned();
        self.save_group(session, &g).await
    }

    pub(super) async fn set_group_description(
        &self,
        session: &str,
        group: &Jid,
        description: Option<&str>,
    ) -> Result<(), EngineError> {
        let (mut g, role) = self.my_group(session, group)?;
        Self::require_editor(&g, &role)?;
        if description.is_some_and(|d| d.chars().count() > 2048) {
            return Err(EngineError::Invalid(
                "a description is at most 2048 characters".into(),
            ));
        }
        g.description = description.map(str::to_owned);
        self.save_group(session, &g).await
    }

    pub(super) async fn set_group_setting(
        &self,
        session: &str,
        group: &Jid,
        setting: GroupSetting,
        on: bool,
    ) -> Result<(), EngineError> {
        let (mut g, role) = self.my_group(session, group)?;
        Self::require_admin(&role)?;
        match setting {
            GroupSetting::Announce => g.announce = on,
            GroupSetting::Locked => g.locked = on,
            GroupSetting::JoinApproval => g.join_approval = on,
            GroupSetting::MembersCanAdd => g.members_can_add = on,
        }
        self.save_group(session, &g).await
    }

    pub(super) async fn update_group_participants(
        &self,
        session: &str,
        group: &Jid,
        action: ParticipantAction,
        jids: &[Jid],
    ) -> Result<Vec<ParticipantResult>, EngineError> {
        let (mut g, role) = self.my_group(session, group)?;
        match action {
            ParticipantAction::Add if g.members_can_add => {}
            _ => Self::require_admin(&role)?,
        }
        let mut results = Vec::with_capacity(jids.len());
        for j in jids {
            let code = match self.person(session, j)? {
                None => 404,
                Some(p) => apply_action(&mut g, action, p, &role),
            };
            results.push(ParticipantResult {
                jid: j.to_string(),
                code,
            });
        }
        self.save_group(session, &g).await?;
        Ok(results)
    }

    pub(super) async fn group_join_requests(
        &self,
        session: &str,
        group: &Jid,
    ) -> Result<Vec<JoinRequest>, EngineError> {
        let (g, role) = self.my_group(session, group)?;
        Self::require_admin(&role)?;
        Ok(g.requests)
    }

    pub(super) async fn group_invite_code(
        &self,
        session: &str,
        group: &Jid,
        reset: bool,
    ) -> Result<String, EngineError> {
        let (mut g, role) = self.my_group(session, group)?;
        Self::require_admin(&role)?;
        if reset {
            g.invite_resets += 1;
            g.invite = derive_code(&["invite", session, &g.jid, &g.invite_resets.to_string()]);
            self.save_group(session, &g).await?;
        }
        Ok(g.invite)
    }

    pub(super) async fn join_group(
        &self,
        session: &str,
        code: &str,
    ) -> Result<Joined, EngineError> {
        self.live(session)?;
        let mut g = self.by_code(session, code)?;
        let me = self.me(session)?;
        let joined = |pending| Joined {
            group: g.jid.clone(),
            pending_approval: pending,
        };
        if g.position(&me).is_some() {
            return Ok(joined(false));
        }
        if g.join_approval {
            let pending = joined(true);
            if !g.requests.iter().any(|r| Some(&r.jid) == me.jid.as_ref()) {
                g.requests.push(JoinRequest {
                    jid: me.jid.clone().unwrap_or_default(),
                    lid: me.lid.clone(),
                    requested_at: Some(now_ms()),
                });
                self.save_group(session, &g).await?;
            }
            return Ok(pending);
        }
        if g.participants.len() >= MAX_MEMBERS {
            return Err(EngineError::Forbidden("the group is full".into()));
        }
        let answer = joined(false);
        g.participants.push(me);
        self.save_group(session, &g).await?;
        Ok(answer)
    }

    pub(super) async fn leave_group(&self, session: &str, group: &Jid) -> Result<(), EngineError> {
        let (mut g, _) = self.my_group(session, group)?;
        let me = self.me(session)?;
        g.participants.retain(|p| !is_same(p, &me));
        self.save_group(session, &g).await
    }

    pub(super) async fn set_group_picture(
        &self,
        session: &str,
        group: &Jid,
        jpeg: Option<Vec<u8>>,
    ) -> Result<Option<String>, EngineError> {
        let (mut g, role) = self.my_group(session, group)?;
        Self::require_editor(&g, &role)?;
        g.picture = jpeg.map(|bytes| {
            let mut h = Sha256::new();
            h.update(&bytes);
            let n = u64::from_be_bytes(h.finalize()[..8].try_into().expect("8 bytes"));
            (now_ms() / 1000 + n % 1000).to_string()
        });
        self.save_group(session, &g).await?;
        Ok(g.picture)
    }

    /// A group's picture as `profile-picture` answers it; `NotFound` for a group the
    /// account is not in.
    pub(super) fn group_picture(
        &self,
        session: &str,
        group: &Jid,
    ) -> Result<Option<Picture>, EngineError> {
        let (g, _) = self.my_group(session, group)?;
        Ok(g.picture.map(|id| {
            let expires = now_ms() / 1000 + 3600;
            Picture {
                url: format!(
                    "https://pps.whatsapp.net/v/t61.24694-24/{}-{id}.jpg?oe={expires:x}",
                    group.user()
                ),
                kind: "image".into(),
                direct_path: format!("/v/t61.24694-24/{}-{id}", group.user()),
                id,
            }
        }))
    }

    /// Another admin (or the people concerned) changes a group the session knows; the
    /// change is published as WhatsApp's notifications would be.
    pub fn change_group(&self, session: &str, change: GroupChange) -> Result<Value, ControlError> {
        let group = change.group.as_str();
        let conflict = |e: EngineError| ControlError::Conflict(e.to_string());
        let invalid = ControlError::Invalid;
        if self.running_generation(session).is_none() {
            return Err(ControlError::Conflict("session is not running".into()));
        }
        let gid = gateway_sdk::jid::parse_group(group).map_err(|e| invalid(e.to_string()))?;
        let mut g = self
            .load_group(session, &gid.to_string())
            .map_err(conflict)?
            .ok_or_else(|| invalid(format!("the sandbox knows no group {gid}")))?;
        let me = self.me(session).map_err(conflict)?;
        let resolve = |raw: &str| -> Result<GroupParticipant, ControlError> {
            let j = gateway_sdk::jid::parse_person(raw).map_err(|e| invalid(e.to_string()))?;
            self.person(session, &j)
                .map_err(conflict)?
                .ok_or_else(|| invalid(format!("{raw} is not a contact of the sandbox world")))
        };
        let author = match change.author.as_deref() {
            Some(a) => resolve(a)?,
            None => g
                .participants
                .iter()
                .filter(|p| !is_same(p, &me) && is_admin(&p.role))
                .max_by_key(|p| p.role == "superadmin")
                .cloned()
                .ok_or_else(|| invalid("the group has no other admin to act".into()))?,
        };
        let author_jid = author.jid.clone().or(author.lid.clone());
        let mut events: Vec<(&str, Value)> = Vec::new();
        let mut update = serde_json::Map::new();
        if let Some(s) = &change.subject {
            check_subject(s).map_err(|e| invalid(e.to_string()))?;
            g.subject = s.clone();
            update.insert("subject".into(), json!(s));
        }
        if let Some(d) = &change.description {
            g.description = Some(d.clone()).filter(|d| !d.is_empty());
            update.insert("description".into(), json!(d));
        }
        for (value, field, slot) in [
            (change.announce, "announce", &mut g.announce),
            (change.locked, "locked", &mut g.locked),
            (change.join_approval, "joinApproval", &mut g.join_approval),
            (
                change.members_can_add,
                "membersCanAdd",
                &mut g.members_can_add,
            ),
        ] {
            if let Some(v) = value {
                *slot = v;
                update.insert(field.into(), json!(v));
            }
        }
        if !update.is_empty() {
            update.insert("group".into(), json!(g.jid));
            update.insert("author".into(), json!(author_jid));
            events.push(("groups.update", Value::Object(update)));
        }
        let mut joined_me = false;
        for (list, action) in [
            (&change.add, ParticipantAction::Add),
            (&change.remove, ParticipantAction::Remove),
            (&change.promote, ParticipantAction::Promote),
            (&change.demote, ParticipantAction::Demote),
        ] {
            let mut done = Vec::new();
            for raw in list {
                let p = resolve(raw)?;
                if apply_action(&mut g, action, p.clone(), "superadmin") == 200 {
                    if action == ParticipantAction::Add && is_same(&p, &me) {
                        joined_me = true;
                    }
                    let now = g
                        .position(&p)
                        .map(|i| g.participants[i].clone())
                        .unwrap_or(p);
                    done.push(participant_value(&now, action != ParticipantAction::Remove));
                }
            }
            if !done.is_empty() {
                events.push((
                    "group.participants",
                    json!({"group": g.jid, "action": action.as_str(), "participants": done, "author": author_jid}),
                ));
            }
        }
        for (list, created) in [(&change.request, true), (&change.cancel_request, false)] {
            for raw in list {
                let p = resolve(raw)?;
                let jid = p.jid.clone().or(p.lid.clone()).unwrap_or_default();
                let had = g.requests.iter().any(|r| r.jid == jid);
                if created && !had {
                    g.requests.push(JoinRequest {
                        jid: jid.clone(),
                        lid: p.lid.clone(),
                        requested_at: Some(now_ms()),
                    });
                } else if !created && had {
                    g.requests.retain(|r| r.jid != jid);
                } else {
                    continue;
                }
                events.push((
                    "group.join_request",
                    json!({"group": g.jid, "jid": jid, "lid": p.lid,
                           "action": if created { "created" } else { "cancelled" }}),
                ));
            }
        }
        if joined_me {
            events.push(("groups.upsert", json!({"groups": [g.upsert_payload()]})));
        }
        let scope = Self::scope(session);
        let value = serde_json::to_vec(&g).map_err(|e| conflict(failed(e)))?;
        self.kv
            .write(&scope, &[(group_key(&g.jid), Some(value))])
            .map_err(|e| conflict(failed(e)))?;
        let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
        let published = json!(names);
        for (name, payload) in events {
            self.domain(session, name, payload);
        }
        Ok(json!({"group": g.info(), "published": published}))
    }
}

fn is_same(a: &GroupParticipant, b: &GroupParticipant) -> bool {
    (a.lid.is_some() && a.lid == b.lid) || (a.jid.is_some() && a.jid == b.jid)
}

fn check_subject(subject: &str) -> Result<(), EngineError> {
    let n = subject.trim().chars().count();
    if n == 0 || subject.chars().count() > 100 {
        return Err(EngineError::Invalid("a subject is 1-100 characters".into()));
    }
    Ok(())
}

/// Applies one participant action as WhatsApp would, answering its per-person code.
/// `actor_role` is the role of whoever acts (only a superadmin touches a superadmin).
fn apply_action(
    g: &mut SimGroup,
    action: ParticipantAction,
    p: GroupParticipant,
    actor_role: &str,
) -> u16 {
    let at = g.position(&p);
    let request = g.requests.iter().position(|r| {
        p.jid.as_deref() == Some(r.jid.as_str()) || (r.lid.is_some() && r.lid == p.lid)
    });
    match action {
        ParticipantAction::Add => {
            if at.is_some() {
                return 409;
            }
            if g.participants.len() >= MAX_MEMBERS {
                return 403;
            }
            if let Some(r) = request {
                g.requests.remove(r);
            }
            g.participants.push(p);
            200
        }
        ParticipantAction::Remove => match at {
            None => 404,
            Some(i) if g.participants[i].role == "superadmin" && actor_role != "superadmin" => 403,
            Some(i) => {
                g.participants.remove(i);
                200
            }
        },
        ParticipantAction::Promote => match at {
            None => 404,
            Some(i) => {
                if g.participants[i].role == "member" {
                    g.participants[i].role = "admin".into();
                }
                200
            }
        },
        ParticipantAction::Demote => match at {
            None => 404,
            Some(i) if g.participants[i].role == "superadmin" && actor_role != "superadmin" => 403,
            Some(i) => {
                g.participants[i].role = "member".into();
                200
            }
        },
        ParticipantAction::Approve => match request {
            None if at.is_some() => 409,
            None => 404,
            Some(r) => {
                g.requests.remove(r);
                if g.participants.len() >= MAX_MEMBERS {
                    return 403;
                }
                g.participants.push(p);
                200
            }
        },
        ParticipantAction::Reject => match request {
            None => 404,
            Some(r) => {
                g.requests.remove(r);
                200
            }
        },
    }
}
