//! Groups end to end (API.md §4) on the sandbox: the store built from the world's group
//! metadata, every operation's success and error answers, WhatsApp's refusals for a
//! non-admin (403 from the engine, not from the stored role), a change made through the
//! API showing in getGroup, in getContact's groups and in the events a subscribing plugin
//! receives, another admin's change (sandbox control) healing the store, and tenancy.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The example world: the account is admin of Project Team, member of Neighbourhood
/// (locked), and may join Open Community (by link) or Approval Club (admins approve).
const PROJECT: &str = "120363021234567890@g.us";
const HOOD: &str = "120363029876543210@g.us";
const OPEN: &str = "120363055555555555@g.us";
const CLUB: &str = "120363066666666666@g.us";
const ALICE: &str = "205227043110953@lid";
const BOB: &str = "118364913572043@lid";
const CHLOE: &str = "300991234567001@lid";
const CHLOE_PN: &str = "447700900123@s.whatsapp.net";
const DIEGO: &str = "300991234567002@lid";
const ESHA_PN: &str = "919876543210@s.whatsapp.net";
const GRACE: &str = "300991234567005@lid";
/// A 1×1 JPEG's first bytes are enough for the sandbox.
pub(crate) const JPEG_B64: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

fn gateway() -> Gateway {
    Gateway::with(with_groups(Options::default()))
}

/// `o` with the groups plugin loaded, granted what it calls, allowed to emit its events
/// and to take a picture's body.
pub(crate) fn with_groups(o: Options) -> Options {
    let mut o = o.grant_groups();
    o.plugins.push("groups".into());
    o.max_body_bytes = 1 << 20;
    o
}

/// A working session whose group store holds the world's three groups.
fn synced(g: &Gateway, token: &str) -> String {
    let s = g.working_session(token);
    wait_until(Duration::from_secs(30), || {
        let r = g.get(&format!("/sessions/{s}/groups"), token);
        r.status == 200 && r.json()["data"].as_array().is_some_and(|d| d.len() == 3)
    });
    wait_until(Duration::from_secs(30), || {
        g.get(&format!("/sessions/{s}/groups/{PROJECT}"), token)
            .json()["participantCount"]
            == 5
    });
    s
}

fn path(s: &str, rest: &str) -> String {
    format!("/sessions/{s}/groups{rest}")
}

fn patch(g: &Gateway, token: &str, p: &str, body: Value) -> Resp {
    g.call("PATCH", p, token, Some(body))
}

fn put(g: &Gateway, token: &str, p: &str, body: Value) -> Resp {
    g.call("PUT", p, token, Some(body))
}

/// Events the chaos plugin received for a session, by name.
fn recorded(g: &Gateway, token: &str, s: &str, name: &str) -> Vec<Value> {
    let r = g.get(&format!("/sessions/{s}/chaos-events"), token);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == name)
        .map(|e| e["payload"].clone())
        .collect()
}

fn contact_group(g: &Gateway, token: &str, s: &str, lid: &str, gid: &str) -> Option<Value> {
    let c = g.get(&format!("/sessions/{s}/contacts/{lid}"), token);
    if c.status != 200 {
        return None;
    }
    c.json()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["jid"] == gid)
        .cloned()
}

