//! WhatsApp's group rules as its server enforces them: who may change members, settings,
//! the subject and description, the picture, invite links and join requests, with the
//! per-participant result codes clients expect. A device's IQs run with the rules; a test
//! playing another admin runs the same changes unchecked. Every change yields the `w:gp2`
//! (or `picture`) notices the group's members hear, built here so both paths send the same.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, Server};

use crate::registry::{
    AddRequest, Group, GroupSetting, MembershipRequest, ParticipantRole, ProfilePicture, Registry,
    fresh_group_id, fresh_token,
};
use crate::server::now;

/// WhatsApp's limit on a subject's length (characters).
const SUBJECT_MAX: usize = 100;
/// WhatsApp's limit on a description's length (characters).
const DESCRIPTION_MAX: usize = 2048;
/// How long after leaving a member cannot be re-added directly (seconds).
const RECENTLY_LEFT: i64 = 24 * 60 * 60;
/// How long an invitation that replaced a direct add stays valid (seconds).
const ADD_REQUEST_VALIDITY: i64 = 3 * 24 * 60 * 60;

/// Per-participant result: the participant is already in the group.
pub(crate) const ALREADY_MEMBER: u16 = 409;
/// Per-participant result: privacy (or a block) forbids adding them; an invite instead.
pub(crate) const NOT_ALLOWED: u16 = 403;
/// Per-participant result: they left recently and must rejoin by invite.
pub(crate) const LEFT_RECENTLY: u16 = 408;
/// Per-participant result: no such user, or not in the group (or not a pending requester).
pub(crate) const NOT_THERE: u16 = 404;

/// Why the server refused a group request: the IQ error code and text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: u16,
    pub(crate) text: &'static str,
}

impl Refusal {
    pub(crate) const BAD_REQUEST: Self = Self {
        code: 400,
        text: "bad-request",
    };
    pub(crate) const NOT_AUTHORIZED: Self = Self {
        code: 403,
        text: "not-authorized",
    };
    pub(crate) const NOT_FOUND: Self = Self {
        code: 404,
        text: "item-not-found",
    };
    pub(crate) const CONFLICT: Self = Self {
        code: 409,
        text: "conflict",
    };
    pub(crate) const GONE: Self = Self {
        code: 410,
        text: "gone",
    };
    pub(crate) const ALREADY_MEMBER: Self = Self {
        code: 304,
        text: "not-modified",
    };
    /// A request WhatsApp knows but the stand-in does not simulate (communities, batch
    /// reads, the rarer group properties).
    pub(crate) const NOT_IMPLEMENTED: Self = Self {
        code: 501,
        text: "feature-not-implemented",
    };
}

/// Whether the group rules apply: a device's request, or a test acting as another user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rules {
    Enforced,
    Waived,
}

/// A change to a group's membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupChange {
    /// Members were added.
    Add,
    /// Members were removed.
    Remove,
    /// Members became admins.
    Promote,
    /// Admins became plain members.
    Demote,
}

impl GroupChange {
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Promote => "promote",
            Self::Demote => "demote",
        }
    }

    pub(crate) fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "add" => Some(Self::Add),
            "remove" => Some(Self::Remove),
            "promote" => Some(Self::Promote),
            "demote" => Some(Self::Demote),
            _ => None,
        }
    }
}

/// Who hears about a change, resolved against the group after it was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Every member, plus these users (e.g. the ones just removed).
    Members(Vec<String>),
    /// Every admin, plus these users (e.g. the requester's other devices).
    Admins(Vec<String>),
    /// Only these users.
    Users(Vec<String>),
}

/// A notification a group change produces: `<notification from=group type participant>`.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    pub(crate) group: String,
    /// `w:gp2`, or `picture` for the group picture.
    pub(crate) kind: &'static str,
    /// Who made the change (phone number), if anyone did.
    pub(crate) author: Option<String>,
    pub(crate) children: Vec<Node>,
    pub(crate) audience: Audience,
}

impl Notice {
    fn gp2(group: &str, author: Option<&str>, children: Vec<Node>, audience: Audience) -> Self {
        Self {
            group: group.to_owned(),
            kind: "w:gp2",
            author: author.map(str::to_owned),
            children,
            audience,
        }
    }

    /// The phone numbers it is for, given the group as it is now.
    pub(crate) fn recipients(&self, registry: &Registry) -> Vec<String> {
        let group = registry.groups.get(&self.group);
        let mut pns = match &self.audience {
            Audience::Members(also) => group
                .map(Group::member_pns)
                .unwrap_or_default()
                .into_iter()
                .chain(also.iter().cloned())
                .collect(),
            Audience::Admins(also) => group
                .map(Group::admin_pns)
                .unwrap_or_default()
                .into_iter()
                .chain(also.iter().cloned())
                .collect(),
            Audience::Users(users) => users.clone(),
        };
        let mut seen = std::collections::HashSet::new();
        pns.retain(|pn| seen.insert(pn.clone()));
        pns
    }
}

