//! Contacts (API.md §3) on the sandbox engine: the store built from events, every
//! operation's shape, paging a large world, LIVE calls when the connection drops,
//! tenancy and capabilities.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const ALICE: &str = "205227043110953@lid";
const BOB: &str = "118364913572043@lid";
const PROJECT: &str = "120363021234567890@g.us";
const HOOD: &str = "120363029876543210@g.us";

fn world() -> Value {
    let text = std::fs::read_to_string(root().join("examples/sandbox-world.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn world_size() -> usize {
    world()["contacts"].as_array().unwrap().len()
}

fn all_contacts(g: &Gateway, key: &str, s: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/sessions/{s}/contacts?{query}{sep}limit={limit}&cursor={c}"),
            None => format!("/sessions/{s}/contacts?{query}{sep}limit={limit}"),
        };
        let r = g.get(&path, key);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let page = r.json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        out.extend(data.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => {
                assert_eq!(data.len(), limit, "a page before the last is full");
                cursor = Some(c.to_owned())
            }
            None => return out,
        }
    }
}

/// A working sandbox session whose world sync has been stored.
/// The contact operations that need the live connection (501 while it is down), as
/// (method, path) under `base` = `/sessions/{s}/contacts`.
fn live_operations(base: &str) -> [(&'static str, String); 6] {
    [
        ("GET", format!("{base}/check?phone=6281234567890")),
        ("GET", format!("{base}/{ALICE}/picture")),
        ("GET", format!("{base}/{ALICE}/about")),
        ("POST", format!("{base}/{ALICE}/block")),
        ("POST", format!("{base}/{ALICE}/unblock")),
        ("GET", format!("{base}/blocked")),
    ]
}

/// A working session whose contact store holds `expected` contacts.
fn synced(g: &Gateway, key: &str, expected: usize) -> String {
    let s = g.working_session(key);
    let mut n = 0;
    assert!(
        wait_for(Duration::from_secs(30), || {
            n = all_contacts(g, key, &s, "", 200).len();
            n == expected
        }),
        "contact store has {n} of {expected}"
    );
    s
}

/// A working session on the example world whose store holds every contact and every group
/// member: contacts and group metadata arrive as separate events, so counting contacts
/// alone can return before the groups are in.
fn synced_example(g: &Gateway, key: &str) -> String {
    let s = synced(g, key, world_size());
    for group in world()["groups"].as_array().unwrap() {
        let jid = group["jid"].as_str().unwrap();
        let members = group["participants"].as_array().unwrap().len();
        let mut n = 0;
        assert!(
            wait_for(Duration::from_secs(30), || {
                n = all_contacts(g, key, &s, &format!("group={jid}"), 200).len();
                n == members
            }),
            "group {jid} has {n} of {members} members in the store"
        );
    }
    s
}

#[test]
fn get_contact_shows_dm_and_every_group_with_role_and_tag() {
    let g = Gateway::start();
    let key = g.key("org_c", &["read", "send", "manage"]);
    let s = synced_example(&g, &key);

    let r = g.get(
        &format!("/sessions/{s}/contacts/{}", ALICE.replace('@', "%40")),
        &key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.json();
    let id = &c["identity"];
    assert!(id["id"].as_u64().unwrap() >= 1);
    assert_eq!(id["lid"], ALICE);
    assert_eq!(id["name"], "Alice");
    assert_eq!(id["businessName"], "Acme Corp");
    assert_eq!(id["phoneJid"], "6281234567890@s.whatsapp.net");
    assert_eq!(id["phoneNumber"], "6281234567890");
    assert!(id["firstSeenAt"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(id["updatedAt"].as_u64().unwrap() >= id["firstSeenAt"].as_u64().unwrap());
    assert_eq!(c["dm"], true);
    let mut groups = c["groups"].as_array().unwrap().clone();
    groups.sort_by_key(|g| g["jid"].as_str().unwrap().to_owned());
    assert_eq!(groups.len(), 2, "{c}");
    assert_eq!(groups[0]["jid"], PROJECT);
    assert_eq!(groups[0]["name"], "Project Team");
    assert_eq!(groups[0]["role"], "admin");
    assert_eq!(groups[0]["tag"], "~Alice");
    assert!(groups[0]["lastSeen"].as_u64().unwrap() > 0);
    assert_eq!(groups[1]["jid"], HOOD);
    assert_eq!(groups[1]["name"], "Neighbourhood");
    assert_eq!(groups[1]["role"], "member");
    assert_eq!(groups[1]["tag"], "Alice from 4B");

    // The same person by raw LID and by phone JID.
    let raw = g
        .get(&format!("/sessions/{s}/contacts/{ALICE}"), &key)
        .json();
    assert_eq!(raw["identity"]["id"], c["identity"]["id"]);
    let by_phone = g
        .get(
            &format!("/sessions/{s}/contacts/6281234567890%40s.whatsapp.net"),
            &key,
        )
        .json();
    assert_eq!(by_phone["identity"]["id"], c["identity"]["id"]);

    // A LID-only person seen in a group, no DM, no phone.
    let farid = g
        .get(&format!("/sessions/{s}/contacts/300991234567004@lid"), &key)
        .json();
    assert_eq!(farid["identity"]["phoneNumber"], Value::Null);
    assert_eq!(farid["identity"]["name"], "Farid");
    assert_eq!(farid["dm"], false);
    assert_eq!(farid["groups"][0]["tag"], "F.");

    // Not stored, malformed.
    g.get(&format!("/sessions/{s}/contacts/999999999999999@lid"), &key)
        .assert_error(404, "not_found");
    let r = g.get(&format!("/sessions/{s}/contacts/not-a-jid"), &key);
    r.assert_error(400, "validation_error");
    assert_eq!(r.json()["error"]["details"]["field"], "lid");
    g.get(&format!("/sessions/{s}/contacts/{PROJECT}"), &key)
        .assert_error(400, "validation_error");
}

#[test]
fn injected_participant_changes_and_messages_update_the_store() {
    let g = Gateway::start();
    let key = g.key("org_c", &["read", "manage"]);
    let s = synced_example(&g, &key);
    let inject = |event: &str, payload: Value| {
        let r = g.admin_call(
            "POST",
            &format!("/sandbox/sessions/{s}/events"),
            Some(json!({"event": event, "payload": payload})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let contact = |lid: &str| g.get(&format!("/sessions/{s}/contacts/{lid}"), &key).json();
    let group_of = |c: &Value, gid: &str| {
        c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["jid"] == gid)
            .cloned()
    };

    // Promote with a new nickname.
    inject(
        "group.participants",
        json!({"group": HOOD, "action": "promote", "participants": [{"lid": ALICE, "tag": "Alice (admin)"}]}),
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            group_of(&contact(ALICE), HOOD)
                .is_some_and(|m| m["role"] == "admin" && m["tag"] == "Alice (admin)")
        }),
        "{}",
        contact(ALICE)
    );

    // Bob leaves the project group.
    inject(
        "group.participants",
        json!({"group": PROJECT, "action": "remove", "participants": [{"lid": BOB}]}),
    );
    assert!(wait_for(Duration::from_secs(10), || group_of(
        &contact(BOB),
        PROJECT
    )
    .is_none()));

    // A stranger writes in a group: a new identity with their push name, a membership.
    let stranger = "400000000000001@lid";
    inject(
        "message",
        json!({"id": "M1", "chat": PROJECT, "sender": stranger, "isGroup": true,
                             "pushName": "Newcomer", "timestamp": 1_800_000_000_000u64, "type": "text", "text": "hi"}),
    );
    assert!(wait_for(
        Duration::from_secs(10),
        || contact(stranger)["identity"]["name"] == "Newcomer"
    ));
    let c = contact(stranger);
    assert_eq!(c["dm"], false);
    let m = group_of(&c, PROJECT).unwrap();
    assert_eq!(m["role"], "member");
    assert_eq!(m["lastSeen"], 1_800_000_000_000u64);

    // A person known only by phone and one known only by LID turn out to be one: merged.
    inject(
        "contacts.upsert",
        json!({"source": "contact_sync", "contacts": [{"jid": "33612345678@s.whatsapp.net", "name": "Zoé"}]}),
    );
    inject(
        "message",
        json!({"id": "M2", "chat": "400000000000002@lid", "sender": "400000000000002@lid", "isGroup": false,
                             "pushName": "zoe", "timestamp": 1_800_000_000_001u64, "type": "text"}),
    );
    assert!(wait_for(Duration::from_secs(10), || contact(
        "400000000000002@lid"
    )["identity"]["id"]
        .is_u64()));
    let before = all_contacts(&g, &key, &s, "", 200).len();
    inject(
        "lid.mapping",
        json!({"mappings": [{"lid": "400000000000002@lid", "jid": "33612345678@s.whatsapp.net"}]}),
    );
    assert!(wait_for(Duration::from_secs(10), || contact(
        "400000000000002@lid"
    )["identity"]["phoneNumber"]
        == "33612345678"));
    let zoe = contact("400000000000002@lid");
    assert_eq!(zoe["identity"]["name"], "Zoé", "the address-book name wins");
    assert_eq!(zoe["dm"], true, "the DM moved with the merge");
    assert_eq!(all_contacts(&g, &key, &s, "", 200).len(), before - 1);
    let by_phone = g
        .get(
            &format!("/sessions/{s}/contacts/33612345678@s.whatsapp.net"),
            &key,
        )
        .json();
    assert_eq!(by_phone["identity"]["id"], zoe["identity"]["id"]);

    // A malformed event is refused by the plugin and changes nothing.
    inject(
        "group.participants",
        json!({"group": "not-a-group", "action": "add", "participants": []}),
    );
    assert_eq!(all_contacts(&g, &key, &s, "", 200).len(), before - 1);
}

#[test]
fn paging_a_large_world_returns_every_contact_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world.json");
    let n = 300;
    let contacts: Vec<Value> = (0..n)
        .map(|i| {
            json!({"lid": format!("{}@lid", 500000000000000u64 + i), "phone": format!("1555{:07}", i),
                   "name": format!("Person {i:03}"), "dm": i % 3 == 0})
        })
        .collect();
    let members: Vec<Value> = (0..40)
        .map(|i| json!({"lid": format!("{}@lid", 500000000000000u64 + i * 7)}))
        .collect();
    std::fs::write(
        &world,
        json!({"contacts": contacts, "groups": [{"jid": "120363000000000001@g.us", "subject": "Big", "participants": members}]}).to_string(),
    )
    .unwrap();
    let g = Gateway::with(Options {
        world: Some(world),
        ..Options::default()
    });
    let key = g.key("org_many", &["read", "manage"]);
    let s = synced(&g, &key, n as usize);

    let all = all_contacts(&g, &key, &s, "", 7);
    assert_eq!(all.len(), n as usize);
    let mut ids: Vec<u64> = all.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    let sorted = {
        let mut v = ids.clone();
        v.sort();
        v
    };
    assert_eq!(ids, sorted, "pages come in id order");
    ids.dedup();
    assert_eq!(ids.len(), n as usize, "no contact twice");

    // Filters page the same way.
    assert_eq!(all_contacts(&g, &key, &s, "source=dm", 7).len(), 100);
    assert_eq!(all_contacts(&g, &key, &s, "source=group", 7).len(), 40);
    assert_eq!(
        all_contacts(&g, &key, &s, "group=120363000000000001%40g.us", 7).len(),
        40
    );
    assert_eq!(
        all_contacts(&g, &key, &s, "q=person%2012", 7).len(),
        10,
        "Person 120-129"
    );
    assert_eq!(all_contacts(&g, &key, &s, "q=%2B15550000299", 7).len(), 1);
    // limit 0 means the default page.
    assert_eq!(
        g.get(&format!("/sessions/{s}/contacts?limit=0"), &key)
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}

#[test]
fn list_filters_and_bad_queries() {
    let g = Gateway::start();
    let key = g.key("org_c", &["read", "manage"]);
    let s = synced_example(&g, &key);
    let names = |q: &str| -> Vec<String> {
        all_contacts(&g, &key, &s, q, 50)
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let dms = names("source=dm");
    assert!(dms.contains(&"Alice".to_owned()) && dms.contains(&"Bob Martin".to_owned()));
    assert!(!dms.contains(&"Farid".to_owned()));
    let in_project = names(&format!("group={}", PROJECT.replace('@', "%40")));
    assert_eq!(in_project.len(), 4, "{in_project:?}");
    assert_eq!(names("q=ALI"), vec!["Alice"]);
    assert_eq!(names("q=acme"), vec!["Alice"], "business names match too");
    assert_eq!(names("q=4155550"), vec!["Bob Martin"]);
    let first = &all_contacts(&g, &key, &s, "q=alice", 50)[0];
    for f in [
        "id",
        "lid",
        "name",
        "businessName",
        "phoneJid",
        "phoneNumber",
        "firstSeenAt",
        "updatedAt",
    ] {
        assert!(first.get(f).is_some(), "identity lacks {f}");
    }
    for (q, field) in [
        ("source=email", "source"),
        ("group=123", "group"),
        ("limit=x", "limit"),
        ("cursor=zz", "cursor"),
    ] {
        let r = g.get(&format!("/sessions/{s}/contacts?{q}"), &key);
        r.assert_error(400, "validation_error");
        assert_eq!(r.json()["error"]["details"]["field"], field, "{q}");
    }
}

#[test]
fn live_operations_on_the_sandbox() {
    let g = Gateway::start();
    let key = g.key("org_c", &["read", "send", "manage"]);
    let s = g.working_session(&key);
    let base = format!("/sessions/{s}/contacts");

    let r = g.get(&format!("{base}/check?phone=%2B62%20812-3456-7890"), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"query": "6281234567890", "isOnWhatsApp": true, "jid": "6281234567890@s.whatsapp.net", "lid": ALICE})
    );
    let r = g.get(&format!("{base}/check?phone=4915700000000"), &key);
    assert_eq!(
        r.json(),
        json!({"query": "4915700000000", "isOnWhatsApp": false, "jid": null, "lid": null})
    );
    g.get(&format!("{base}/check"), &key)
        .assert_error(400, "validation_error");
    g.get(&format!("{base}/check?phone=abc"), &key)
        .assert_error(400, "validation_error");

    let r = g.get(
        &format!("{base}/6281234567890%40s.whatsapp.net/picture"),
        &key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(p["id"], "1719662400");
    assert!(
        p["url"]
            .as_str()
            .unwrap()
            .starts_with("https://pps.whatsapp.net/")
    );
    assert_eq!(p["type"], "image");
    assert!(p["directPath"].as_str().unwrap().starts_with("/v/"));
    // Hidden by privacy, and no picture at all: 404.
    g.get(&format!("{base}/{BOB}/picture"), &key)
        .assert_error(404, "not_found");
    g.get(&format!("{base}/447700900123@s.whatsapp.net/picture"), &key)
        .assert_error(404, "not_found");
    g.get(&format!("{base}/garbage/picture"), &key)
        .assert_error(400, "validation_error");

    assert_eq!(
        g.get(&format!("{base}/{ALICE}/about"), &key).json(),
        json!({"about": "Building things at Acme"})
    );
    assert_eq!(
        g.get(&format!("{base}/447700900123@s.whatsapp.net/about"), &key)
            .json(),
        json!({"about": ""})
    );

    // The world starts with Jonas blocked.
    let blocked = g.get(&format!("{base}/blocked"), &key).json();
    assert_eq!(blocked["data"].as_array().unwrap().len(), 1);
    assert_eq!(blocked["data"][0]["lid"], "300991234567008@lid");
    assert_eq!(blocked["data"][0]["jid"], "4915123456789@s.whatsapp.net");

    // Block and unblock are idempotent.
    for _ in 0..2 {
        let r = g.post(&format!("{base}/{BOB}/block"), &key, json!({}));
        assert_eq!(r.status, 204, "{}", r.text());
        assert!(r.body.is_empty());
    }
    let blocked = g.get(&format!("{base}/blocked"), &key).json();
    assert_eq!(blocked["data"].as_array().unwrap().len(), 2);
    assert!(
        blocked["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["lid"] == BOB && b["blockedAt"].as_u64().is_some())
    );
    for _ in 0..2 {
        assert_eq!(
            g.post(
                &format!("{base}/14155550123%40s.whatsapp.net/unblock"),
                &key,
                json!({})
            )
            .status,
            204
        );
    }
    assert_eq!(
        g.get(&format!("{base}/blocked"), &key).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    g.post(&format!("{base}/not-a-jid/block"), &key, json!({}))
        .assert_error(400, "validation_error");
    g.post(&format!("{base}/{PROJECT}/block"), &key, json!({}))
        .assert_error(400, "validation_error");
}

#[test]
fn live_calls_answer_501_when_the_connection_drops_and_stored_reads_still_work() {
    let g = Gateway::start();
    let key = g.key("org_c", &["read", "send", "manage"]);
    let s = synced_example(&g, &key);
    let r = g.admin_call("POST", &format!("/sandbox/sessions/{s}/disconnect"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let st = g.wait_status(&s, &key, "starting");
    assert!(
        st["statusReason"]
            .as_str()
            .unwrap()
            .contains("connection lost")
    );
    let base = format!("/sessions/{s}/contacts");
    for (method, path) in live_operations(&base) {
        g.call(method, &path, &key, (method == "POST").then(|| json!({})))
            .assert_error(501, "not_implemented");
    }
    assert_eq!(g.get(&base, &key).status, 200);
    assert_eq!(g.get(&format!("{base}/{ALICE}"), &key).status, 200);

    // Restored: live again. Stopped: stored reads still work, live calls 501.
    assert_eq!(
        g.admin_call("POST", &format!("/sandbox/sessions/{s}/reconnect"), None)
            .status,
        200
    );
    g.wait_status(&s, &key, "working");
    assert_eq!(g.get(&format!("{base}/{ALICE}/about"), &key).status, 200);
    g.post(&format!("/sessions/{s}:stop"), &key, json!({}));
    g.get(&format!("{base}/{ALICE}/about"), &key)
        .assert_error(501, "not_implemented");
    assert_eq!(g.get(&format!("{base}/{ALICE}"), &key).status, 200);
}

#[test]
fn tenancy_and_capabilities() {
    let g = Gateway::start();
    let owner = g.key("org_owner", &["read", "send", "manage"]);
    let other = g.key("org_other", &["read", "send", "manage"]);
    let read_only = g.key("org_owner", &["read"]);
    let s = synced_example(&g, &owner);
    let base = format!("/sessions/{s}/contacts");
    let stored = [("GET", base.clone()), ("GET", format!("{base}/{ALICE}"))];
    for (method, path) in stored.into_iter().chain(live_operations(&base)) {
        g.call(method, &path, &other, (method == "POST").then(|| json!({})))
            .assert_error(404, "not_found");
    }
    let r = g.post(&format!("{base}/{ALICE}/block"), &read_only, json!({}));
    r.assert_error(403, "forbidden");
    assert_eq!(r.json()["error"]["details"]["required"], "send");
    g.post(&format!("{base}/{ALICE}/unblock"), &read_only, json!({}))
        .assert_error(403, "forbidden");
    // Reading is what a read key is for.
    assert_eq!(g.get(&format!("{base}/{ALICE}"), &read_only).status, 200);
    // Nothing was blocked by the refused calls.
    assert_eq!(
        g.get(&format!("{base}/blocked"), &owner).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn the_store_survives_a_restart_and_is_removed_with_the_session() {
    let mut g = Gateway::start();
    let key = g.key("org_c", &["read", "manage"]);
    let s = synced_example(&g, &key);
    let before = g
        .get(&format!("/sessions/{s}/contacts/{ALICE}"), &key)
        .json();
    g.post(&format!("/sessions/{s}:stop"), &key, json!({}));
    g.restart();
    let after = g
        .get(&format!("/sessions/{s}/contacts/{ALICE}"), &key)
        .json();
    assert_eq!(after, before);
    assert_eq!(g.delete(&format!("/sessions/{s}"), &key).status, 204);
    let again = g.create_session(&key, json!({}));
    g.get(&format!("/sessions/{again}/contacts/{ALICE}"), &key)
        .assert_error(404, "not_found");
}