#[test]
fn groups_list_get_and_members_from_the_world() {
    let g = gateway();
    let token = g.key("org_groups", &["read", "send", "manage"]);
    let s = synced(&g, &token);

    let list = g.get(&path(&s, "?limit=2"), &token);
    assert_eq!(list.status, 200, "{}", list.text());
    let page = list.json();
    let subjects: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["Family (old group)", "Neighbourhood"]);
    let next = page["nextCursor"].as_str().unwrap();
    let rest = g
        .get(&path(&s, &format!("?limit=2&cursor={next}")), &token)
        .json();
    assert_eq!(rest["data"][0]["subject"], "Project Team");
    assert_eq!(rest["nextCursor"], Value::Null);
    assert_eq!(
        g.get(&path(&s, "?q=neigh"), &token).json()["data"][0]["groupJid"],
        HOOD
    );

    let p = g.get(&path(&s, &format!("/{PROJECT}")), &token);
    assert_eq!(p.status, 200);
    let p = p.json();
    assert_eq!(p["subject"], "Project Team");
    assert_eq!(p["description"], "Coordination for Q3 launch");
    assert_eq!(p["ownerJid"], "5511987654321@s.whatsapp.net");
    assert_eq!(p["myRole"], "admin");
    assert_eq!(p["createdAtWa"], 1_700_000_000_000u64);
    assert_eq!(p["participantCount"], 5);
    assert!(p["id"].as_u64().is_some());
    assert_eq!(
        g.get(&path(&s, &format!("/{HOOD}")), &token).json()["isLocked"],
        true
    );
    // Percent-encoded @ works; malformed → 400; unknown → 404.
    assert_eq!(
        g.get(&path(&s, "/120363021234567890%40g.us"), &token)
            .status,
        200
    );
    g.get(&path(&s, "/not-a-group"), &token)
        .assert_error(400, "validation_error");
    g.get(&path(&s, "/120363000000000009@g.us"), &token)
        .assert_error(404, "not_found");
    g.get(&path(&s, "/120363000000000009@g.us/members"), &token)
        .assert_error(404, "not_found");

    let members = g
        .get(&path(&s, &format!("/{PROJECT}/members")), &token)
        .json();
    let data = members["data"].as_array().unwrap();
    let roles: Vec<&str> = data.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["superadmin", "admin", "admin", "member", "member"]);
    let alice = data.iter().find(|m| m["lid"] == ALICE).unwrap();
    assert_eq!(alice["tag"], "~Alice");
    assert_eq!(alice["phoneJid"], "6281234567890@s.whatsapp.net");
    assert_eq!(alice["sessionId"], s.as_str());
    assert_eq!(alice["groupJid"], PROJECT);
    let admins = g
        .get(&path(&s, &format!("/{PROJECT}/members?role=admin")), &token)
        .json();
    assert_eq!(admins["data"].as_array().unwrap().len(), 2);
    g.get(&path(&s, &format!("/{PROJECT}/members?role=owner")), &token)
        .assert_error(400, "validation_error");

    // The account is not one of its own contacts.
    let me = g.get(&format!("/sessions/{s}/me"), &token).json();
    let mine = me["waLid"].as_str().unwrap();
    assert_eq!(
        g.get(&format!("/sessions/{s}/contacts/{mine}"), &token)
            .status,
        404
    );

    // refresh re-reads WhatsApp; 501 when the session is not connected (STORED still works).
    assert_eq!(
        g.get(&path(&s, &format!("/{PROJECT}?refresh=true")), &token)
            .status,
        200
    );
    g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/disconnect"),
        Some(json!({})),
    );
    g.get(&path(&s, &format!("/{PROJECT}?refresh=true")), &token)
        .assert_error(501, "not_implemented");
    g.post(
        &path(&s, &format!("/{PROJECT}/members")),
        &token,
        json!({"participants": [CHLOE_PN]}),
    )
    .assert_error(501, "not_implemented");
    assert_eq!(g.get(&path(&s, &format!("/{PROJECT}")), &token).status, 200);
}