/// What happened to one participant of a request, as the reply names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParticipantResult {
    /// The JID as the request named it.
    pub(crate) jid: Jid,
    pub(crate) pn: Option<String>,
    /// `None` = done (200); otherwise the per-participant error code.
    pub(crate) error: Option<u16>,
    /// For a 403 add: the invitation (code, expiration) the admin can send instead.
    pub(crate) add_request: Option<(String, i64)>,
}

impl ParticipantResult {
    fn ok(jid: &Jid, pn: &str) -> Self {
        Self {
            jid: jid.clone(),
            pn: Some(pn.to_owned()),
            error: None,
            add_request: None,
        }
    }

    fn failed(jid: &Jid, pn: Option<&str>, code: u16) -> Self {
        Self {
            jid: jid.clone(),
            pn: pn.map(str::to_owned),
            error: Some(code),
            add_request: None,
        }
    }

    /// `<participant jid [phone_number] [error]>[<add_request>]` in a reply.
    pub(crate) fn node(&self) -> Node {
        let mut builder = NodeBuilder::new("participant").attr("jid", self.jid.clone());
        if self.jid.server == Server::Lid
            && let Some(pn) = &self.pn
        {
            builder = builder.attr("phone_number", Jid::pn(pn.as_str()));
        }
        if let Some(code) = self.error {
            builder = builder.attr("error", code.to_string());
        }
        if let Some((code, expiration)) = &self.add_request {
            builder = builder.children([NodeBuilder::new("add_request")
                .attr("code", code.clone())
                .attr("expiration", expiration.to_string())
                .build()]);
        }
        builder.build()
    }
}

/// How a join by invite ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Joined {
    Member(String),
    PendingApproval(String),
}

/// What a device asks for when it creates a group.
#[derive(Clone, Debug, Default)]
pub(crate) struct CreateRequest {
    pub(crate) subject: String,
    pub(crate) participants: Vec<Jid>,
    pub(crate) description: Option<String>,
    pub(crate) settings: crate::registry::GroupSettings,
}

/// `<participant jid lid display_name [type]>` as group notifications describe a member.
pub(crate) fn participant_node(
    registry: &Registry,
    pn: &str,
    role: Option<ParticipantRole>,
) -> Node {
    let mut builder = NodeBuilder::new("participant").attr("jid", Jid::pn(pn));
    if let Some(user) = registry.user(pn) {
        builder = builder.attr("lid", user.lid_jid());
        if !user.push_name.is_empty() {
            builder = builder.attr("display_name", user.push_name.clone());
        }
    }
    match role {
        Some(ParticipantRole::Admin) => builder.attr("type", "admin"),
        Some(ParticipantRole::SuperAdmin) => builder.attr("type", "superadmin"),
        _ => builder,
    }
    .build()
}

/// `<group>` as the server describes it (phone-number addressing, LIDs alongside).
pub(crate) fn group_node(registry: &Registry, group: &Group) -> Node {
    let mut children: Vec<Node> = group
        .participants
        .iter()
        .map(|(pn, role)| {
            let mut participant = NodeBuilder::new("participant").attr("jid", Jid::pn(pn.as_str()));
            if let Some(user) = registry.user(pn) {
                participant = participant.attr("lid", user.lid_jid());
            }
            match role {
                ParticipantRole::Member => participant,
                ParticipantRole::Admin => participant.attr("type", "admin"),
                ParticipantRole::SuperAdmin => participant.attr("type", "superadmin"),
            }
            .build()
        })
        .collect();
    let settings = &group.settings;
    if settings.locked {
        children.push(NodeBuilder::new("locked").build());
    }
    if settings.announcement {
        children.push(NodeBuilder::new("announcement").build());
    }
    if settings.ephemeral_expiration > 0 {
        children.push(
            NodeBuilder::new("ephemeral")
                .attr("expiration", settings.ephemeral_expiration.to_string())
                .build(),
        );
    }
    children.push(approval_node(settings.membership_approval));
    children.push(
        NodeBuilder::new("member_add_mode")
            .string_content(settings.member_add_mode.wire())
            .build(),
    );
    children.push(
        NodeBuilder::new("member_link_mode")
            .string_content(if settings.members_share_link {
                "all_member_link"
            } else {
                "admin_link"
            })
            .build(),
    );
    if let Some(description) = &group.description {
        let mut node = NodeBuilder::new("description")
            .attr("id", group.description_id.clone().unwrap_or_default())
            .attr("t", group.description_time.to_string());
        if let Some(owner) = &group.description_owner {
            node = node.attr("participant", Jid::pn(owner.as_str()));
        }
        children.push(
            node.children([NodeBuilder::new("body")
                .string_content(description.as_str())
                .build()])
                .build(),
        );
    }
    let mut builder = NodeBuilder::new("group")
        .attr("id", group.id.clone())
        .attr("subject", group.subject.clone())
        .attr("s_t", group.subject_time.to_string())
        .attr("creator", Jid::pn(group.creator.as_str()))
        .attr("creation", group.created_at.to_string())
        .attr("addressing_mode", "pn")
        .attr("size", group.participants.len().to_string());
    if let Some(owner) = &group.subject_owner {
        builder = builder.attr("s_o", Jid::pn(owner.as_str()));
    }
    builder.children(children).build()
}

