//! `xmlns="w:g2"`: everything a device does with groups. Reads: group metadata (`<query>`
//! to a group), the groups an account participates in (`<participating>`), invite codes,
//! group info by invite code and pending join requests. Writes: create, add / remove /
//! promote / demote, subject, description, settings, invite reset, join by code or by
//! invitation, leave, and answering join requests. The rules live in [`crate::groups`];
//! this module reads requests, answers them, and sends the resulting notices.

use std::sync::Arc;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, Server};

use crate::connection::Session;
use crate::groups::{self, CreateRequest, GroupChange, Joined, Notice, Refusal, Rules};
use crate::notifications;
use crate::registry::{DeviceAddress, GroupSetting, GroupSettings, MemberAddMode, Registry};
use crate::server::Shared;
use crate::stanza::{self, attr, children, jid_attr};

pub(super) fn handle(shared: &Arc<Shared>, session: &Session, node: &Node) -> Node {
    let Some(address) = session.device().cloned() else {
        return stanza::iq_error(node, 401, "not-authorized");
    };
    let kind = attr(node, "type").unwrap_or_default();
    let target = jid_attr(node, "to").filter(|j| j.server == Server::Group && !j.user.is_empty());
    let Some(request) = children(node).first() else {
        return stanza::iq_error(node, 400, "bad-request");
    };
    let answer = match (kind.as_str(), request.tag.as_ref(), target) {
        ("get", "participating", _) => Ok(participating(shared, &address)),
        ("get", "query", Some(group)) => query(shared, &address, &group),
        ("get", "invite", Some(group)) => invite_code(shared, &address, &group, false),
        ("set", "invite", Some(group)) => invite_code(shared, &address, &group, true),
        ("get", "invite", None) => invite_info(shared, request),
        ("set", "invite", None) => join(shared, &address, request),
        ("set", "create", None) => create(shared, &address, request),
        ("set", "leave", None) => leave(shared, &address, request),
        ("set", "accept", Some(group)) => accept(shared, &address, &group, request),
        ("get", "membership_approval_requests", Some(group)) => {
            membership_requests(shared, &address, &group)
        }
        ("set", "membership_requests_action", Some(group)) => {
            answer_requests(shared, &address, &group, request)
        }
        ("set", "cancel_membership_requests", Some(group)) => {
            cancel_request(shared, &address, &group, request)
        }
        ("set", "ack", Some(_)) => Ok(Vec::new()),
        ("set", tag, Some(group)) => match GroupChange::from_tag(tag) {
            Some(change) => change_participants(shared, &address, &group, change, request),
            None => set_property(shared, &address, &group, request),
        },
        _ => Err(Refusal::NOT_IMPLEMENTED),
    };
    match answer {
        Ok(children) => stanza::iq_result(node, children),
        Err(refusal) => stanza::iq_error(node, refusal.code, refusal.text),
    }
}

/// Apply a change under the rules and send its notices to everyone but the asking device.
fn apply<T>(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    change: impl FnOnce(&mut Registry) -> Result<(T, Vec<Notice>), Refusal>,
) -> Result<T, Refusal> {
    shared.update(|registry| {
        let (result, notices) = change(registry)?;
        for notice in &notices {
            notifications::deliver_group_notice(shared, registry, notice, Some(address));
        }
        Ok(result)
    })
}

fn participating(shared: &Arc<Shared>, address: &DeviceAddress) -> Vec<Node> {
    let registry = shared.registry();
    let groups = registry
        .groups
        .values()
        .filter(|g| g.is_member(&address.pn))
        .map(|g| groups::group_node(&registry, g))
        .collect::<Vec<_>>();
    vec![NodeBuilder::new("groups").children(groups).build()]
}

fn query(shared: &Arc<Shared>, address: &DeviceAddress, group: &Jid) -> Result<Vec<Node>, Refusal> {
    let registry = shared.registry();
    match registry.groups.get(group.user.as_str()) {
        Some(g) if g.is_member(&address.pn) => Ok(vec![groups::group_node(&registry, g)]),
        Some(_) => Err(Refusal {
            code: 403,
            text: "forbidden",
        }),
        None => Err(Refusal::NOT_FOUND),
    }
}

fn invite_code(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
    reset: bool,
) -> Result<Vec<Node>, Refusal> {
    let code = apply(shared, address, |registry| {
        groups::invite_code(
            registry,
            group.user.as_str(),
            &address.pn,
            reset,
            Rules::Enforced,
        )
    })?;
    Ok(vec![NodeBuilder::new("invite").attr("code", code).build()])
}