#[test]
fn admin_changes_reach_the_store_contacts_and_events() {
    let g = gateway();
    let token = g.key("org_groups_admin", &["read", "send", "manage"]);
    let s = synced(&g, &token);

    // updateGroup: every field, in order.
    let r = patch(
        &g,
        &token,
        &path(&s, &format!("/{PROJECT}")),
        json!({
        "subject": "Project Team Q3", "description": "", "announce": true, "locked": true,
        "joinApproval": true, "membersCanAdd": true}),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let p = g.get(&path(&s, &format!("/{PROJECT}")), &token).json();
    assert_eq!(p["subject"], "Project Team Q3");
    assert_eq!(p["description"], Value::Null);
    assert_eq!(
        (
            p["isAnnounce"].clone(),
            p["isLocked"].clone(),
            p["joinApproval"].clone(),
            p["membersCanAdd"].clone()
        ),
        (json!(true), json!(true), json!(true), json!(true))
    );
    for body in [
        json!({}),
        json!({"subject": null}),
        json!({"subject": ""}),
        json!({"subject": "x".repeat(101)}),
        json!({"locked": "yes"}),
        json!({"color": "red"}),
    ] {
        patch(&g, &token, &path(&s, &format!("/{PROJECT}")), body)
            .assert_error(400, "validation_error");
    }

    // Members: add (with per-participant codes), promote, demote, remove.
    let r = g.post(
        &path(&s, &format!("/{PROJECT}/members?results=true")),
        &token,
        json!({"participants": [ESHA_PN, BOB, "15550000001@s.whatsapp.net"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let codes: Vec<u64> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [200, 409, 404]);
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members")),
            &token,
            json!({"participants": [ESHA_PN]})
        )
        .status,
        204,
        "already in: no-op"
    );
    g.post(
        &path(&s, &format!("/{PROJECT}/members")),
        &token,
        json!({"participants": []}),
    )
    .assert_error(400, "validation_error");
    g.post(
        &path(&s, &format!("/{PROJECT}/members")),
        &token,
        json!({"participants": ["bad"]}),
    )
    .assert_error(400, "validation_error");
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members/{BOB}/promote")),
            &token,
            json!({})
        )
        .status,
        204
    );
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members/{BOB}/promote")),
            &token,
            json!({})
        )
        .status,
        204,
        "already admin"
    );
    g.post(
        &path(&s, &format!("/{PROJECT}/members/{CHLOE}/promote")),
        &token,
        json!({}),
    )
    .assert_error(404, "not_found");
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members/{ALICE}/demote")),
            &token,
            json!({})
        )
        .status,
        204
    );
    g.post(
        &path(&s, &format!("/{PROJECT}/members/{DIEGO}/demote")),
        &token,
        json!({}),
    )
    .assert_error(403, "forbidden");
    assert_eq!(
        g.delete(&path(&s, &format!("/{PROJECT}/members/{BOB}")), &token)
            .status,
        204
    );
    assert_eq!(
        g.delete(&path(&s, &format!("/{PROJECT}/members/{BOB}")), &token)
            .status,
        204,
        "idempotent"
    );
    g.delete(&path(&s, &format!("/{PROJECT}/members/nope")), &token)
        .assert_error(400, "validation_error");

    // The store, the contacts store and the events follow.
    let roles: Vec<(String, String)> = g
        .get(&path(&s, &format!("/{PROJECT}/members")), &token)
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["lid"].as_str().unwrap_or("").to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(ALICE.to_owned(), "member".to_owned())),
        "{roles:?}"
    );
    assert!(!roles.iter().any(|(l, _)| l == BOB), "{roles:?}");
    assert_eq!(
        g.get(&path(&s, &format!("/{PROJECT}")), &token).json()["participantCount"],
        5
    );
    wait_until(Duration::from_secs(10), || {
        contact_group(&g, &token, &s, ALICE, PROJECT)
            .is_some_and(|x| x["role"] == "member" && x["tag"] == "~Alice")
    });
    wait_until(Duration::from_secs(10), || {
        contact_group(&g, &token, &s, BOB, PROJECT).is_none()
    });
    wait_until(Duration::from_secs(10), || {
        let updates = recorded(&g, &token, &s, "groups.update");
        let parts = recorded(&g, &token, &s, "group.participants");
        updates.iter().any(|u| {
            u["group"] == PROJECT && u["subject"] == "Project Team Q3" && u["membersCanAdd"] == true
        }) && parts
            .iter()
            .any(|p| p["action"] == "demote" && p["participants"][0]["lid"] == ALICE)
            && parts
                .iter()
                .any(|p| p["action"] == "remove" && p["participants"][0]["lid"] == BOB)
    });

    // Join requests, approve and reject.
    let r = g.get(&path(&s, &format!("/{PROJECT}/requests")), &token);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"][0]["lid"], CHLOE);
    assert_eq!(r.json()["nextCursor"], Value::Null);
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members:approve")),
            &token,
            json!({"participants": [CHLOE_PN]})
        )
        .status,
        204
    );
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members:approve")),
            &token,
            json!({"participants": [CHLOE_PN]})
        )
        .status,
        204,
        "idempotent"
    );
    assert_eq!(
        g.post(
            &path(&s, &format!("/{PROJECT}/members:reject")),
            &token,
            json!({"participants": [CHLOE_PN]})
        )
        .status,
        204
    );
    g.post(
        &path(&s, &format!("/{PROJECT}/members:reject")),
        &token,
        json!({}),
    )
    .assert_error(400, "validation_error");
    assert!(
        g.get(&path(&s, &format!("/{PROJECT}/requests")), &token)
            .json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    wait_until(Duration::from_secs(10), || {
        contact_group(&g, &token, &s, CHLOE, PROJECT).is_some()
    });

    // Invites: read, revoke (the old code stops at once), info by code or link.
    let inv = g
        .get(&path(&s, &format!("/{PROJECT}/invite")), &token)
        .json();
    assert_eq!(
        inv,
        json!({"invite": "https://chat.whatsapp.com/ProjectTeamInvite0001", "code": "ProjectTeamInvite0001"})
    );
    let new = g.delete(&path(&s, &format!("/{PROJECT}/invite")), &token);
    assert_eq!(new.status, 200);
    let code = new.json()["code"].as_str().unwrap().to_owned();
    assert_ne!(code, "ProjectTeamInvite0001");
    assert_eq!(
        new.json()["invite"],
        format!("https://chat.whatsapp.com/{code}")
    );
    g.get(
        &path(&s, ":inviteInfo?invite=ProjectTeamInvite0001"),
        &token,
    )
    .assert_error(400, "validation_error");
    let info = g.get(
        &path(
            &s,
            &format!(":inviteInfo?invite=https%3A%2F%2Fchat.whatsapp.com%2F{code}"),
        ),
        &token,
    );
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["groupJid"], PROJECT);
    assert_eq!(info.json()["joinApproval"], true);

    // Pictures: the world's, replaced (JPEG only), removed (idempotent).
    let pic = g.get(&path(&s, &format!("/{PROJECT}/picture")), &token);
    assert_eq!(pic.status, 200);
    assert_eq!(pic.json()["id"], "1719662500");
    assert_eq!(pic.json()["type"], "image");
    let set = put(
        &g,
        &token,
        &path(&s, &format!("/{PROJECT}/picture")),
        json!({"data": JPEG_B64}),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let id = set.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        g.get(&path(&s, &format!("/{PROJECT}/picture")), &token)
            .json()["id"],
        id.as_str()
    );
    put(
        &g,
        &token,
        &path(&s, &format!("/{PROJECT}/picture")),
        json!({"data": "iVBORw0KGgo="}),
    )
    .assert_error(400, "validation_error");
    put(
        &g,
        &token,
        &path(&s, &format!("/{PROJECT}/picture")),
        json!({"data": "***"}),
    )
    .assert_error(400, "validation_error");
    assert_eq!(
        g.delete(&path(&s, &format!("/{PROJECT}/picture")), &token)
            .status,
        204
    );
    assert_eq!(
        g.delete(&path(&s, &format!("/{PROJECT}/picture")), &token)
            .status,
        204
    );
    g.get(&path(&s, &format!("/{PROJECT}/picture")), &token)
        .assert_error(404, "not_found");
    // One byte over `limits.max_body_bytes` (1 MiB here): 413 before the plugin runs.
    let limit = 1usize << 20;
    let body = format!("{{\"data\":\"{}\"}}", "A".repeat(limit + 1 - 11));
    assert_eq!(body.len(), limit + 1);
    let auth = format!("Bearer {token}");
    g.raw(
        "PUT",
        &format!("/api/v1{}", path(&s, &format!("/{PROJECT}/picture"))),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body.into_bytes()),
    )
    .assert_error(413, "payload_too_large");
}