fn approval_node(on: bool) -> Node {
    NodeBuilder::new("membership_approval_mode")
        .children([NodeBuilder::new("group_join")
            .attr("state", if on { "on" } else { "off" })
            .build()])
        .build()
}

/// The phone number a request's participant JID names (PN, LID, or a LID with
/// `phone_number`).
pub(crate) fn resolve(registry: &Registry, jid: &Jid) -> Option<String> {
    registry.resolve_pn(&jid.to_non_ad())
}

fn group<'r>(registry: &'r Registry, id: &str) -> Result<&'r Group, Refusal> {
    registry.groups.get(id).ok_or(Refusal::NOT_FOUND)
}

fn group_mut<'r>(registry: &'r mut Registry, id: &str) -> Result<&'r mut Group, Refusal> {
    registry.groups.get_mut(id).ok_or(Refusal::NOT_FOUND)
}

/// Under the rules the actor must be a member (404 otherwise), and an admin when `admin`.
fn check(group: &Group, actor: &str, rules: Rules, admin: bool) -> Result<(), Refusal> {
    if rules == Rules::Waived {
        return Ok(());
    }
    if !group.is_member(actor) {
        return Err(Refusal::NOT_FOUND);
    }
    if admin && !group.is_admin(actor) {
        return Err(Refusal::NOT_AUTHORIZED);
    }
    Ok(())
}

/// Why `actor` may not add `pn` directly, if it may not: the code and whether an
/// invitation replaces the add.
fn add_refusal(registry: &Registry, group: &Group, actor: &str, pn: &str) -> Option<u16> {
    if group.is_member(pn) {
        return Some(ALREADY_MEMBER);
    }
    if group
        .left
        .get(pn)
        .is_some_and(|left| now() - left < RECENTLY_LEFT)
    {
        return Some(LEFT_RECENTLY);
    }
    let target = registry.user(pn)?;
    match registry.user(actor) {
        Some(actor) if !target.accepts_group_add_from(actor) => Some(NOT_ALLOWED),
        _ => None,
    }
}

/// A device creates a group with itself as super admin. Participants privacy forbids
/// adding are left out (they get an `<add_request>` invitation in the results).
pub(crate) fn create(
    registry: &mut Registry,
    creator: &str,
    request: CreateRequest,
) -> Result<(String, Vec<ParticipantResult>, Vec<Notice>), Refusal> {
    let subject = request.subject.trim();
    if subject.is_empty() || subject.chars().count() > SUBJECT_MAX {
        return Err(Refusal::BAD_REQUEST);
    }
    if request
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > DESCRIPTION_MAX)
    {
        return Err(Refusal::BAD_REQUEST);
    }
    let id = fresh_group_id();
    let mut group = Group::new(
        id.clone(),
        subject,
        creator,
        now(),
        vec![(creator.to_owned(), ParticipantRole::SuperAdmin)],
        request.description.as_deref(),
    );
    group.settings = request.settings;
    let mut results = Vec::new();
    for jid in &request.participants {
        let Some(pn) = resolve(registry, jid) else {
            results.push(ParticipantResult::failed(jid, None, NOT_THERE));
            continue;
        };
        if pn == creator || group.is_member(&pn) {
            continue;
        }
        match add_refusal(registry, &group, creator, &pn) {
            Some(NOT_ALLOWED) => {
                let invitation = invite_instead(&mut group, &pn);
                let mut result = ParticipantResult::failed(jid, Some(&pn), NOT_ALLOWED);
                result.add_request = Some(invitation);
                results.push(result);
            }
            Some(code) => results.push(ParticipantResult::failed(jid, Some(&pn), code)),
            None => {
                group
                    .participants
                    .push((pn.clone(), ParticipantRole::Member));
                results.push(ParticipantResult::ok(jid, &pn));
            }
        }
    }
    let created = NodeBuilder::new("create")
        .children([group_node(registry, &group)])
        .build();
    registry.groups.insert(id.clone(), group);
    let notice = Notice::gp2(
        &id,
        Some(creator),
        vec![created],
        Audience::Members(Vec::new()),
    );
    Ok((id, results, vec![notice]))
}

/// An invitation replacing a direct add that privacy refused.
fn invite_instead(group: &mut Group, pn: &str) -> (String, i64) {
    let code = fresh_token(24);
    let expiration = now() + ADD_REQUEST_VALIDITY;
    group.add_requests.retain(|r| r.phone != pn);
    group.add_requests.push(AddRequest {
        phone: pn.to_owned(),
        code: code.clone(),
        expiration,
    });
    (code, expiration)
}

