//! The contact store and operations against the SDK's in-memory host: identities merged
//! from events, memberships, paging with and without filters, and the LIVE calls.

use super::Contacts;
use gateway_sdk::json;
use gateway_sdk::testing::{FakeContact, TestHost};
use serde_json::Value;

const ALICE_LID: &str = "205227043110953@lid";
const ALICE_PN: &str = "6281234567890@s.whatsapp.net";
const GROUP: &str = "120363021234567890@g.us";

fn setup() -> (TestHost, String) {
    let host = TestHost::new::<Contacts>();
    let s = host.add_session();
    (host, s)
}

fn contact(host: &TestHost, s: &str, jid: &str) -> Value {
    let r = host.get(&format!("/sessions/{s}/contacts/{jid}"));
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json()
}

#[test]
fn a_lid_only_and_a_phone_only_identity_merge_when_a_mapping_links_them() {
    let (host, s) = setup();
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"jid": ALICE_PN, "name": "Alice"}]}),
    )
    .unwrap();
    host.event(&s, "chats.upsert", json!({"chats": [{"jid": ALICE_LID}]}))
        .unwrap();
    host.event(
        &s,
        "group.participants",
        json!({"group": GROUP, "action": "add", "participants": [{"lid": ALICE_LID, "tag": "~Al"}]}),
    )
    .unwrap();
    // Two people so far: one known by phone, one by LID.
    let all = host.get(&format!("/sessions/{s}/contacts")).json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);

    host.event(
        &s,
        "lid.mapping",
        json!({"mappings": [{"lid": ALICE_LID, "jid": ALICE_PN}]}),
    )
    .unwrap();
    let all = host.get(&format!("/sessions/{s}/contacts")).json();
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    let by_lid = contact(&host, &s, ALICE_LID);
    let by_phone = contact(&host, &s, &ALICE_PN.replace('@', "%40"));
    assert_eq!(by_lid, by_phone);
    assert_eq!(by_lid["identity"]["name"], "Alice");
    assert_eq!(by_lid["identity"]["phoneNumber"], "6281234567890");
    assert_eq!(by_lid["dm"], true);
    assert_eq!(by_lid["groups"][0]["jid"], GROUP);
    assert_eq!(by_lid["groups"][0]["tag"], "~Al");
    assert_eq!(by_lid["groups"][0]["role"], "member");
}

#[test]
fn a_person_whose_lid_changes_is_found_by_the_new_lid_only() {
    let (host, s) = setup();
    let map = |lid: &str| json!({"mappings": [{"lid": lid, "jid": ALICE_PN}]});
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"jid": ALICE_PN, "name": "Alice"}]}),
    )
    .unwrap();
    host.event(&s, "lid.mapping", map(ALICE_LID)).unwrap();
    assert_eq!(contact(&host, &s, ALICE_LID)["identity"]["lid"], ALICE_LID);

    let new_lid = "99887766554433@lid";
    host.event(&s, "lid.mapping", map(new_lid)).unwrap();
    let moved = contact(&host, &s, new_lid);
    assert_eq!(moved["identity"]["lid"], new_lid);
    assert_eq!(moved["identity"]["name"], "Alice");
    assert_eq!(moved, contact(&host, &s, &ALICE_PN.replace('@', "%40")));
    // The answer stored under the old LID went with it.
    let old = host.get(&format!("/sessions/{s}/contacts/{ALICE_LID}"));
    assert_eq!(old.status, 404, "{:?}", old.json());
    assert_eq!(old.json()["error"]["code"], "not_found");

    // A later change is seen under the LID too.
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"jid": ALICE_PN, "name": "Alice Smith"}]}),
    )
    .unwrap();
    assert_eq!(
        contact(&host, &s, new_lid)["identity"]["name"],
        "Alice Smith"
    );
}

#[test]
fn group_metadata_sets_roles_and_removes_members_who_left() {
    let (host, s) = setup();
    let members = |list: Value| json!({"groups": [{"jid": GROUP, "subject": "Project Team", "participants": list}]});
    host.event(
        &s,
        "groups.upsert",
        members(json!([{"lid": ALICE_LID, "role": "admin"}, {"lid": "1@lid"}])),
    )
    .unwrap();
    let alice = contact(&host, &s, ALICE_LID);
    assert_eq!(alice["groups"][0]["role"], "admin");
    assert_eq!(alice["groups"][0]["name"], "Project Team");
    host.event(&s, "groups.upsert", members(json!([{"lid": "1@lid"}])))
        .unwrap();
    assert_eq!(contact(&host, &s, ALICE_LID)["groups"], json!([]));
    let in_group = host
        .get(&format!("/sessions/{s}/contacts?group={GROUP}"))
        .json();
    assert_eq!(in_group["data"].as_array().unwrap().len(), 1);
    assert_eq!(in_group["data"][0]["lid"], "1@lid");
    // A rename reaches every member's membership.
    host.event(
        &s,
        "groups.upsert",
        json!({"groups": [{"jid": GROUP, "subject": "Renamed"}]}),
    )
    .unwrap();
    assert_eq!(contact(&host, &s, "1@lid")["groups"][0]["name"], "Renamed");
}