#[test]
fn a_member_is_refused_by_whatsapp() {
    let g = gateway();
    let token = g.key("org_groups_member", &["read", "send", "manage"]);
    let s = synced(&g, &token);
    // Neighbourhood is locked and the account is a plain member.
    for r in [
        patch(
            &g,
            &token,
            &path(&s, &format!("/{HOOD}")),
            json!({"subject": "Mine now"}),
        ),
        patch(
            &g,
            &token,
            &path(&s, &format!("/{HOOD}")),
            json!({"announce": true}),
        ),
        g.post(
            &path(&s, &format!("/{HOOD}/members")),
            &token,
            json!({"participants": [ESHA_PN]}),
        ),
        g.delete(&path(&s, &format!("/{HOOD}/members/{GRACE}")), &token),
        g.post(
            &path(&s, &format!("/{HOOD}/members/{ALICE}/promote")),
            &token,
            json!({}),
        ),
        g.post(
            &path(&s, &format!("/{HOOD}/members/{GRACE}/demote")),
            &token,
            json!({}),
        ),
        g.get(&path(&s, &format!("/{HOOD}/requests")), &token),
        g.post(
            &path(&s, &format!("/{HOOD}/members:approve")),
            &token,
            json!({"participants": [CHLOE_PN]}),
        ),
        g.get(&path(&s, &format!("/{HOOD}/invite")), &token),
        g.delete(&path(&s, &format!("/{HOOD}/invite")), &token),
        put(
            &g,
            &token,
            &path(&s, &format!("/{HOOD}/picture")),
            json!({"data": JPEG_B64}),
        ),
    ] {
        r.assert_error(403, "forbidden");
    }
    assert_eq!(
        g.get(&path(&s, &format!("/{HOOD}")), &token).json()["subject"],
        "Neighbourhood"
    );
    // Family (old group) is not locked: a member may rename it, not change settings.
    let r = patch(
        &g,
        &token,
        &path(&s, "/14155550123-1500000000@g.us"),
        json!({"subject": "Family", "locked": true}),
    );
    r.assert_error(403, "forbidden");
    assert_eq!(r.json()["error"]["details"]["applied"], json!(["subject"]));
    assert_eq!(
        g.get(&path(&s, "/14155550123-1500000000@g.us"), &token)
            .json()["subject"],
        "Family"
    );
    // LIVE ops on a group the account is not in: 404.
    g.get(&path(&s, &format!("/{OPEN}/invite")), &token)
        .assert_error(404, "not_found");
    patch(
        &g,
        &token,
        &path(&s, &format!("/{OPEN}")),
        json!({"subject": "x"}),
    )
    .assert_error(404, "not_found");
    // A read-only key cannot change anything.
    let reader = g.key("org_groups_member", &["read"]);
    patch(
        &g,
        &reader,
        &path(&s, &format!("/{PROJECT}")),
        json!({"subject": "x"}),
    )
    .assert_error(403, "forbidden");
}