/// Add, remove, promote or demote participants. Under the rules only admins may (adding
/// too, unless every member may add); each participant gets its own result code.
pub(crate) fn change_participants(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    change: GroupChange,
    targets: &[Jid],
    rules: Rules,
) -> Result<(Vec<ParticipantResult>, Vec<Notice>), Refusal> {
    let current = group(registry, group_id)?;
    let admin_only = change != GroupChange::Add
        || current.settings.member_add_mode == crate::registry::MemberAddMode::AdminAdd;
    check(current, actor, rules, admin_only)?;
    let mut results = Vec::new();
    let mut changed = Vec::new();
    for jid in targets {
        let pn = match resolve(registry, jid) {
            Some(pn) => pn,
            // A test may name users the server never saw.
            None if rules == Rules::Waived && jid.server == Server::Pn => jid.user.to_string(),
            None => {
                results.push(ParticipantResult::failed(jid, None, NOT_THERE));
                continue;
            }
        };
        let refusal = match change {
            GroupChange::Add if rules == Rules::Enforced => {
                add_refusal(registry, group(registry, group_id)?, actor, &pn)
            }
            GroupChange::Add => group(registry, group_id)?
                .is_member(&pn)
                .then_some(ALREADY_MEMBER),
            _ => (!group(registry, group_id)?.is_member(&pn)).then_some(NOT_THERE),
        };
        let group = group_mut(registry, group_id)?;
        match refusal {
            Some(NOT_ALLOWED) => {
                let invitation = invite_instead(group, &pn);
                let mut result = ParticipantResult::failed(jid, Some(&pn), NOT_ALLOWED);
                result.add_request = Some(invitation);
                results.push(result);
                continue;
            }
            Some(code) => {
                results.push(ParticipantResult::failed(jid, Some(&pn), code));
                continue;
            }
            None => {}
        }
        match change {
            GroupChange::Add => {
                group
                    .participants
                    .push((pn.clone(), ParticipantRole::Member));
                group.left.remove(&pn);
                group.pending_requests.retain(|r| r.phone != pn);
            }
            GroupChange::Remove => group.participants.retain(|(p, _)| *p != pn),
            GroupChange::Promote | GroupChange::Demote => {
                for (p, role) in group.participants.iter_mut() {
                    if *p == pn && *role != ParticipantRole::SuperAdmin {
                        *role = if change == GroupChange::Promote {
                            ParticipantRole::Admin
                        } else {
                            ParticipantRole::Member
                        };
                    }
                }
            }
        }
        results.push(ParticipantResult::ok(jid, &pn));
        changed.push(pn);
    }
    let mut notices = Vec::new();
    if !changed.is_empty() {
        let removed = if change == GroupChange::Remove {
            changed.clone()
        } else {
            Vec::new()
        };
        notices.push(Notice::gp2(
            group_id,
            Some(actor),
            vec![participants_change(registry, change.tag(), None, &changed)],
            Audience::Members(removed),
        ));
    }
    Ok((results, notices))
}

/// `<add|remove|promote|demote [reason]><participant …/>…</…>`.
fn participants_change(
    registry: &Registry,
    tag: &str,
    reason: Option<&str>,
    pns: &[String],
) -> Node {
    let mut builder = NodeBuilder::new_dynamic(tag.to_owned());
    if let Some(reason) = reason {
        builder = builder.attr("reason", reason.to_owned());
    }
    builder
        .children(pns.iter().map(|pn| participant_node(registry, pn, None)))
        .build()
}

/// Rename the group; admins only while the group info is locked.
pub(crate) fn set_subject(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    subject: &str,
    rules: Rules,
) -> Result<Vec<Notice>, Refusal> {
    let current = group(registry, group_id)?;
    check(current, actor, rules, current.settings.locked)?;
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > SUBJECT_MAX {
        return Err(Refusal::BAD_REQUEST);
    }
    let t = now();
    let group = group_mut(registry, group_id)?;
    group.subject = subject.to_owned();
    group.subject_owner = Some(actor.to_owned());
    group.subject_time = t;
    Ok(vec![Notice::gp2(
        group_id,
        Some(actor),
        vec![
            NodeBuilder::new("subject")
                .attr("subject", subject.to_owned())
                .attr("s_o", Jid::pn(actor))
                .attr("s_t", t.to_string())
                .build(),
        ],
        Audience::Members(Vec::new()),
    )])
}

/// Set (`Some`) or delete (`None`) the description; admins only while locked. Under the
/// rules a replacement must name the current description as `prev` (409 otherwise).
pub(crate) fn set_description(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    description: Option<&str>,
    id: Option<&str>,
    prev: Option<&str>,
    rules: Rules,
) -> Result<Vec<Notice>, Refusal> {
    let current = group(registry, group_id)?;
    check(current, actor, rules, current.settings.locked)?;
    if rules == Rules::Enforced
        && current.description_id.is_some()
        && current.description_id.as_deref() != prev
    {
        return Err(Refusal::CONFLICT);
    }
    if description.is_some_and(|d| d.chars().count() > DESCRIPTION_MAX) {
        return Err(Refusal::BAD_REQUEST);
    }
    let id = id
        .map(str::to_owned)
        .unwrap_or_else(|| fresh_token(8).to_uppercase());
    let t = now();
    let group = group_mut(registry, group_id)?;
    let body = match description {
        Some(text) => {
            group.description = Some(text.to_owned());
            group.description_id = Some(id.clone());
            group.description_owner = Some(actor.to_owned());
            group.description_time = t;
            NodeBuilder::new("body").string_content(text).build()
        }
        None => {
            group.description = None;
            group.description_id = None;
            group.description_owner = None;
            group.description_time = 0;
            NodeBuilder::new("delete").build()
        }
    };
    Ok(vec![Notice::gp2(
        group_id,
        Some(actor),
        vec![
            NodeBuilder::new("description")
                .attr("id", id)
                .attr("t", t.to_string())
                .children([body])
                .build(),
        ],
        Audience::Members(Vec::new()),
    )])
}