#[test]
fn pages_visit_every_contact_once_with_and_without_filters() {
    let (host, s) = setup();
    let people: Vec<Value> = (0..45)
        .map(|i| {
            json!({"lid": format!("{}@lid", 1000 + i), "jid": format!("1555000{:04}@s.whatsapp.net", i),
                   "name": if i % 3 == 0 { format!("Team {i}") } else { format!("Other {i}") }})
        })
        .collect();
    host.event(&s, "contacts.upsert", json!({"contacts": people}))
        .unwrap();
    let dms: Vec<Value> = (0..45)
        .filter(|i| i % 2 == 0)
        .map(|i| json!({"jid": format!("{}@lid", 1000 + i)}))
        .collect();
    host.event(&s, "chats.upsert", json!({"chats": dms}))
        .unwrap();

    let walk = |query: &str| -> Vec<String> {
        host.collect_pages(&format!("/sessions/{s}/contacts?limit=7{query}"))
            .iter()
            .map(|c| c["lid"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = walk("");
    assert_eq!(all.len(), 45);
    let mut dedup = all.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 45);
    assert_eq!(walk("&source=dm").len(), 23);
    assert_eq!(walk("&q=team").len(), 15);
    assert_eq!(walk("&q=team&source=dm").len(), 8);
    assert_eq!(walk("&q=%2B1555").len(), 45);
    let bad = host.get(&format!("/sessions/{s}/contacts?source=sms"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["details"]["field"], "source");
    let bad_group = host.get(&format!("/sessions/{s}/contacts?group=nope"));
    assert_eq!(bad_group.status, 400);
}

#[test]
fn unknown_contacts_are_404_and_malformed_jids_400() {
    let (host, s) = setup();
    let r = host.get(&format!("/sessions/{s}/contacts/999@lid"));
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("not_found"));
    let r = host.get(&format!("/sessions/{s}/contacts/not-a-jid"));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["details"]["field"], "lid");
}

#[test]
fn live_calls_use_the_connection_and_answer_501_without_it() {
    let (host, s) = setup();
    host.whatsapp().add_contact(FakeContact {
        phone: "6281234567890".into(),
        lid: ALICE_LID.into(),
        about: "Hey there".into(),
        picture: Some("pic1".into()),
        picture_hidden: false,
    });
    let check = host.get(&format!(
        "/sessions/{s}/contacts/check?phone=%2B6281234567890"
    ));
    assert_eq!(check.status, 200);
    assert_eq!(check.json()["lid"], ALICE_LID);
    assert_eq!(check.json()["isOnWhatsApp"], true);
    assert_eq!(
        host.get(&format!("/sessions/{s}/contacts/check")).status,
        400
    );
    let about = host.get(&format!("/sessions/{s}/contacts/{ALICE_PN}/about"));
    assert_eq!(about.json()["about"], "Hey there");
    let pic = host.get(&format!("/sessions/{s}/contacts/{ALICE_LID}/picture"));
    assert_eq!(pic.json()["type"], "image");
    for _ in 0..2 {
        let r = host.post(
            &format!("/sessions/{s}/contacts/{ALICE_PN}/block"),
            json!({}),
        );
        assert_eq!(r.status, 204);
    }
    assert_eq!(host.whatsapp().blocked(), vec![ALICE_LID.to_owned()]);
    let list = host.get(&format!("/sessions/{s}/contacts/blocked")).json();
    assert_eq!(list["data"][0]["jid"], ALICE_LID);
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/contacts/{ALICE_LID}/unblock"),
            json!({})
        )
        .status,
        204
    );
    assert!(host.whatsapp().blocked().is_empty());

    host.whatsapp().set_connected(false);
    let r = host.get(&format!("/sessions/{s}/contacts/{ALICE_LID}/about"));
    assert_eq!(r.status, 501);
    assert_eq!(r.error_code().as_deref(), Some("not_implemented"));
    // STORED reads still answer.
    assert_eq!(host.get(&format!("/sessions/{s}/contacts")).status, 200);
}

#[test]
fn a_read_only_caller_cannot_block() {
    let host = TestHost::new::<Contacts>();
    let s = host.add_session();
    let host = host.caller("org_test", &[gateway_sdk::Capability::Read]);
    let r = host.post(
        &format!("/sessions/{s}/contacts/{ALICE_LID}/block"),
        json!({}),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code().as_deref(), Some("forbidden"));
}
