//! The group store and the twenty operations against the SDK's in-memory host: the store
//! built from events (members, roles, tags, the account's role), list order and paging,
//! validation, admin refusals taken from WhatsApp, partial updates with `details.applied`,
//! member actions and their codes, invites, join and leave, and the events emitted.

use super::Groups;
use gateway_sdk::groups::{GroupInfo, GroupParticipant, JoinRequest};
use gateway_sdk::testing::TestHost;
use gateway_sdk::{Capability, json};
use serde_json::Value;

const GID: &str = "120363021234567890@g.us";
const ALICE_LID: &str = "205227043110953@lid";
const ALICE_PN: &str = "6281234567890@s.whatsapp.net";
const BOB_LID: &str = "118364913572043@lid";
/// The test host pairs every session with this number.
const ME_PN: &str = "15550001111@s.whatsapp.net";

fn setup() -> (TestHost, String) {
    let host = TestHost::new::<Groups>();
    host.event_bus().grant(&["groups.*", "group.*"]);
    let s = host.add_session();
    (host, s)
}

fn member(lid: &str, jid: Option<&str>, role: &str) -> GroupParticipant {
    GroupParticipant {
        jid: jid.map(str::to_owned),
        lid: Some(lid.to_owned()),
        role: role.to_owned(),
        tag: None,
    }
}

/// A group on the fake WhatsApp where the account has `my_role`, also in the store.
fn group(host: &TestHost, s: &str, my_role: &str) {
    let info = GroupInfo {
        jid: GID.into(),
        subject: "Project Team".into(),
        description: Some("Q3".into()),
        owner: Some(ALICE_PN.into()),
        created_at: Some(1_700_000_000_000),
        announce: false,
        locked: false,
        join_approval: false,
        members_can_add: false,
        size: 3,
        participants: vec![
            member(ALICE_LID, Some(ALICE_PN), "superadmin"),
            member(BOB_LID, None, "member"),
            host.groups().me(s, my_role),
        ],
    };
    host.groups().add(info, "CODE123");
    let r = host.get(&format!("/sessions/{s}/groups/{GID}?refresh=true"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    host.event_bus().take();
}

fn get(host: &TestHost, s: &str) -> Value {
    host.get(&format!("/sessions/{s}/groups/{GID}")).json()
}

#[test]
fn events_build_groups_members_roles_and_my_role() {
    let (host, s) = setup();
    host.event(
        &s,
        "groups.upsert",
        json!({"groups": [{"jid": GID, "subject": "Project Team", "announce": true,
            "participants": [
                {"lid": ALICE_LID, "jid": ALICE_PN, "role": "admin", "tag": "~Alice"},
                {"lid": BOB_LID, "role": "member"},
                {"jid": ME_PN, "role": "admin"}]}]}),
    )
    .unwrap();
    let g = get(&host, &s);
    assert_eq!(g["subject"], "Project Team");
    assert_eq!(g["participantCount"], 3);
    assert_eq!(g["myRole"], "admin");
    assert_eq!(g["isAnnounce"], true);
    let members = host.collect_pages(&format!("/sessions/{s}/groups/{GID}/members?limit=2"));
    let roles: Vec<&str> = members
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "admin", "member"]);
    let alice = members.iter().find(|m| m["lid"] == ALICE_LID).unwrap();
    assert_eq!(alice["tag"], "~Alice");
    assert_eq!(alice["phoneJid"], ALICE_PN);
    assert_eq!(alice["sessionId"], s.as_str());

    // Bob is promoted, then the account is removed: it stays readable, myRole null.
    host.event(
        &s,
        "group.participants",
        json!({"group": GID, "action": "promote", "participants": [{"lid": BOB_LID}]}),
    )
    .unwrap();
    host.event(
        &s,
        "group.participants",
        json!({"group": GID, "action": "remove", "participants": [{"jid": ME_PN}]}),
    )
    .unwrap();
    let g = get(&host, &s);
    assert_eq!(g["myRole"], Value::Null);
    assert_eq!(g["participantCount"], 2);
    let admins = host.collect_pages(&format!("/sessions/{s}/groups/{GID}/members?role=admin"));
    assert_eq!(admins.len(), 2);

    host.event(
        &s,
        "groups.update",
        json!({"group": GID, "subject": "Renamed", "description": "", "locked": true}),
    )
    .unwrap();
    let g = get(&host, &s);
    assert_eq!(g["subject"], "Renamed");
    assert_eq!(g["isLocked"], true);
}