/// Change one setting; admins only (the disappearing timer: any member while unlocked).
pub(crate) fn set_setting(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    setting: GroupSetting,
    rules: Rules,
) -> Result<Vec<Notice>, Refusal> {
    let current = group(registry, group_id)?;
    let admin = !matches!(setting, GroupSetting::Ephemeral(_)) || current.settings.locked;
    check(current, actor, rules, admin)?;
    let settings = &mut group_mut(registry, group_id)?.settings;
    let child = match setting {
        GroupSetting::Announcement(on) => {
            settings.announcement = on;
            NodeBuilder::new(if on {
                "announcement"
            } else {
                "not_announcement"
            })
            .build()
        }
        GroupSetting::Locked(on) => {
            settings.locked = on;
            NodeBuilder::new(if on { "locked" } else { "unlocked" }).build()
        }
        GroupSetting::MembershipApproval(on) => {
            settings.membership_approval = on;
            approval_node(on)
        }
        GroupSetting::MemberAddMode(mode) => {
            settings.member_add_mode = mode;
            NodeBuilder::new("member_add_mode")
                .string_content(mode.wire())
                .build()
        }
        GroupSetting::Ephemeral(0) => {
            settings.ephemeral_expiration = 0;
            NodeBuilder::new("not_ephemeral").build()
        }
        GroupSetting::Ephemeral(seconds) => {
            settings.ephemeral_expiration = seconds;
            NodeBuilder::new("ephemeral")
                .attr("expiration", seconds.to_string())
                .build()
        }
    };
    Ok(vec![Notice::gp2(
        group_id,
        Some(actor),
        vec![child],
        Audience::Members(Vec::new()),
    )])
}

/// The invite code (`reset` = revoke it and hand out a new one). Admins only, unless
/// members may share the link and this is only a read.
pub(crate) fn invite_code(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    reset: bool,
    rules: Rules,
) -> Result<(String, Vec<Notice>), Refusal> {
    let current = group(registry, group_id)?;
    let admin = reset || !current.settings.members_share_link;
    check(current, actor, rules, admin)?;
    let group = group_mut(registry, group_id)?;
    if !reset {
        return Ok((group.invite_code.clone(), Vec::new()));
    }
    let old = std::mem::replace(&mut group.invite_code, fresh_token(22));
    group.revoked_invite_codes.push(old);
    let code = group.invite_code.clone();
    let notice = Notice::gp2(
        group_id,
        Some(actor),
        vec![
            NodeBuilder::new("invite")
                .attr("code", code.clone())
                .build(),
        ],
        Audience::Admins(Vec::new()),
    );
    Ok((code, vec![notice]))
}

/// The group an invite code opens (410 once an admin reset it).
pub(crate) fn group_by_invite(registry: &Registry, code: &str) -> Result<String, Refusal> {
    if let Some(group) = registry.groups.values().find(|g| g.invite_code == code) {
        return Ok(group.id.clone());
    }
    if registry
        .groups
        .values()
        .any(|g| g.revoked_invite_codes.iter().any(|c| c == code))
    {
        return Err(Refusal::GONE);
    }
    Err(Refusal::NOT_FOUND)
}

/// `joiner` opens an invite link: a member at once, or a pending request the admins hear
/// about when the group wants approval.
pub(crate) fn join_by_invite(
    registry: &mut Registry,
    code: &str,
    joiner: &str,
) -> Result<(Joined, Vec<Notice>), Refusal> {
    let group_id = group_by_invite(registry, code)?;
    let current = group(registry, &group_id)?;
    if current.is_member(joiner) {
        return Err(Refusal::ALREADY_MEMBER);
    }
    if current.settings.membership_approval {
        let group = group_mut(registry, &group_id)?;
        if !group.pending_requests.iter().any(|r| r.phone == joiner) {
            group.pending_requests.push(MembershipRequest {
                phone: joiner.to_owned(),
                requested_at: now(),
            });
        }
        return Ok((
            Joined::PendingApproval(group_id.clone()),
            request_notices(registry, &group_id, joiner),
        ));
    }
    admit(registry, &group_id, joiner)?;
    let notice = Notice::gp2(
        &group_id,
        Some(joiner),
        vec![participants_change(
            registry,
            "add",
            Some("invite"),
            &[joiner.to_owned()],
        )],
        Audience::Members(Vec::new()),
    );
    Ok((Joined::Member(group_id), vec![notice]))
}