#[test]
fn create_join_leave_and_another_admins_changes() {
    let g = gateway();
    let token = g.key("org_groups_life", &["read", "send", "manage"]);
    let s = synced(&g, &token);
    let me = g.get(&format!("/sessions/{s}/me"), &token).json();
    let my_jid = me["waJid"].as_str().unwrap().to_owned();

    // createGroup: 201, stored at once, the account superadmin, itself ignored in the list.
    let r = g.post(
        &path(&s, ""),
        &token,
        json!({"name": "Launch", "participants": [ESHA_PN, ALICE, ESHA_PN, my_jid]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let gid = created["groupJid"].as_str().unwrap().to_owned();
    assert_eq!(created["myRole"], "superadmin");
    assert_eq!(created["participantCount"], 3);
    assert_eq!(created["ownerJid"], my_jid.as_str());
    assert_eq!(
        g.get(&path(&s, &format!("/{gid}")), &token).json()["subject"],
        "Launch"
    );
    wait_until(Duration::from_secs(10), || {
        contact_group(&g, &token, &s, ALICE, &gid).is_some_and(|x| x["role"] == "member")
    });
    for body in [
        json!({"name": "", "participants": [ESHA_PN]}),
        json!({"name": "x"}),
        json!({"name": "x", "participants": []}),
        json!({"name": "x", "participants": [my_jid]}),
    ] {
        g.post(&path(&s, ""), &token, body)
            .assert_error(400, "validation_error");
    }
    let many: Vec<String> = (0..1024)
        .map(|i| format!("1555{i:07}@s.whatsapp.net"))
        .collect();
    g.post(
        &path(&s, ""),
        &token,
        json!({"name": "x", "participants": many}),
    )
    .assert_error(400, "validation_error");

    // joinGroup by link; again is the same answer; with approval 202; bad codes 400.
    let info = g.get(
        &path(&s, ":inviteInfo?invite=OpenCommunityInvite01"),
        &token,
    );
    assert_eq!(
        info.json(),
        json!({"groupJid": OPEN, "subject": "Open Community", "description": "Anyone with the link is welcome", "participantCount": 2, "joinApproval": false})
    );
    let j = g.post(
        &path(&s, ":join"),
        &token,
        json!({"invite": "https://chat.whatsapp.com/OpenCommunityInvite01"}),
    );
    assert_eq!((j.status, j.json()), (200, json!({"groupJid": OPEN})));
    let j = g.post(
        &path(&s, ":join"),
        &token,
        json!({"invite": "OpenCommunityInvite01"}),
    );
    assert_eq!((j.status, j.json()), (200, json!({"groupJid": OPEN})));
    let open = g.get(&path(&s, &format!("/{OPEN}")), &token).json();
    assert_eq!(open["myRole"], "member");
    assert_eq!(open["participantCount"], 3);
    let j = g.post(
        &path(&s, ":join"),
        &token,
        json!({"invite": "ApprovalClubInvite001"}),
    );
    assert_eq!(
        (j.status, j.json()),
        (202, json!({"groupJid": CLUB, "pendingApproval": true}))
    );
    g.post(&path(&s, ":join"), &token, json!({"invite": "NoSuchCode"}))
        .assert_error(400, "validation_error");
    g.post(
        &path(&s, ":join"),
        &token,
        json!({"invite": "https://example.com/x"}),
    )
    .assert_error(400, "validation_error");
    g.get(&path(&s, ":inviteInfo"), &token)
        .assert_error(400, "validation_error");

    // leaveGroup: 204, still readable with myRole null; again 204; unknown 404.
    assert_eq!(
        g.post(&path(&s, &format!("/{OPEN}:leave")), &token, json!({}))
            .status,
        204
    );
    let open = g.get(&path(&s, &format!("/{OPEN}")), &token).json();
    assert_eq!(open["myRole"], Value::Null);
    assert_eq!(
        g.post(&path(&s, &format!("/{OPEN}:leave")), &token, json!({}))
            .status,
        204
    );
    g.post(
        &path(&s, "/120363000000000009@g.us:leave"),
        &token,
        json!({}),
    )
    .assert_error(404, "not_found");

    // Another admin (Diego) changes Project Team: the store follows the engine's events.
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/group-change"),
        Some(json!({
        "group": PROJECT, "subject": "Renamed by Diego", "announce": true,
        "promote": [BOB], "remove": [ALICE], "request": ["300991234567004@lid"]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["published"],
        json!([
            "groups.update",
            "group.participants",
            "group.participants",
            "group.join_request"
        ])
    );
    wait_until(Duration::from_secs(10), || {
        let p = g.get(&path(&s, &format!("/{PROJECT}")), &token).json();
        p["subject"] == "Renamed by Diego" && p["isAnnounce"] == true && p["participantCount"] == 4
    });
    wait_until(Duration::from_secs(10), || {
        contact_group(&g, &token, &s, ALICE, PROJECT).is_none()
    });
    wait_until(Duration::from_secs(10), || {
        contact_group(&g, &token, &s, BOB, PROJECT).is_some_and(|x| x["role"] == "admin")
    });
    wait_until(Duration::from_secs(10), || {
        recorded(&g, &token, &s, "group.join_request")
            .iter()
            .any(|e| e["action"] == "created" && e["lid"] == "300991234567004@lid")
    });
    // Diego demotes the account: WhatsApp now refuses it, whatever the store said before.
    let my_lid = me["waLid"].as_str().unwrap().to_owned();
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/group-change"),
        Some(json!({"group": PROJECT, "demote": [my_lid]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(10), || {
        g.get(&path(&s, &format!("/{PROJECT}")), &token).json()["myRole"] == "member"
    });
    g.get(&path(&s, &format!("/{PROJECT}/invite")), &token)
        .assert_error(403, "forbidden");
    // …and removes it: the group stays readable with myRole null.
    g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/group-change"),
        Some(json!({"group": PROJECT, "remove": [my_jid]})),
    );
    wait_until(Duration::from_secs(10), || {
        g.get(&path(&s, &format!("/{PROJECT}")), &token).json()["myRole"] == Value::Null
    });
    g.get(&path(&s, &format!("/{PROJECT}?refresh=true")), &token)
        .assert_error(404, "not_found");
    // Bad control calls.
    assert_eq!(
        g.admin_call(
            "POST",
            &format!("/sandbox/sessions/{s}/group-change"),
            Some(json!({"group": "nope"}))
        )
        .status,
        400
    );
    assert_eq!(
        g.admin_call(
            "POST",
            &format!("/sandbox/sessions/{s}/group-change"),
            Some(json!({"group": PROJECT, "add": ["15550000001@s.whatsapp.net"]}))
        )
        .status,
        400
    );
}

#[test]
fn another_organizations_group_routes_answer_404() {
    let g = gateway();
    let owner = g.key("org_groups_a", &["read", "send", "manage"]);
    let other = g.key("org_groups_b", &["read", "send", "manage"]);
    let s = synced(&g, &owner);
    for r in [
        g.get(&path(&s, ""), &other),
        g.get(&path(&s, &format!("/{PROJECT}")), &other),
        g.get(&path(&s, &format!("/{PROJECT}/members")), &other),
        g.get(&path(&s, &format!("/{PROJECT}/invite")), &other),
        g.post(
            &path(&s, &format!("/{PROJECT}/members")),
            &other,
            json!({"participants": [ESHA_PN]}),
        ),
        patch(
            &g,
            &other,
            &path(&s, &format!("/{PROJECT}")),
            json!({"subject": "x"}),
        ),
        g.post(
            &path(&s, ":join"),
            &other,
            json!({"invite": "OpenCommunityInvite01"}),
        ),
        g.post(&path(&s, &format!("/{PROJECT}:leave")), &other, json!({})),
    ] {
        r.assert_error(404, "not_found");
    }
    assert_eq!(
        g.get(&path(&s, &format!("/{PROJECT}")), &owner).json()["subject"],
        "Project Team"
    );
}