/// `<invite code>` to `g.us` (get): the group behind a code, without joining it.
fn invite_info(shared: &Arc<Shared>, request: &Node) -> Result<Vec<Node>, Refusal> {
    let code = attr(request, "code").ok_or(Refusal::BAD_REQUEST)?;
    let registry = shared.registry();
    let id = groups::group_by_invite(&registry, &code)?;
    let group = registry.groups.get(&id).ok_or(Refusal::NOT_FOUND)?;
    Ok(vec![groups::group_node(&registry, group)])
}

/// `<invite code>` to `g.us` (set): join by invite link, or ask to when approval is on.
fn join(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let code = attr(request, "code").ok_or(Refusal::BAD_REQUEST)?;
    let joined = apply(shared, address, |registry| {
        groups::join_by_invite(registry, &code, &address.pn)
    })?;
    Ok(vec![match joined {
        Joined::Member(id) => NodeBuilder::new("group")
            .attr("jid", Jid::group(id.as_str()))
            .build(),
        Joined::PendingApproval(id) => NodeBuilder::new("membership_approval_request")
            .attr("jid", Jid::group(id.as_str()))
            .build(),
    }])
}

/// `<accept code expiration admin>` to a group: take an invitation an admin sent instead of
/// adding directly.
fn accept(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let code = attr(request, "code").ok_or(Refusal::BAD_REQUEST)?;
    apply(shared, address, |registry| {
        let notices = groups::accept_invitation(registry, group.user.as_str(), &code, &address.pn)?;
        Ok(((), notices))
    })?;
    Ok(vec![
        NodeBuilder::new("group").attr("jid", group.clone()).build(),
    ])
}

/// `<create subject>`: a new group with the device's account as super admin; the reply is
/// the full group, as the client's `GroupCreateIq` expects.
fn create(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let mut settings = GroupSettings::default();
    if let Some(mode) = request
        .get_optional_child("member_add_mode")
        .and_then(|n| n.content_as_string())
        .and_then(|m| MemberAddMode::from_wire(&m))
    {
        settings.member_add_mode = mode;
    }
    settings.members_share_link = request
        .get_optional_child("member_link_mode")
        .and_then(|n| n.content_as_string())
        .is_some_and(|m| m == "all_member_link");
    settings.membership_approval = approval_state(request) == Some(true);
    settings.ephemeral_expiration = request
        .get_optional_child("ephemeral")
        .and_then(|e| attr(e, "expiration"))
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let description = request
        .get_optional_child("description")
        .and_then(|d| d.get_optional_child("body"))
        .and_then(|b| b.content_as_string())
        .map(|b| b.to_string());
    let create = CreateRequest {
        subject: attr(request, "subject").unwrap_or_default(),
        participants: participant_jids(request),
        description,
        settings,
    };
    let group = apply(shared, address, |registry| {
        let (id, _results, notices) = groups::create(registry, &address.pn, create)?;
        let group = registry.groups.get(&id).ok_or(Refusal::NOT_FOUND)?;
        Ok((groups::group_node(registry, group), notices))
    })?;
    Ok(vec![group])
}

/// `<leave><group id/>…</leave>`: leave one or more groups.
fn leave(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let groups: Vec<Jid> = request
        .get_children_by_tag("group")
        .filter_map(|g| jid_attr(g, "id"))
        .collect();
    if groups.is_empty() {
        return Err(Refusal::BAD_REQUEST);
    }
    apply(shared, address, |registry| {
        let mut notices = Vec::new();
        for group in &groups {
            notices.extend(groups::leave(registry, group.user.as_str(), &address.pn)?);
        }
        Ok(((), notices))
    })?;
    Ok(vec![
        NodeBuilder::new("leave")
            .children(
                groups
                    .iter()
                    .map(|g| NodeBuilder::new("group").attr("id", g.clone()).build()),
            )
            .build(),
    ])
}

fn membership_requests(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
) -> Result<Vec<Node>, Refusal> {
    let registry = shared.registry();
    let requests = groups::membership_requests(&registry, group.user.as_str(), &address.pn)?;
    Ok(vec![
        NodeBuilder::new("membership_approval_requests")
            .children(requests.iter().map(|r| {
                NodeBuilder::new("membership_approval_request")
                    .attr("jid", Jid::pn(r.phone.as_str()))
                    .attr("request_time", r.requested_at.to_string())
                    .build()
            }))
            .build(),
    ])
}