#[test]
fn list_orders_by_subject_and_filters() {
    let (host, s) = setup();
    for (i, name) in ["beta", "Alpha", "gamma"].iter().enumerate() {
        host.event(
            &s,
            "groups.upsert",
            json!({"groups": [{"jid": format!("12036300000000000{i}@g.us"), "subject": name}]}),
        )
        .unwrap();
    }
    let subjects: Vec<String> = host
        .collect_pages(&format!("/sessions/{s}/groups?limit=1"))
        .iter()
        .map(|g| g["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects, ["Alpha", "beta", "gamma"]);
    let r = host.get(&format!("/sessions/{s}/groups?q=AMM"));
    assert_eq!(r.json()["data"][0]["subject"], "gamma");
    assert_eq!(host.get(&format!("/sessions/{s}/groups/nope")).status, 400);
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups/120363999999999999@g.us"))
            .error_code()
            .as_deref(),
        Some("not_found")
    );
    assert_eq!(
        host.get(&format!(
            "/sessions/{s}/groups/120363999999999999@g.us/members"
        ))
        .status,
        404
    );
}

#[test]
fn create_stores_the_group_and_emits_it() {
    let (host, s) = setup();
    let r = host.post(
        &format!("/sessions/{s}/groups"),
        json!({"name": "New", "participants": [ALICE_PN, ALICE_PN, ME_PN]}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let g = r.json();
    assert_eq!(g["myRole"], "superadmin");
    assert_eq!(g["participantCount"], 2);
    let emitted = host.emitted();
    assert_eq!(emitted[0].name, "groups.upsert");
    // Validation.
    for body in [
        json!({"name": "", "participants": [ALICE_PN]}),
        json!({"name": "x", "participants": []}),
        json!({"name": "x", "participants": [ME_PN]}),
        json!({"name": "x", "participants": ["not-a-jid"]}),
        json!({"name": "x", "participants": [ALICE_PN], "extra": 1}),
    ] {
        let r = host.post(&format!("/sessions/{s}/groups"), body.clone());
        assert_eq!(r.status, 400, "{body}");
    }
    let many: Vec<String> = (0..1024)
        .map(|i| format!("1555{i:07}@s.whatsapp.net"))
        .collect();
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups"),
            json!({"name": "x", "participants": many})
        )
        .status,
        400
    );
}

#[test]
fn update_applies_in_order_and_reports_what_was_applied() {
    let (host, s) = setup();
    group(&host, &s, "member");
    // A member may rename an unlocked group, but not change settings: 403 after the
    // subject was applied.
    let r = host.patch(
        &format!("/sessions/{s}/groups/{GID}"),
        json!({"subject": "Renamed", "announce": true}),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["details"]["applied"], json!(["subject"]));
    assert_eq!(get(&host, &s)["subject"], "Renamed");
    let e = host.emitted();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].name, "groups.update");
    assert_eq!(e[0].payload["subject"], "Renamed");
    assert!(e[0].payload.get("announce").is_none());
    for body in [
        json!({}),
        json!({"subject": null}),
        json!({"subject": ""}),
        json!({"description": "x".repeat(2049)}),
        json!({"bogus": true}),
    ] {
        assert_eq!(
            host.patch(&format!("/sessions/{s}/groups/{GID}"), body.clone())
                .status,
            400,
            "{body}"
        );
    }
}

#[test]
fn admin_changes_settings_and_members() {
    let (host, s) = setup();
    group(&host, &s, "admin");
    let r = host.patch(
        &format!("/sessions/{s}/groups/{GID}"),
        json!({"description": "", "locked": true, "joinApproval": true}),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let g = get(&host, &s);
    assert_eq!(g["description"], Value::Null);
    assert_eq!(g["isLocked"], true);
    assert_eq!(g["joinApproval"], true);

    let r = host.post(
        &format!("/sessions/{s}/groups/{GID}/members?results=true"),
        json!({"participants": ["14155550123@s.whatsapp.net", BOB_LID]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["data"],
        json!([{"jid": "14155550123@s.whatsapp.net", "code": 200}, {"jid": BOB_LID, "code": 409}])
    );
    assert_eq!(get(&host, &s)["participantCount"], 4);
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members/{BOB_LID}/promote"),
            json!({})
        )
        .status,
        204
    );
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members/300991234567009@lid/promote"),
            json!({})
        )
        .status,
        404
    );
    assert_eq!(
        host.delete(&format!(
            "/sessions/{s}/groups/{GID}/members/300991234567009@lid"
        ))
        .status,
        204
    );
    assert_eq!(
        host.delete(&format!("/sessions/{s}/groups/{GID}/members/{BOB_LID}"))
            .status,
        204
    );
    let names: Vec<String> = host
        .emitted()
        .iter()
        .map(|e| format!("{} {}", e.name, e.payload["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        names,
        [
            "groups.update ",
            "group.participants add",
            "group.participants promote",
            "group.participants remove"
        ]
    );

    // Invites and requests.
    let r = host
        .get(&format!("/sessions/{s}/groups/{GID}/invite"))
        .json();
    assert_eq!(
        r,
        json!({"invite": "https://chat.whatsapp.com/CODE123", "code": "CODE123"})
    );
    let r = host
        .delete(&format!("/sessions/{s}/groups/{GID}/invite"))
        .json();
    assert_ne!(r["code"], "CODE123");
    host.groups().add_request(
        GID,
        JoinRequest {
            jid: "447700900123@s.whatsapp.net".into(),
            lid: None,
            requested_at: Some(5),
        },
    );
    let r = host
        .get(&format!("/sessions/{s}/groups/{GID}/requests"))
        .json();
    assert_eq!(r["data"][0]["jid"], "447700900123@s.whatsapp.net");
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members:approve"),
            json!({"participants": ["447700900123@s.whatsapp.net"]})
        )
        .status,
        204
    );
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members:reject"),
            json!({"participants": ["447700900123@s.whatsapp.net"]})
        )
        .status,
        204
    );
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members:approve"),
            json!({"participants": []})
        )
        .status,
        400
    );
}

