//! Group calls against the stand-in's group rules: what an admin does lands on the
//! server (create, subject, description, settings, members with WhatsApp's codes per
//! participant, invites, join requests, the picture, leaving), and what WhatsApp refuses
//! a plain member or a stranger comes back as the sandbox's errors (403, 404, invalid).

use super::*;
use crate::engines::{GroupSetting, ParticipantAction};
use wa_standin::{GroupAddPrivacy, ParticipantRole};

const DAN: &str = "15550300004";
const DAN_LID: &str = "240000000000014";
const NOBODY: &str = "15550399999";

fn pn(phone: &str) -> Jid {
    Jid::parse(&format!("{phone}@s.whatsapp.net")).unwrap()
}

fn gid(group: &wa_standin::Jid) -> Jid {
    Jid::parse(&group.to_string()).unwrap()
}

fn codes(results: &[crate::engines::ParticipantResult]) -> Vec<(String, u16)> {
    results.iter().map(|r| (r.jid.clone(), r.code)).collect()
}

/// The stand-in's JID for a group the engine named.
fn server_jid(group: &str) -> wa_standin::Jid {
    group.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_a_group_on_whatsapp_with_its_answers_per_participant() {
    let h = Harness::start(None).await;
    h.standin
        .add_contact(Contact::new(DAN, "Dan").with_lid(DAN_LID));
    let s = h.pair().await;
    let e = &h.engine;
    let me = format!("{ME}@s.whatsapp.net");

    // Create: the account superadmin; itself and a repeated member add nobody.
    let created = e
        .create_group(&s, "Launch", &[pn(BOB), pn(CAROL), pn(ME), pn(BOB)])
        .await
        .unwrap();
    assert_eq!(created.subject, "Launch");
    assert_eq!(created.owner.as_deref(), Some(me.as_str()));
    assert_eq!(created.size, 3);
    let mine = created
        .participants
        .iter()
        .find(|p| p.jid.as_deref() == Some(me.as_str()))
        .unwrap();
    assert_eq!(mine.role, "superadmin");
    let bob = created
        .participants
        .iter()
        .find(|p| p.jid.as_deref() == Some(&*format!("{BOB}@s.whatsapp.net")))
        .unwrap();
    assert_eq!(bob.lid.as_deref(), Some(&*format!("{BOB_LID}@lid")));
    assert_eq!(bob.role, "member");
    let group = gid(&server_jid(&created.jid));
    let on_server = || h.standin.group(&server_jid(&created.jid)).unwrap();
    assert_eq!(on_server().participants.len(), 3);
    assert_eq!(on_server().role_of(ME), Some(ParticipantRole::SuperAdmin));
    assert!(matches!(
        e.create_group(&s, "  ", &[pn(BOB)]).await,
        Err(EngineError::Invalid(_))
    ));

    // Subject, description (replaced: the update names the one it replaces), settings.
    e.set_group_subject(&s, &group, "Launch Q3").await.unwrap();
    assert_eq!(on_server().subject, "Launch Q3");
    assert!(matches!(
        e.set_group_subject(&s, &group, &"x".repeat(101)).await,
        Err(EngineError::Invalid(_))
    ));
    e.set_group_description(&s, &group, Some("Ship it"))
        .await
        .unwrap();
    e.set_group_description(&s, &group, Some("Ship it by Friday"))
        .await
        .unwrap();
    assert_eq!(
        on_server().description.as_deref(),
        Some("Ship it by Friday")
    );
    e.set_group_description(&s, &group, None).await.unwrap();
    assert_eq!(on_server().description, None);
    for (setting, on) in [
        (GroupSetting::Announce, true),
        (GroupSetting::Locked, true),
        (GroupSetting::JoinApproval, true),
        (GroupSetting::MembersCanAdd, false),
    ] {
        e.set_group_setting(&s, &group, setting, on).await.unwrap();
    }
    let settings = on_server().settings;
    assert!(settings.announcement && settings.locked && settings.membership_approval);
    assert_eq!(
        settings.member_add_mode,
        wa_standin::MemberAddMode::AdminAdd
    );
    let info = e.group_metadata(&s, &group).await.unwrap();
    assert_eq!(
        (info.subject.as_str(), info.description.as_deref()),
        ("Launch Q3", None)
    );
    assert!(info.announce && info.locked && info.join_approval && !info.members_can_add);
    assert_eq!(info.size, 3);

    // Members: WhatsApp's code for each person, in the order asked.
    let added = e
        .update_group_participants(
            &s,
            &group,
            ParticipantAction::Add,
            &[pn(DAN), pn(BOB), pn(NOBODY)],
        )
        .await
        .unwrap();
    assert_eq!(
        codes(&added),
        [
            (format!("{DAN}@s.whatsapp.net"), 200),
            (format!("{BOB}@s.whatsapp.net"), 409),
            (format!("{NOBODY}@s.whatsapp.net"), 404),
        ]
    );
    assert!(on_server().is_member(DAN));
    let bob_lid = Jid::parse(&format!("{BOB_LID}@lid")).unwrap();
    let promoted = e
        .update_group_participants(
            &s,
            &group,
            ParticipantAction::Promote,
            std::slice::from_ref(&bob_lid),
        )
        .await
        .unwrap();
    assert_eq!(codes(&promoted), [(format!("{BOB_LID}@lid"), 200)]);
    assert_eq!(on_server().role_of(BOB), Some(ParticipantRole::Admin));
    let demoted = e
        .update_group_participants(&s, &group, ParticipantAction::Demote, &[pn(BOB)])
        .await
        .unwrap();
    assert_eq!(codes(&demoted)[0].1, 200);
    assert_eq!(on_server().role_of(BOB), Some(ParticipantRole::Member));
    let removed = e
        .update_group_participants(
            &s,
            &group,
            ParticipantAction::Remove,
            &[pn(CAROL), pn(NOBODY)],
        )
        .await
        .unwrap();
    assert_eq!(
        codes(&removed).iter().map(|c| c.1).collect::<Vec<_>>(),
        [200, 404]
    );
    assert!(!on_server().is_member(CAROL));
    // Carol's privacy forbids adding her: 403 for her alone.
    h.standin
        .set_group_add_privacy(CAROL, GroupAddPrivacy::Nobody)
        .unwrap();
    let refused = e
        .update_group_participants(&s, &group, ParticipantAction::Add, &[pn(CAROL)])
        .await
        .unwrap();
    assert_eq!(codes(&refused)[0].1, 403);
    assert!(!on_server().is_member(CAROL));

    // Invites: read, reset (the old code stops working), what a code leads to.
    let code = e.group_invite_code(&s, &group, false).await.unwrap();
    assert_eq!(code, on_server().invite_code);
    let fresh = e.group_invite_code(&s, &group, true).await.unwrap();
    assert_ne!(fresh, code);
    assert_eq!(fresh, on_server().invite_code);
    let preview = e.invite_info(&s, &fresh).await.unwrap();
    assert_eq!(preview.jid, created.jid);
    assert_eq!(preview.subject, "Launch Q3");
    assert!(preview.join_approval);
    assert_eq!(preview.size, 3);
    assert!(preview.participants.is_empty());
    for bad in [code.as_str(), "NoSuchCode"] {
        assert!(
            matches!(e.invite_info(&s, bad).await, Err(EngineError::Invalid(_))),
            "{bad}"
        );
    }

    // Join requests: Carol asks by link (approval is on), the account approves her.
    assert!(!h.standin.join_group_by_invite(CAROL, &fresh).unwrap());
    let requests = e.group_join_requests(&s, &group).await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].jid, format!("{CAROL}@s.whatsapp.net"));
    let carol_lid = h.standin.user_jids(CAROL).unwrap().lid.to_string();
    assert_eq!(requests[0].lid.as_deref(), Some(carol_lid.as_str()));
    assert!(
        requests[0]
            .requested_at
            .is_some_and(|t| t > 1_600_000_000_000)
    );
    let approved = e
        .update_group_participants(
            &s,
            &group,
            ParticipantAction::Approve,
            &[pn(CAROL), pn(BOB)],
        )
        .await
        .unwrap();
    assert_eq!(
        codes(&approved).iter().map(|c| c.1).collect::<Vec<_>>(),
        [200, 404]
    );
    assert!(on_server().is_member(CAROL));
    assert!(
        h.standin
            .membership_requests(&server_jid(&created.jid))
            .is_empty()
    );
    let rejected = e
        .update_group_participants(&s, &group, ParticipantAction::Reject, &[pn(CAROL)])
        .await
        .unwrap();
    assert_eq!(codes(&rejected)[0].1, 404, "no request left to reject");

    // The picture: set (its id is the server's), read back, removed.
    let id = e
        .set_group_picture(&s, &group, Some(vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_server().picture.map(|p| p.id), Some(id.clone()));
    let shown = e.profile_picture(&s, &group).await.unwrap().unwrap();
    assert_eq!(shown.id, id);
    assert_eq!(e.set_group_picture(&s, &group, None).await.unwrap(), None);
    assert!(on_server().picture.is_none());

    // Leaving: out on the server; the group is then "not found", leaving again too.
    e.leave_group(&s, &group).await.unwrap();
    assert!(!on_server().is_member(ME));
    assert!(matches!(
        e.group_metadata(&s, &group).await,
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        e.leave_group(&s, &group).await,
        Err(EngineError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_refuses_a_member_and_a_stranger_and_invites_let_them_in() {
    let h = Harness::start(None).await;
    let s = h.pair().await;
    let e = &h.engine;
    // Bob's locked group where only admins add; the account is a plain member.
    let hood = h.standin.add_group("Hood", &[BOB, ME, CAROL], None);
    for setting in [
        wa_standin::GroupSetting::Locked(true),
        wa_standin::GroupSetting::MemberAddMode(wa_standin::MemberAddMode::AdminAdd),
    ] {
        h.standin.set_group_setting(&hood, setting, BOB).unwrap();
    }
    let group = gid(&hood);
    let forbidden = |r: Result<(), EngineError>, what: &str| {
        assert!(matches!(r, Err(EngineError::Forbidden(_))), "{what}: {r:?}");
    };
    forbidden(e.set_group_subject(&s, &group, "Mine").await, "subject");
    forbidden(
        e.set_group_description(&s, &group, Some("Mine")).await,
        "description",
    );
    forbidden(
        e.set_group_setting(&s, &group, GroupSetting::Announce, true)
            .await,
        "setting",
    );
    for action in [
        ParticipantAction::Add,
        ParticipantAction::Remove,
        ParticipantAction::Promote,
        ParticipantAction::Approve,
    ] {
        forbidden(
            e.update_group_participants(&s, &group, action, &[pn(CAROL)])
                .await
                .map(|_| ()),
            action.as_str(),
        );
    }
    forbidden(
        e.group_join_requests(&s, &group).await.map(|_| ()),
        "requests",
    );
    forbidden(
        e.group_invite_code(&s, &group, false).await.map(|_| ()),
        "invite",
    );
    forbidden(
        e.set_group_picture(&s, &group, Some(vec![0xFF, 0xD8]))
            .await
            .map(|_| ()),
        "picture",
    );
    let hood_now = h.standin.group(&hood).unwrap();
    assert_eq!(hood_now.subject, "Hood");
    assert!(hood_now.is_member(CAROL));
    assert_eq!(
        e.group_metadata(&s, &group)
            .await
            .unwrap()
            .participants
            .len(),
        3
    );

    // A group the account is not in: not found; its link lets it in, twice the same.
    let open = h
        .standin
        .add_group("Open", &[BOB, CAROL], Some("All welcome"));
    let open_gid = gid(&open);
    assert!(matches!(
        e.group_metadata(&s, &open_gid).await,
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        e.set_group_subject(&s, &open_gid, "x").await,
        Err(EngineError::NotFound(_))
    ));
    let code = h.standin.group_invite_code(&open).unwrap();
    let preview = e.invite_info(&s, &code).await.unwrap();
    assert_eq!(
        (preview.subject.as_str(), preview.description.as_deref()),
        ("Open", Some("All welcome"))
    );
    for _ in 0..2 {
        let joined = e.join_group(&s, &code).await.unwrap();
        assert_eq!(joined.group, open.to_string());
        assert!(!joined.pending_approval);
    }
    assert!(h.standin.group(&open).unwrap().is_member(ME));
    // With approval on, joining waits for an admin.
    let club = h.standin.add_group("Club", &[BOB], None);
    h.standin
        .set_group_setting(
            &club,
            wa_standin::GroupSetting::MembershipApproval(true),
            BOB,
        )
        .unwrap();
    let joined = e
        .join_group(&s, &h.standin.group_invite_code(&club).unwrap())
        .await
        .unwrap();
    assert_eq!(joined.group, club.to_string());
    assert!(joined.pending_approval);
    assert_eq!(h.standin.membership_requests(&club)[0].phone, ME);
    assert!(matches!(
        e.join_group(&s, "NoSuchCode").await,
        Err(EngineError::Invalid(_))
    ));
}

#[test]
fn whatsapps_refusals_map_to_the_errors_the_sandbox_gives() {
    use whatsapp_rust::IqError;
    use whatsapp_rust::features::GroupError;
    let rejected = |code| {
        crate::engines::whatsapp_web::groups::refused(GroupError::Iq(IqError::ServerError {
            code,
            text: "refused".into(),
            error_type: None,
            backoff: None,
        }))
    };
    let kind = |e: EngineError| match e {
        EngineError::NotConnected(_) => "not connected",
        EngineError::NotFound(_) => "not found",
        EngineError::Invalid(_) => "invalid",
        EngineError::Forbidden(_) => "forbidden",
        EngineError::RateLimited(_) => "rate limited",
        EngineError::Unsupported(_) => "unsupported",
        EngineError::Failed(_) => "failed",
    };
    for (code, want) in [
        (400, "invalid"),
        (401, "forbidden"),
        (403, "forbidden"),
        (404, "not found"),
        (406, "invalid"),
        (409, "invalid"),
        (410, "invalid"),
        (429, "rate limited"),
        (500, "failed"),
        (501, "unsupported"),
        (503, "failed"),
    ] {
        assert_eq!(kind(rejected(code)), want, "IQ error {code}");
    }
    assert_eq!(
        kind(crate::engines::whatsapp_web::groups::refused(
            GroupError::Iq(IqError::NotConnected)
        )),
        "not connected"
    );
    assert_eq!(
        kind(crate::engines::whatsapp_web::groups::refused(
            GroupError::Iq(IqError::Timeout)
        )),
        "failed"
    );
    assert_eq!(
        kind(crate::engines::whatsapp_web::groups::refused(
            GroupError::InvalidRequest("empty".into())
        )),
        "invalid"
    );
    assert_eq!(
        kind(crate::engines::whatsapp_web::groups::refused(
            GroupError::DescriptionConflict
        )),
        "invalid"
    );
}

#[test]
fn answers_per_participant_are_matched_to_whom_was_asked() {
    use whatsapp_rust::NodeBuilder;
    use whatsapp_rust::wacore::iq::groups::AddParticipantsIq;
    use whatsapp_rust::wacore::iq::spec::IqSpec as _;
    let answer = |children: Vec<whatsapp_rust::wacore_binary::Node>| {
        let reply = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([NodeBuilder::new("add").children(children).build()])
            .build();
        AddParticipantsIq::new(&whatsapp_rust::Jid::group("120363000000000001"), &[])
            .parse_response(&reply.as_node_ref())
            .unwrap()
    };
    let participant = |jid: whatsapp_rust::Jid, pn: Option<&str>, error: Option<&str>| {
        let mut b = NodeBuilder::new("participant").attr("jid", jid);
        if let Some(pn) = pn {
            b = b.attr("phone_number", whatsapp_rust::Jid::pn(pn));
        }
        if let Some(e) = error {
            b = b.attr("error", e);
        }
        b.build()
    };
    let asked = [pn(BOB), pn(CAROL), pn(DAN)];
    // Out of order, Bob answered by his LID with his number, Dan not answered at all.
    let answers = answer(vec![
        participant(whatsapp_rust::Jid::pn(CAROL), None, Some("408")),
        participant(whatsapp_rust::Jid::lid(BOB_LID), Some(BOB), None),
    ]);
    assert_eq!(
        codes(&crate::engines::whatsapp_web::groups::per_participant(
            &asked, &answers
        )),
        [
            (format!("{BOB}@s.whatsapp.net"), 200),
            (format!("{CAROL}@s.whatsapp.net"), 408)
        ]
    );
    // As many answers as people asked, under names it cannot match: by position; an
    // unreadable code is a refusal.
    let answers = answer(vec![
        participant(whatsapp_rust::Jid::lid("1"), None, Some("409")),
        participant(whatsapp_rust::Jid::lid("2"), None, Some("x")),
        participant(whatsapp_rust::Jid::lid("3"), None, None),
    ]);
    assert_eq!(
        codes(&crate::engines::whatsapp_web::groups::per_participant(
            &asked, &answers
        ))
        .iter()
        .map(|c| c.1)
        .collect::<Vec<_>>(),
        [409, 500, 200]
    );
}