/// `<membership_requests_action><approve|reject><participant/>…`.
fn answer_requests(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let (tag, action) = ["approve", "reject"]
        .into_iter()
        .find_map(|tag| request.get_optional_child(tag).map(|n| (tag, n)))
        .ok_or(Refusal::BAD_REQUEST)?;
    let targets = participant_jids(action);
    let results = apply(shared, address, |registry| {
        groups::answer_requests(
            registry,
            group.user.as_str(),
            &address.pn,
            tag == "approve",
            &targets,
            Rules::Enforced,
        )
    })?;
    Ok(vec![
        NodeBuilder::new("membership_requests_action")
            .children([NodeBuilder::new(tag)
                .children(results.iter().map(groups::ParticipantResult::node))
                .build()])
            .build(),
    ])
}

fn cancel_request(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let targets = participant_jids(request);
    let results = apply(shared, address, |registry| {
        groups::cancel_request(registry, group.user.as_str(), &address.pn, &targets)
    })?;
    Ok(vec![
        NodeBuilder::new("cancel_membership_requests")
            .children(results.iter().map(groups::ParticipantResult::node))
            .build(),
    ])
}

/// `<add|remove|promote|demote><participant jid/>…`: one result per participant.
fn change_participants(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
    change: GroupChange,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let targets = participant_jids(request);
    if targets.is_empty() {
        return Err(Refusal::BAD_REQUEST);
    }
    let results = apply(shared, address, |registry| {
        groups::change_participants(
            registry,
            group.user.as_str(),
            &address.pn,
            change,
            &targets,
            Rules::Enforced,
        )
    })?;
    Ok(vec![
        NodeBuilder::new(change.tag())
            .children(results.iter().map(groups::ParticipantResult::node))
            .build(),
    ])
}

/// Subject, description and settings: answered with an empty result.
fn set_property(
    shared: &Arc<Shared>,
    address: &DeviceAddress,
    group: &Jid,
    request: &Node,
) -> Result<Vec<Node>, Refusal> {
    let id = group.user.to_string();
    let actor = address.pn.as_str();
    let setting = match request.tag.as_ref() {
        "announcement" => Some(GroupSetting::Announcement(true)),
        "not_announcement" => Some(GroupSetting::Announcement(false)),
        "locked" => Some(GroupSetting::Locked(true)),
        "unlocked" => Some(GroupSetting::Locked(false)),
        "membership_approval_mode" => Some(GroupSetting::MembershipApproval(
            approval_state_of(request).ok_or(Refusal::BAD_REQUEST)?,
        )),
        "member_add_mode" => Some(GroupSetting::MemberAddMode(
            request
                .content_as_string()
                .and_then(|m| MemberAddMode::from_wire(&m))
                .ok_or(Refusal::BAD_REQUEST)?,
        )),
        "ephemeral" => Some(GroupSetting::Ephemeral(
            attr(request, "expiration")
                .and_then(|e| e.parse().ok())
                .ok_or(Refusal::BAD_REQUEST)?,
        )),
        "not_ephemeral" => Some(GroupSetting::Ephemeral(0)),
        _ => None,
    };
    apply(shared, address, |registry| {
        let notices = match (setting, request.tag.as_ref()) {
            (Some(setting), _) => {
                groups::set_setting(registry, &id, actor, setting, Rules::Enforced)?
            }
            (None, "subject") => {
                let subject = request.content_as_string().unwrap_or_default();
                groups::set_subject(registry, &id, actor, &subject, Rules::Enforced)?
            }
            (None, "description") => {
                let delete = attr(request, "delete").as_deref() == Some("true");
                let body = request
                    .get_optional_child("body")
                    .and_then(|b| b.content_as_string())
                    .map(|b| b.to_string());
                if !delete && body.is_none() {
                    return Err(Refusal::BAD_REQUEST);
                }
                groups::set_description(
                    registry,
                    &id,
                    actor,
                    if delete { None } else { body.as_deref() },
                    attr(request, "id").as_deref(),
                    attr(request, "prev").as_deref(),
                    Rules::Enforced,
                )?
            }
            _ => return Err(Refusal::NOT_IMPLEMENTED),
        };
        Ok(((), notices))
    })?;
    Ok(Vec::new())
}