#[test]
fn a_member_is_refused_by_whatsapp_not_by_the_stored_role() {
    let (host, s) = setup();
    group(&host, &s, "member");
    // The store says admin (stale); WhatsApp says member: 403.
    host.event(
        &s,
        "group.participants",
        json!({"group": GID, "action": "promote", "participants": [{"jid": ME_PN}]}),
    )
    .unwrap();
    assert_eq!(get(&host, &s)["myRole"], "admin");
    for r in [
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members"),
            json!({"participants": [ALICE_PN]}),
        ),
        host.delete(&format!("/sessions/{s}/groups/{GID}/members/{BOB_LID}")),
        host.get(&format!("/sessions/{s}/groups/{GID}/invite")),
        host.get(&format!("/sessions/{s}/groups/{GID}/requests")),
        host.patch(
            &format!("/sessions/{s}/groups/{GID}"),
            json!({"announce": true}),
        ),
    ] {
        assert_eq!(r.error_code().as_deref(), Some("forbidden"));
    }
    assert!(host.emitted().is_empty());
}

#[test]
fn invites_join_leave_and_pictures() {
    let (host, s) = setup();
    group(&host, &s, "member");
    let r = host.get(&format!(
        "/sessions/{s}/groups:inviteInfo?invite=https://chat.whatsapp.com/CODE123"
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["groupJid"], GID);
    assert_eq!(r.json()["participantCount"], 3);
    assert_eq!(
        host.get(&format!(
            "/sessions/{s}/groups:inviteInfo?invite=https://evil.example/x"
        ))
        .status,
        400
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups:inviteInfo?invite=UNKNOWN"))
            .status,
        400
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups:inviteInfo")).status,
        400
    );
    // Already a member: same answer.
    let r = host.post(
        &format!("/sessions/{s}/groups:join"),
        json!({"invite": "CODE123"}),
    );
    assert_eq!((r.status, r.json()), (200, json!({"groupJid": GID})));

    let jpeg = base64_jpeg();
    let r = host.put(
        &format!("/sessions/{s}/groups/{GID}/picture"),
        json!({"data": jpeg}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["id"].is_string());
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups/{GID}/picture"))
            .status,
        200
    );
    assert_eq!(
        host.put(
            &format!("/sessions/{s}/groups/{GID}/picture"),
            json!({"data": "aGVsbG8="})
        )
        .status,
        400
    );
    assert_eq!(
        host.delete(&format!("/sessions/{s}/groups/{GID}/picture"))
            .status,
        204
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups/{GID}/picture"))
            .status,
        404
    );

    assert_eq!(
        host.post(&format!("/sessions/{s}/groups/{GID}:leave"), json!({}))
            .status,
        204
    );
    assert_eq!(get(&host, &s)["myRole"], Value::Null);
    // Already left: 204; a group never seen: 404.
    assert_eq!(
        host.post(&format!("/sessions/{s}/groups/{GID}:leave"), json!({}))
            .status,
        204
    );
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/120363999999999999@g.us:leave"),
            json!({})
        )
        .status,
        404
    );
    // Joining again by invite stores it with a role again.
    let r = host.post(
        &format!("/sessions/{s}/groups:join"),
        json!({"invite": "https://chat.whatsapp.com/CODE123"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(get(&host, &s)["myRole"], "member");
}

#[test]
fn live_calls_answer_501_when_disconnected_and_reads_need_read() {
    let (host, s) = setup();
    group(&host, &s, "admin");
    host.whatsapp().set_connected(false);
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups/{GID}?refresh=true"))
            .status,
        501
    );
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups/{GID}/members"),
            json!({"participants": [ALICE_PN]})
        )
        .status,
        501
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/groups/{GID}")).status,
        200,
        "STORED works offline"
    );
    let host = host.caller("org_test", &[Capability::Read]);
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/groups:join"),
            json!({"invite": "CODE123"})
        )
        .status,
        403
    );
}

fn base64_jpeg() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'])
}