/// The admins hear of a new join request; the requester's other devices of the request.
fn request_notices(registry: &Registry, group_id: &str, requester: &str) -> Vec<Notice> {
    let mut requested = NodeBuilder::new("requested_user").attr("jid", Jid::pn(requester));
    if let Some(user) = registry.user(requester) {
        requested = requested.attr("lid", user.lid_jid());
    }
    vec![
        Notice::gp2(
            group_id,
            Some(requester),
            vec![
                NodeBuilder::new("created_membership_requests")
                    .attr("request_method", "invite_link")
                    .children([requested.build()])
                    .build(),
            ],
            Audience::Admins(Vec::new()),
        ),
        Notice::gp2(
            group_id,
            Some(requester),
            vec![
                NodeBuilder::new("membership_approval_request")
                    .attr("request_method", "invite_link")
                    .build(),
            ],
            Audience::Users(vec![requester.to_owned()]),
        ),
    ]
}

fn admit(registry: &mut Registry, group_id: &str, pn: &str) -> Result<(), Refusal> {
    let group = group_mut(registry, group_id)?;
    if !group.is_member(pn) {
        group
            .participants
            .push((pn.to_owned(), ParticipantRole::Member));
    }
    group.left.remove(pn);
    group.pending_requests.retain(|r| r.phone != pn);
    group.add_requests.retain(|r| r.phone != pn);
    Ok(())
}

/// `joiner` accepts an invitation an admin sent instead of a direct add (`<accept>`).
pub(crate) fn accept_invitation(
    registry: &mut Registry,
    group_id: &str,
    code: &str,
    joiner: &str,
) -> Result<Vec<Notice>, Refusal> {
    let current = group(registry, group_id)?;
    if current.is_member(joiner) {
        return Err(Refusal::ALREADY_MEMBER);
    }
    let valid = current
        .add_requests
        .iter()
        .any(|r| r.phone == joiner && r.code == code && r.expiration > now());
    if !valid {
        return Err(Refusal::GONE);
    }
    admit(registry, group_id, joiner)?;
    Ok(vec![Notice::gp2(
        group_id,
        Some(joiner),
        vec![participants_change(
            registry,
            "add",
            Some("invite"),
            &[joiner.to_owned()],
        )],
        Audience::Members(Vec::new()),
    )])
}

/// A member leaves. They cannot be re-added directly for a while.
pub(crate) fn leave(
    registry: &mut Registry,
    group_id: &str,
    leaver: &str,
) -> Result<Vec<Notice>, Refusal> {
    let group = group_mut(registry, group_id)?;
    if !group.is_member(leaver) {
        return Err(Refusal::NOT_FOUND);
    }
    group.participants.retain(|(p, _)| p != leaver);
    group.left.insert(leaver.to_owned(), now());
    Ok(vec![Notice::gp2(
        group_id,
        Some(leaver),
        vec![participants_change(
            registry,
            "remove",
            None,
            &[leaver.to_owned()],
        )],
        Audience::Members(vec![leaver.to_owned()]),
    )])
}

/// The pending join requests; admins only.
pub(crate) fn membership_requests(
    registry: &Registry,
    group_id: &str,
    actor: &str,
) -> Result<Vec<MembershipRequest>, Refusal> {
    let group = group(registry, group_id)?;
    check(group, actor, Rules::Enforced, true)?;
    Ok(group.pending_requests.clone())
}

/// An admin approves (the requesters join) or rejects pending requests.
pub(crate) fn answer_requests(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    approve: bool,
    targets: &[Jid],
    rules: Rules,
) -> Result<(Vec<ParticipantResult>, Vec<Notice>), Refusal> {
    check(group(registry, group_id)?, actor, rules, true)?;
    let mut results = Vec::new();
    let mut answered = Vec::new();
    for jid in targets {
        let pending = resolve(registry, jid).filter(|pn| {
            registry
                .groups
                .get(group_id)
                .is_some_and(|g| g.pending_requests.iter().any(|r| r.phone == *pn))
        });
        let Some(pn) = pending else {
            results.push(ParticipantResult::failed(jid, None, NOT_THERE));
            continue;
        };
        if approve {
            admit(registry, group_id, &pn)?;
        } else {
            group_mut(registry, group_id)?
                .pending_requests
                .retain(|r| r.phone != pn);
        }
        results.push(ParticipantResult::ok(jid, &pn));
        answered.push(pn);
    }
    let mut notices = Vec::new();
    if !answered.is_empty() {
        notices.push(if approve {
            Notice::gp2(
                group_id,
                Some(actor),
                vec![participants_change(registry, "add", None, &answered)],
                Audience::Members(Vec::new()),
            )
        } else {
            revoked_requests(group_id, Some(actor), &answered)
        });
    }
    Ok((results, notices))
}

/// `<revoked_membership_requests>`: requests that were rejected or withdrawn.
fn revoked_requests(group_id: &str, author: Option<&str>, pns: &[String]) -> Notice {
    Notice::gp2(
        group_id,
        author,
        vec![
            NodeBuilder::new("revoked_membership_requests")
                .children(pns.iter().map(|pn| {
                    NodeBuilder::new("participant")
                        .attr("jid", Jid::pn(pn.as_str()))
                        .build()
                }))
                .build(),
        ],
        Audience::Admins(pns.to_vec()),
    )
}