/// `<membership_approval_mode><group_join state="on|off"/>` inside `request`.
fn approval_state(request: &Node) -> Option<bool> {
    approval_state_of(request.get_optional_child("membership_approval_mode")?)
}

fn approval_state_of(mode: &Node) -> Option<bool> {
    match attr(mode.get_optional_child("group_join")?, "state")?.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// The participants a request names: `jid`, or for an unknown LID its `phone_number`.
fn participant_jids(request: &Node) -> Vec<Jid> {
    request
        .get_children_by_tag("participant")
        .filter_map(|p| {
            let jid = jid_attr(p, "jid")?;
            match jid_attr(p, "phone_number") {
                Some(pn) if jid.server == Server::Lid => Some(pn),
                _ => Some(jid),
            }
        })
        .collect()
}

/// Sends a simulated user's notices (no device of theirs made the change).
pub(crate) fn deliver(shared: &Arc<Shared>, notices: &[Notice]) -> usize {
    notifications::deliver_group_notices(shared, notices, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Group, ParticipantRole};
    use wacore::iq::groups::{GroupInfoOutcome, GroupParticipatingIq, GroupQueryIq};

    fn world() -> (Registry, Group) {
        let mut registry = Registry::default();
        registry.upsert_user("15550005555", Some("200000000000005"), "Dan");
        registry.upsert_user("15550006666", Some("200000000000006"), "Eve");
        let group = Group::new(
            "120363000000000001".to_owned(),
            "Standup",
            "15550005555",
            1_700_000_000,
            vec![
                ("15550005555".to_owned(), ParticipantRole::SuperAdmin),
                ("15550006666".to_owned(), ParticipantRole::Member),
            ],
            Some("Daily"),
        );
        (registry, group)
    }

    #[test]
    fn group_metadata_parses_with_the_clients_query_spec() {
        let (registry, group) = world();
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([groups::group_node(&registry, &group)])
            .build();
        let GroupInfoOutcome::Full(info) = GroupQueryIq::new(&group.jid())
            .parse_response(&reply.as_node_ref())
            .unwrap()
        else {
            panic!("expected full metadata");
        };
        assert_eq!(info.id, group.jid());
        assert_eq!(info.subject.as_str(), "Standup");
        assert_eq!(info.participants.len(), 2);
        assert_eq!(info.participants[1].lid, Some(Jid::lid("200000000000006")));
        assert_eq!(info.description.as_deref(), Some("Daily"));
        assert_eq!(info.description_id, group.description_id);
    }

    #[test]
    fn participating_groups_parse_with_the_clients_spec() {
        let (registry, group) = world();
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([NodeBuilder::new("groups")
                .children([groups::group_node(&registry, &group)])
                .build()])
            .build();
        let groups = GroupParticipatingIq::new()
            .parse_response(&reply.as_node_ref())
            .unwrap();
        assert_eq!(groups.groups.len(), 1);
    }

    /// A logged-in device of `pn` on a fresh server holding `registry`'s world.
    fn device_of(
        shared: &Arc<Shared>,
        pn: &str,
    ) -> (
        Session,
        tokio::sync::mpsc::UnboundedReceiver<crate::registry::Outgoing>,
    ) {
        let (out, sent) = tokio::sync::mpsc::unbounded_channel();
        let session = Session {
            connection: crate::registry::Connection { id: 1, out },
            role: crate::connection::Role::LoggedIn(DeviceAddress {
                pn: pn.to_owned(),
                device: 1,
            }),
        };
        let _ = shared;
        (session, sent)
    }

    /// The client's own request for `spec`, answered by the handler and parsed by `spec`.
    fn ask<S: IqSpec>(
        shared: &Arc<Shared>,
        session: &Session,
        spec: &S,
    ) -> Result<S::Response, Box<Node>> {
        let iq = spec.build_iq();
        let mut request = NodeBuilder::new("iq")
            .attr("id", "g1")
            .attr("xmlns", iq.namespace.to_owned())
            .attr("type", iq.query_type.as_str())
            .attr("to", iq.to.clone());
        if let Some(target) = &iq.target {
            request = request.attr("target", target.clone());
        }
        let request = match iq.content.clone() {
            Some(wacore_binary::NodeContent::Nodes(nodes)) => request.children(nodes),
            _ => request,
        }
        .build();
        let reply = handle(shared, session, &request);
        if attr(&reply, "type").as_deref() == Some("error") {
            return Err(Box::new(reply));
        }
        Ok(spec.parse_response(&reply.as_node_ref()).unwrap())
    }

    use wacore::iq::spec::IqSpec;

    fn error_code(reply: &Node) -> Option<String> {
        reply
            .get_optional_child("error")
            .and_then(|e| attr(e, "code"))
    }

    #[test]
    fn the_clients_group_requests_are_answered_and_parsed_by_its_own_specs() {
        use wacore::iq::groups as spec;
        let shared = Arc::new(Shared::new(crate::server::Options::default()));
        shared.update(|registry| {
            registry.upsert_user("15550005555", Some("200000000000005"), "Dan");
            registry.upsert_user("15550006666", Some("200000000000006"), "Eve");
            registry.upsert_user("15550007777", Some("200000000000007"), "Fay");
        });
        let (dan, _) = device_of(&shared, "15550005555");
        let (eve, _) = device_of(&shared, "15550006666");
        let created = ask(
            &shared,
            &dan,
            &spec::GroupCreateIq::new(
                spec::GroupCreateOptions::builder()
                    .subject("Plans")
                    .participants(vec![spec::GroupParticipantOptions::from_phone(Jid::pn(
                        "15550006666",
                    ))])
                    .build(),
            ),
        )
        .unwrap();
        assert_eq!(created.participants.len(), 2);
        let group = created.id.clone();
        let added = ask(
            &shared,
            &dan,
            &spec::AddParticipantsIq::new(
                &group,
                &[Jid::pn("15550007777"), Jid::pn("15550006666")],
            ),
        )
        .unwrap();
        assert!(added[0].is_ok());
        assert_eq!(added[1].error.as_deref(), Some("409"));
        let promoted = ask(
            &shared,
            &dan,
            &spec::PromoteParticipantsIq::new(&group, &[Jid::lid("200000000000006")]),
        )
        .unwrap();
        assert!(promoted[0].is_ok());
        ask(&shared, &dan, &spec::SetGroupLockedIq::lock(&group)).unwrap();
        ask(
            &shared,
            &eve,
            &spec::SetGroupSubjectIq::new(&group, spec::GroupSubject::new("Eve's plans").unwrap()),
        )
        .unwrap();
        let (fay, _) = device_of(&shared, "15550007777");
        let refused = ask(
            &shared,
            &fay,
            &spec::SetGroupSubjectIq::new(&group, spec::GroupSubject::new("Mine").unwrap()),
        )
        .unwrap_err();
        assert_eq!(error_code(&refused).as_deref(), Some("403"));
        let link = ask(
            &shared,
            &dan,
            &spec::GetGroupInviteLinkIq::new(&group, false),
        )
        .unwrap();
        let code = link.rsplit('/').next().unwrap().to_owned();
        let info = ask(
            &shared,
            &fay,
            &spec::GetGroupInviteInfoIq::new(code.clone()),
        )
        .unwrap();
        assert_eq!(info.subject.as_str(), "Eve's plans");
        assert!(info.is_locked);
        ask(&shared, &fay, &spec::LeaveGroupIq::new(&group)).unwrap();
        ask(
            &shared,
            &dan,
            &spec::SetGroupMembershipApprovalIq::new(&group, spec::MembershipApprovalMode::On),
        )
        .unwrap();
        let joined = ask(&shared, &fay, &spec::AcceptGroupInviteIq::new(code)).unwrap();
        assert_eq!(
            joined,
            spec::JoinGroupResult::PendingApproval(group.clone())
        );
        let requests = ask(&shared, &dan, &spec::GetMembershipRequestsIq::new(&group)).unwrap();
        assert_eq!(requests[0].jid, Jid::pn("15550007777"));
        let approved = ask(
            &shared,
            &dan,
            &spec::MembershipRequestActionIq::approve(&group, &[Jid::pn("15550007777")]),
        )
        .unwrap();
        assert!(approved[0].is_ok());
        let not_member = ask(
            &shared,
            &dan,
            &spec::SetGroupDescriptionIq::new(
                &Jid::group("120363999999999999"),
                Some(spec::GroupDescription::new("x").unwrap()),
                None,
            ),
        )
        .unwrap_err();
        assert_eq!(error_code(&not_member).as_deref(), Some("404"));
        let GroupInfoOutcome::Full(info) = ask(&shared, &dan, &GroupQueryIq::new(&group)).unwrap()
        else {
            panic!("expected full metadata");
        };
        assert!(info.membership_approval);
        assert_eq!(info.participants.len(), 3);
    }
}