/// A requester withdraws their own pending request.
pub(crate) fn cancel_request(
    registry: &mut Registry,
    group_id: &str,
    requester: &str,
    targets: &[Jid],
) -> Result<(Vec<ParticipantResult>, Vec<Notice>), Refusal> {
    let mut results = Vec::new();
    let mut cancelled = false;
    for jid in targets {
        let own = resolve(registry, jid).as_deref() == Some(requester);
        let group = group_mut(registry, group_id)?;
        let was_pending = group.pending_requests.iter().any(|r| r.phone == requester);
        if own && was_pending {
            group.pending_requests.retain(|r| r.phone != requester);
            cancelled = true;
            results.push(ParticipantResult::ok(jid, requester));
        } else {
            results.push(ParticipantResult::failed(jid, None, NOT_THERE));
        }
    }
    let notices = if cancelled {
        vec![revoked_requests(
            group_id,
            Some(requester),
            &[requester.to_owned()],
        )]
    } else {
        Vec::new()
    };
    Ok((results, notices))
}

/// Set (`Some`) or remove the group picture; admins only while the group info is locked.
pub(crate) fn set_picture(
    registry: &mut Registry,
    group_id: &str,
    actor: &str,
    picture: Option<ProfilePicture>,
    rules: Rules,
) -> Result<Vec<Notice>, Refusal> {
    let current = group(registry, group_id)?;
    check(current, actor, rules, current.settings.locked)?;
    let group_jid = current.jid();
    let child = match &picture {
        Some(picture) => NodeBuilder::new("set")
            .attr("jid", group_jid)
            .attr("id", picture.id.clone())
            .attr("author", Jid::pn(actor)),
        None => NodeBuilder::new("delete")
            .attr("jid", group_jid)
            .attr("author", Jid::pn(actor)),
    }
    .build();
    group_mut(registry, group_id)?.picture = picture;
    Ok(vec![Notice {
        group: group_id.to_owned(),
        kind: "picture",
        author: Some(actor.to_owned()),
        children: vec![child],
        audience: Audience::Members(Vec::new()),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore::iq::groups::{GroupInfoOutcome, GroupQueryIq};
    use wacore::iq::spec::IqSpec as _;
    use wacore::stanza::groups::{GroupNotification, GroupNotificationAction};

    const ALICE: &str = "15550007001";
    const BOB: &str = "15550007002";
    const CAROL: &str = "15550007003";
    const DAVE: &str = "15550007004";

    fn world() -> (Registry, String) {
        let mut registry = Registry::default();
        for (pn, name) in [
            (ALICE, "Alice"),
            (BOB, "Bob"),
            (CAROL, "Carol"),
            (DAVE, "Dave"),
        ] {
            registry.upsert_user(pn, None, name);
        }
        let (id, results, _) = create(
            &mut registry,
            ALICE,
            CreateRequest {
                subject: "Team".to_owned(),
                participants: vec![Jid::pn(BOB), Jid::pn(CAROL)],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(results.iter().all(|r| r.error.is_none()));
        (registry, id)
    }

    fn notification(notice: &Notice) -> GroupNotification {
        let node = NodeBuilder::new("notification")
            .attr("from", Jid::group(notice.group.as_str()))
            .attr("type", notice.kind)
            .attr("participant", Jid::pn(notice.author.as_deref().unwrap()))
            .children(notice.children.clone())
            .build();
        GroupNotification::try_from_node_ref(&node.as_node_ref()).unwrap()
    }

    #[test]
    fn members_may_not_change_what_admins_own() {
        let (mut registry, id) = world();
        let bob_adds = change_participants(
            &mut registry,
            &id,
            BOB,
            GroupChange::Promote,
            &[Jid::pn(CAROL)],
            Rules::Enforced,
        );
        assert_eq!(bob_adds.unwrap_err(), Refusal::NOT_AUTHORIZED);
        assert_eq!(
            set_setting(
                &mut registry,
                &id,
                DAVE,
                GroupSetting::Locked(true),
                Rules::Enforced
            )
            .unwrap_err(),
            Refusal::NOT_FOUND
        );
        set_setting(
            &mut registry,
            &id,
            ALICE,
            GroupSetting::Locked(true),
            Rules::Enforced,
        )
        .unwrap();
        assert_eq!(
            set_subject(&mut registry, &id, BOB, "Renamed", Rules::Enforced).unwrap_err(),
            Refusal::NOT_AUTHORIZED
        );
        assert_eq!(
            invite_code(&mut registry, &id, BOB, false, Rules::Enforced).unwrap_err(),
            Refusal::NOT_AUTHORIZED
        );
        set_subject(&mut registry, &id, ALICE, "Renamed", Rules::Enforced).unwrap();
        assert_eq!(registry.groups[&id].subject, "Renamed");
    }

    #[test]
    fn adds_report_a_code_per_participant() {
        let (mut registry, id) = world();
        registry.user_mut(DAVE).unwrap().group_add_privacy =
            crate::registry::GroupAddPrivacy::MyContacts;
        leave(&mut registry, &id, CAROL).unwrap();
        let (results, notices) = change_participants(
            &mut registry,
            &id,
            ALICE,
            GroupChange::Add,
            &[
                Jid::pn(BOB),
                Jid::pn(CAROL),
                Jid::pn(DAVE),
                Jid::pn("15559999999"),
            ],
            Rules::Enforced,
        )
        .unwrap();
        let codes: Vec<Option<u16>> = results.iter().map(|r| r.error).collect();
        assert_eq!(
            codes,
            vec![
                Some(ALREADY_MEMBER),
                Some(LEFT_RECENTLY),
                Some(NOT_ALLOWED),
                Some(NOT_THERE)
            ]
        );
        assert!(results[2].add_request.is_some());
        assert!(notices.is_empty());
        // The reply parses with the client's own spec.
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([NodeBuilder::new("add")
                .children(results.iter().map(ParticipantResult::node))
                .build()])
            .build();
        let parsed = wacore::iq::groups::AddParticipantsIq::new(&Jid::group(id.as_str()), &[])
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(parsed[2].error.as_deref(), Some("403"));
        assert!(parsed[2].add_request.is_some());
        // Dave saves Alice: now she may add him.
        registry.user_mut(DAVE).unwrap().address_book.insert(
            ALICE.to_owned(),
            crate::registry::SavedContact {
                phone: ALICE.to_owned(),
                full_name: "Alice".to_owned(),
                first_name: None,
            },
        );
        let (results, notices) = change_participants(
            &mut registry,
            &id,
            ALICE,
            GroupChange::Add,
            &[Jid::pn(DAVE)],
            Rules::Enforced,
        )
        .unwrap();
        assert_eq!(results[0].error, None);
        let parsed = notification(&notices[0]);
        let GroupNotificationAction::Add { participants, .. } = &parsed.actions[0] else {
            panic!("expected add");
        };
        assert_eq!(participants[0].jid, Jid::pn(DAVE));
        assert_eq!(participants[0].display_name.as_deref(), Some("Dave"));
    }

    #[test]
    fn invites_join_directly_or_wait_for_approval() {
        let (mut registry, id) = world();
        let code = registry.groups[&id].invite_code.clone();
        set_setting(
            &mut registry,
            &id,
            ALICE,
            GroupSetting::MembershipApproval(true),
            Rules::Enforced,
        )
        .unwrap();
        let (joined, notices) = join_by_invite(&mut registry, &code, DAVE).unwrap();
        assert_eq!(joined, Joined::PendingApproval(id.clone()));
        assert_eq!(notices[0].recipients(&registry), vec![ALICE.to_owned()]);
        let parsed = notification(&notices[0]);
        assert!(matches!(
            &parsed.actions[0],
            GroupNotificationAction::CreatedMembershipRequests { requests, .. }
                if requests[0].jid == Jid::pn(DAVE)
        ));
        assert_eq!(
            membership_requests(&registry, &id, ALICE).unwrap()[0].phone,
            DAVE
        );
        let (results, _) = answer_requests(
            &mut registry,
            &id,
            ALICE,
            true,
            &[Jid::pn(DAVE)],
            Rules::Enforced,
        )
        .unwrap();
        assert_eq!(results[0].error, None);
        assert!(registry.groups[&id].is_member(DAVE));
        let (new_code, _) = invite_code(&mut registry, &id, ALICE, true, Rules::Enforced).unwrap();
        assert_ne!(new_code, code);
        assert_eq!(
            group_by_invite(&registry, &code).unwrap_err(),
            Refusal::GONE
        );
    }

    #[test]
    fn descriptions_must_name_the_one_they_replace() {
        let (mut registry, id) = world();
        set_description(
            &mut registry,
            &id,
            BOB,
            Some("First"),
            Some("AAAA0001"),
            None,
            Rules::Enforced,
        )
        .unwrap();
        assert_eq!(
            set_description(
                &mut registry,
                &id,
                BOB,
                Some("Second"),
                None,
                None,
                Rules::Enforced
            )
            .unwrap_err(),
            Refusal::CONFLICT
        );
        let notices = set_description(
            &mut registry,
            &id,
            BOB,
            None,
            Some("AAAA0002"),
            Some("AAAA0001"),
            Rules::Enforced,
        )
        .unwrap();
        assert!(matches!(
            &notification(&notices[0]).actions[0],
            GroupNotificationAction::Description {
                description: None,
                ..
            }
        ));
        let group = &registry.groups[&id];
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([group_node(&registry, group)])
            .build();
        let GroupInfoOutcome::Full(info) = GroupQueryIq::new(&group.jid())
            .parse_response(&reply.as_node_ref())
            .unwrap()
        else {
            panic!("expected full metadata");
        };
        assert_eq!(info.description, None);
        assert_eq!(info.participants.len(), 3);
        assert_eq!(
            info.member_add_mode,
            Some(wacore::iq::groups::MemberAddMode::AllMemberAdd)
        );
    }
}
