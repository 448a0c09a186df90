//! The chat store and the six operations against the SDK's in-memory host: order and
//! filters, paging, validation and its statuses, local and synced changes, unread
//! counters and receipts, one chat per person by LID and phone, and the events emitted.

use super::Chats;
use gateway_sdk::chats::ChatState;
use gateway_sdk::testing::TestHost;
use gateway_sdk::{Capability, json};
use serde_json::Value;

const ALICE_LID: &str = "205227043110953@lid";
const ALICE_PN: &str = "6281234567890@s.whatsapp.net";
const BOB_PN: &str = "14155550123@s.whatsapp.net";
const GROUP: &str = "120363021234567890@g.us";
/// An event time before any change the tests make through the API.
const PAST: u64 = 1_719_662_400_000;

fn setup() -> (TestHost, String) {
    let host = TestHost::new::<Chats>();
    let s = host.add_session();
    (host, s)
}

/// Epoch ms now: API changes are stamped with the clock, so events meant to come after
/// them are published after it.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn incoming(id: &str, chat: &str, sender: &str, text: &str, ts: u64) -> Value {
    json!({"id": id, "chat": chat, "sender": sender, "fromMe": false,
           "isGroup": chat.ends_with("@g.us"), "timestamp": ts, "type": "text", "text": text})
}

fn chat(host: &TestHost, s: &str, cid: &str) -> Value {
    let r = host.get(&format!("/sessions/{s}/chats/{cid}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn jids(host: &TestHost, path: &str) -> Vec<String> {
    host.collect_pages(path)
        .iter()
        .map(|c| c["jid"].as_str().unwrap().to_owned())
        .collect()
}

/// Three DMs and a group with messages at different times.
fn some_chats(host: &TestHost, s: &str) {
    host.event(
        s,
        "chats.upsert",
        json!({"chats": [{"jid": ALICE_PN, "lid": ALICE_LID}, {"jid": BOB_PN}, {"jid": "15550009999@s.whatsapp.net"}]}),
    )
    .unwrap();
    host.event(
        s,
        "groups.upsert",
        json!({"groups": [{"jid": GROUP, "subject": "Project Team"}]}),
    )
    .unwrap();
    host.event(
        s,
        "message",
        incoming("m1", BOB_PN, BOB_PN, "hi", PAST + 1_000),
    )
    .unwrap();
    host.event(
        s,
        "message",
        incoming("m2", GROUP, ALICE_LID, "meeting?", PAST + 2_000),
    )
    .unwrap();
}

#[test]
fn chats_list_pinned_first_then_newest_message_then_jid() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let path = format!("/sessions/{s}/chats");
    assert_eq!(
        jids(&host, &path),
        [GROUP, BOB_PN, "15550009999@s.whatsapp.net", ALICE_PN],
        "newest message first; chats without messages last, by jid"
    );
    let r = host.patch(
        &format!("/sessions/{s}/chats/{ALICE_LID}"),
        json!({"pinned": true}),
    );
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["pinned"], true);
    assert_eq!(
        jids(&host, &path),
        [ALICE_PN, GROUP, BOB_PN, "15550009999@s.whatsapp.net"]
    );
    let group = chat(&host, &s, GROUP);
    assert_eq!(group["type"], "group");
    assert_eq!(group["name"], "Project Team");
    assert_eq!(group["lid"], Value::Null);
    assert_eq!(group["sessionId"], s);
    assert_eq!(group["lastMessage"]["preview"], "meeting?");
    assert_eq!(group["lastMessageAt"], PAST + 2_000);
}

#[test]
fn filters_narrow_the_list_and_bad_values_are_400() {
    let (host, s) = setup();
    some_chats(&host, &s);
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"jid": BOB_PN, "name": "Bob Builder"}]}),
    )
    .unwrap();
    host.patch(
        &format!("/sessions/{s}/chats/{BOB_PN}"),
        json!({"archived": true}),
    );
    let list = |q: &str| jids(&host, &format!("/sessions/{s}/chats?{q}"));
    assert_eq!(list("archived=true"), [BOB_PN]);
    assert_eq!(list("archived=false").len(), 3);
    assert_eq!(list("type=group"), [GROUP]);
    assert_eq!(list("type=dm").len(), 3);
    assert_eq!(list("unread=true"), [GROUP, BOB_PN]);
    assert_eq!(
        list("unread=false"),
        ["15550009999@s.whatsapp.net", ALICE_PN]
    );
    assert_eq!(list("q=builder"), [BOB_PN]);
    assert_eq!(list("q=PROJECT"), [GROUP]);
    assert_eq!(list("q=%2B1415"), [BOB_PN]);
    assert_eq!(list("q=205227"), [ALICE_PN], "digits of the LID match too");
    assert_eq!(list("type=dm&unread=true&archived=true"), [BOB_PN]);
    for bad in [
        "archived=yes",
        "type=channel",
        "unread=1",
        "limit=ten",
        "cursor=!!",
    ] {
        let r = host.get(&format!("/sessions/{s}/chats?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code().as_deref(), Some("validation_error"));
    }
    let long = "x".repeat(101);
    assert_eq!(
        host.get(&format!("/sessions/{s}/chats?q={long}")).status,
        400
    );
}

#[test]
fn pages_visit_every_chat_once_with_and_without_filters() {
    let (host, s) = setup();
    let chats: Vec<Value> = (0..45)
        .map(|i| json!({"jid": format!("1555000{i:04}@s.whatsapp.net")}))
        .collect();
    host.event(&s, "chats.upsert", json!({"chats": chats}))
        .unwrap();
    // A third of them have messages, some at the same time (then ordered by jid).
    for i in (0..45).step_by(3) {
        let jid = format!("1555000{i:04}@s.whatsapp.net");
        let m = incoming(&format!("m{i}"), &jid, &jid, "hello", PAST + (i / 6) as u64);
        host.event(&s, "message", m).unwrap();
    }
    let all = jids(&host, &format!("/sessions/{s}/chats?limit=7"));
    assert_eq!(all.len(), 45);
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 45);
    // The order of a single page of 200 is the order the pages walked.
    let one_page = host.get(&format!("/sessions/{s}/chats?limit=200")).json();
    let in_one: Vec<&str> = one_page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["jid"].as_str().unwrap())
        .collect();
    assert_eq!(in_one, all);
    assert_eq!(one_page["nextCursor"], Value::Null);
    assert_eq!(
        jids(&host, &format!("/sessions/{s}/chats?limit=4&unread=true")).len(),
        15
    );
    assert_eq!(
        jids(&host, &format!("/sessions/{s}/chats?limit=4&q=1555000001")).len(),
        10
    );
    let first = host.get(&format!("/sessions/{s}/chats?limit=7")).json();
    assert_eq!(first["data"].as_array().unwrap().len(), 7);
    assert!(first["nextCursor"].is_string());
}

#[test]
fn malformed_chat_ids_are_400_and_unknown_ones_404() {
    let (host, s) = setup();
    let base = format!("/sessions/{s}/chats");
    for bad in ["not-a-jid", "abc@s.whatsapp.net", "123@example.com"] {
        assert_eq!(host.get(&format!("{base}/{bad}")).status, 400, "{bad}");
        assert_eq!(
            host.patch(&format!("{base}/{bad}"), json!({"pinned": true}))
                .status,
            400
        );
        assert_eq!(host.delete(&format!("{base}/{bad}")).status, 400);
        assert_eq!(
            host.post(&format!("{base}/{bad}/read"), json!({})).status,
            400
        );
        assert_eq!(
            host.put(
                &format!("{base}/{bad}/presence"),
                json!({"state": "paused"})
            )
            .status,
            400
        );
    }
    let r = host.get(&format!("{base}/120363025246125486@newsletter"));
    assert_eq!(r.status, 400, "a channel is not a chat here");
    assert_eq!(r.json()["error"]["details"]["field"], "cid");
    let unknown = "999@lid";
    let r = host.get(&format!("{base}/{unknown}"));
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("not_found"));
    assert_eq!(
        host.patch(&format!("{base}/{unknown}"), json!({"pinned": true}))
            .status,
        404
    );
    assert_eq!(host.delete(&format!("{base}/{unknown}")).status, 404);
    assert_eq!(
        host.post(&format!("{base}/{unknown}/read"), json!({}))
            .status,
        404
    );
    // A contact known only by name has no chat.
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"jid": BOB_PN, "name": "Bob"}]}),
    )
    .unwrap();
    assert_eq!(host.get(&format!("{base}/{BOB_PN}")).status, 404);
    assert!(host.emitted().is_empty());
}

#[test]
fn update_validation_answers_422() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let path = format!("/sessions/{s}/chats/{BOB_PN}");
    let past = now() as i64 - 1_000;
    for (body, field) in [
        (json!({}), None),
        (json!({"sync": true}), None),
        (json!({"unmute": false}), None),
        (json!({"archived": "yes"}), None),
        (json!({"archived": null}), None),
        (json!({"pinned": true, "colour": "red"}), None),
        (json!({"mutedUntil": past}), Some("mutedUntil")),
        (json!({"mutedUntil": 0}), Some("mutedUntil")),
        (json!({"mutedUntil": -2}), Some("mutedUntil")),
    ] {
        let r = host.patch(&path, body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.json());
        assert_eq!(r.error_code().as_deref(), Some("validation_error"));
        if let Some(f) = field {
            assert_eq!(r.json()["error"]["details"]["field"], f);
        }
    }
    let r = host.request_bytes("PATCH", &path, b"{not json".to_vec());
    assert_eq!(r.status, 422);
    assert!(
        host.emitted().is_empty(),
        "nothing changed, nothing emitted"
    );
    // Elsewhere validation is 400.
    let r = host.post(
        &format!("/sessions/{s}/chats/{BOB_PN}/read"),
        json!({"receipt": true}),
    );
    assert_eq!(r.status, 400);
    let r = host.delete(&format!("/sessions/{s}/chats/{BOB_PN}?sync=maybe"));
    assert_eq!(r.status, 400);
}

#[test]
fn update_is_partial_mutes_and_unmute_wins() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let path = format!("/sessions/{s}/chats/{BOB_PN}");
    let until = now() as i64 + 3_600_000;
    let r = host.patch(&path, json!({"mutedUntil": until, "archived": true}));
    assert_eq!(r.status, 200);
    let c = r.json();
    assert_eq!(
        (
            c["mutedUntil"].as_i64(),
            c["archived"].as_bool(),
            c["pinned"].as_bool()
        ),
        (Some(until), Some(true), Some(false))
    );
    let c = host.patch(&path, json!({"pinned": true})).json();
    assert_eq!(
        (
            c["mutedUntil"].as_i64(),
            c["archived"].as_bool(),
            c["pinned"].as_bool()
        ),
        (Some(until), Some(true), Some(true)),
        "fields left out stay"
    );
    assert_eq!(
        host.patch(&path, json!({"mutedUntil": -1})).json()["mutedUntil"],
        -1
    );
    let c = host
        .patch(&path, json!({"unmute": true, "mutedUntil": until}))
        .json();
    assert_eq!(c["mutedUntil"], Value::Null, "unmute overrides mutedUntil");
    assert!(c["updatedAt"].as_u64().unwrap() >= now() - 60_000);
    // A mute that has run out reads as none.
    host.event_at(
        &s,
        "chats.update",
        json!({"jid": BOB_PN, "mutedUntil": PAST + 5, "source": "phone"}),
        now() + 1,
    )
    .unwrap();
    assert_eq!(chat(&host, &s, BOB_PN)["mutedUntil"], Value::Null);
}

#[test]
fn updates_are_local_unless_synced_and_sync_needs_the_connection() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let path = format!("/sessions/{s}/chats/{ALICE_LID}");
    host.whatsapp().set_connected(false);
    let r = host.patch(&path, json!({"archived": true}));
    assert_eq!(r.status, 200, "local changes work while disconnected");
    assert!(host.chats().settings().is_empty());

    let r = host.patch(&path, json!({"pinned": true, "sync": true}));
    assert_eq!(r.status, 501);
    assert_eq!(r.error_code().as_deref(), Some("not_implemented"));
    assert_eq!(chat(&host, &s, ALICE_PN)["pinned"], false, "nothing stored");
    assert_eq!(host.emitted().len(), 1, "only the local change was emitted");

    host.whatsapp().set_connected(true);
    let until = now() as i64 + 60_000;
    let r = host.patch(
        &path,
        json!({"pinned": true, "mutedUntil": until, "sync": true}),
    );
    assert_eq!(r.status, 200);
    let applied = host.chats().settings();
    assert_eq!(applied.len(), 1);
    let (jid, settings) = &applied[0];
    assert_eq!(jid, ALICE_PN, "applied on the chat's address");
    assert_eq!(
        (settings.archived, settings.pinned, settings.muted_until),
        (None, Some(true), Some(until))
    );
    host.patch(&path, json!({"unmute": true, "sync": true}));
    assert_eq!(host.chats().settings()[1].1.muted_until, Some(0));
}

#[test]
fn delete_is_local_by_default_and_the_chat_returns_on_new_activity() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let path = format!("/sessions/{s}/chats/{BOB_PN}");
    let r = host.delete(&path);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert!(host.chats().deleted().is_empty());
    assert_eq!(host.get(&path).status, 404);
    assert_eq!(host.delete(&path).status, 404);
    let emitted = host.emitted();
    assert_eq!(emitted.len(), 1);
    assert_eq!(emitted[0].name, "chats.delete");
    assert_eq!(emitted[0].payload, json!({"jid": BOB_PN, "source": "api"}));
    assert_eq!(emitted[0].session.as_deref(), Some(s.as_str()));
    // A sync of what exists does not bring it back; an older message neither.
    host.event_at(
        &s,
        "chats.upsert",
        json!({"chats": [{"jid": BOB_PN}]}),
        now() + 10,
    )
    .unwrap();
    host.event(&s, "message", incoming("old", BOB_PN, BOB_PN, "old", PAST))
        .unwrap();
    assert_eq!(host.get(&path).status, 404);
    // New activity does, with only the new message unread.
    host.event_at(
        &s,
        "message",
        incoming("new", BOB_PN, BOB_PN, "again", now()),
        now() + 20,
    )
    .unwrap();
    let c = chat(&host, &s, BOB_PN);
    assert_eq!(
        (c["unreadCount"].as_u64(), c["archived"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(c["lastMessage"]["id"], "new");
    assert_eq!(c["id"].as_u64(), Some(2), "the same party, so the same id");

    host.whatsapp().set_connected(false);
    let r = host.delete(&format!("{path}?sync=true"));
    assert_eq!(r.status, 501);
    assert_eq!(host.get(&path).status, 200, "nothing deleted");
    host.whatsapp().set_connected(true);
    assert_eq!(host.delete(&format!("{path}?sync=true")).status, 204);
    assert_eq!(host.chats().deleted(), [BOB_PN]);
}

#[test]
fn phone_deletes_remove_the_chat_unless_changed_here_later() {
    let (host, s) = setup();
    some_chats(&host, &s);
    host.patch(
        &format!("/sessions/{s}/chats/{BOB_PN}"),
        json!({"pinned": true}),
    );
    host.event(
        &s,
        "chats.delete",
        json!({"jid": BOB_PN, "source": "phone"}),
    )
    .unwrap();
    assert_eq!(
        chat(&host, &s, BOB_PN)["pinned"],
        true,
        "the API change is later"
    );
    host.event_at(
        &s,
        "chats.delete",
        json!({"jid": BOB_PN, "source": "phone"}),
        now() + 5,
    )
    .unwrap();
    assert_eq!(
        host.get(&format!("/sessions/{s}/chats/{BOB_PN}")).status,
        404
    );
    // The plugin's own events coming back are not applied twice.
    host.event_at(
        &s,
        "chats.delete",
        json!({"jid": GROUP, "source": "api"}),
        now() + 6,
    )
    .unwrap();
    assert_eq!(chat(&host, &s, GROUP)["type"], "group");
}

#[test]
fn the_later_of_phone_and_api_changes_wins() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let path = format!("/sessions/{s}/chats/{BOB_PN}");
    host.patch(&path, json!({"archived": true}));
    // A phone change made before the API one arrives late: it loses.
    host.event(
        &s,
        "chats.update",
        json!({"jid": BOB_PN, "archived": false, "pinned": true, "source": "phone"}),
    )
    .unwrap();
    let c = chat(&host, &s, BOB_PN);
    assert_eq!(
        (c["archived"].as_bool(), c["pinned"].as_bool()),
        (Some(true), Some(true)),
        "each field by its own time: pinned was never set here"
    );
    // A later phone change wins.
    host.event_at(
        &s,
        "chats.update",
        json!({"jid": BOB_PN, "archived": false, "source": "phone"}),
        now() + 5,
    )
    .unwrap();
    assert_eq!(chat(&host, &s, BOB_PN)["archived"], false);
    // Echoes of the plugin's own changes are skipped.
    host.event_at(
        &s,
        "chats.update",
        json!({"jid": BOB_PN, "archived": true, "source": "api"}),
        now() + 10,
    )
    .unwrap();
    assert_eq!(chat(&host, &s, BOB_PN)["archived"], false);
    // The phone creates a chat the store has not seen.
    host.event(
        &s,
        "chats.update",
        json!({"jid": "15550001234@s.whatsapp.net", "mutedUntil": -1, "source": "phone"}),
    )
    .unwrap();
    assert_eq!(
        chat(&host, &s, "15550001234@s.whatsapp.net")["mutedUntil"],
        -1
    );
}

#[test]
fn unread_counts_incoming_messages_and_resets_when_read_or_answered() {
    let (host, s) = setup();
    let t = now();
    let msg = |id: &str, at: u64| {
        host.event_at(&s, "message", incoming(id, BOB_PN, BOB_PN, id, at), at)
            .unwrap()
    };
    msg("a1", t);
    msg("a2", t + 1);
    msg("a2", t + 1); // redelivered: counted once
    let unread = |host: &TestHost| chat(host, &s, BOB_PN)["unreadCount"].as_u64().unwrap();
    assert_eq!(unread(&host), 2);
    // Reactions, edits and revokes are not messages.
    for (name, payload) in [
        (
            "message.reaction",
            json!({"id": "a1", "chat": BOB_PN, "sender": BOB_PN, "fromMe": false, "emoji": "👍", "timestamp": t + 2}),
        ),
        (
            "message.edit",
            json!({"id": "a1", "chat": BOB_PN, "sender": BOB_PN, "fromMe": false, "text": "x", "timestamp": t + 2}),
        ),
        (
            "message.revoke",
            json!({"id": "a1", "chat": BOB_PN, "sender": BOB_PN, "fromMe": false, "by": BOB_PN, "timestamp": t + 2}),
        ),
    ] {
        host.event_at(&s, name, payload, t + 2).unwrap();
    }
    assert_eq!(unread(&host), 2);
    // The session writes from the phone: read.
    let mine = json!({"id": "b1", "chat": BOB_PN, "sender": "15550001111@s.whatsapp.net",
                      "fromMe": true, "isGroup": false, "timestamp": t + 3, "type": "text", "text": "ok"});
    host.event_at(&s, "message", mine, t + 3).unwrap();
    assert_eq!(unread(&host), 0);
    assert_eq!(chat(&host, &s, BOB_PN)["lastMessage"]["fromMe"], true);
    msg("a3", t + 4);
    assert_eq!(unread(&host), 1);
    // The session sends through the gateway: read once WhatsApp has it.
    host.event_at(
        &s,
        "message.status",
        json!({"id": "out1", "outboxId": "out_1", "chat": BOB_PN, "status": "pending", "timestamp": t + 5}),
        t + 5,
    )
    .unwrap();
    assert_eq!(unread(&host), 1);
    host.event_at(
        &s,
        "message.status",
        json!({"id": "out1", "outboxId": "out_1", "chat": BOB_PN, "status": "sent", "timestamp": t + 6}),
        t + 6,
    )
    .unwrap();
    let c = chat(&host, &s, BOB_PN);
    assert_eq!(c["unreadCount"], 0);
    assert_eq!(
        c["lastMessage"],
        json!({"id": "out1", "fromMe": true, "type": "unknown", "preview": ""})
    );
    assert_eq!(c["lastMessageAt"], t + 6);
    // The phone reads the chat.
    msg("a4", t + 7);
    host.event_at(
        &s,
        "chats.update",
        json!({"jid": BOB_PN, "unreadCount": 0, "source": "phone"}),
        t + 8,
    )
    .unwrap();
    assert_eq!(unread(&host), 0);
    // A message published before a read is not unread after it.
    host.event_at(
        &s,
        "message",
        incoming("a5", BOB_PN, BOB_PN, "x", t + 7),
        t + 7,
    )
    .unwrap();
    assert_eq!(unread(&host), 0);
}

#[test]
fn read_chat_resets_and_sends_receipts_for_the_unread_messages() {
    let (host, s) = setup();
    host.event(
        &s,
        "groups.upsert",
        json!({"groups": [{"jid": GROUP, "subject": "Team"}]}),
    )
    .unwrap();
    let t = now();
    for (i, sender) in [ALICE_LID, BOB_PN, ALICE_LID].iter().enumerate() {
        let at = t + i as u64;
        host.event_at(
            &s,
            "message",
            incoming(&format!("g{i}"), GROUP, sender, "hi", at),
            at,
        )
        .unwrap();
    }
    let path = format!("/sessions/{s}/chats/{GROUP}/read");
    assert_eq!(chat(&host, &s, GROUP)["unreadCount"], 3);

    host.whatsapp().set_connected(false);
    let r = host.post(&path, json!({"receipts": true}));
    assert_eq!(r.status, 501);
    assert_eq!(chat(&host, &s, GROUP)["unreadCount"], 3, "nothing changed");
    host.whatsapp().set_connected(true);

    let r = host.post(&path, json!({"receipts": true}));
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["unreadCount"], 0);
    let receipts = host.chats().receipts();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].0, GROUP);
    let keys: Vec<(&str, Option<&str>)> = receipts[0]
        .1
        .iter()
        .map(|k| (k.id.as_str(), k.sender.as_deref()))
        .collect();
    assert_eq!(
        keys,
        [
            ("g0", Some(ALICE_LID)),
            ("g1", Some(BOB_PN)),
            ("g2", Some(ALICE_LID))
        ]
    );
    // Idempotent; no messages left to acknowledge.
    let r = host.post(&path, json!({}));
    assert_eq!((r.status, r.json()["unreadCount"].as_u64()), (200, Some(0)));
    assert_eq!(host.chats().receipts().len(), 1);
    let r = host.post(&path, json!({"receipts": true}));
    assert_eq!(r.status, 200);
    assert!(host.chats().receipts()[1].1.is_empty());
    let update = host.emitted().pop().unwrap();
    assert_eq!(update.name, "chats.update");
    assert_eq!(
        update.payload,
        json!({"jid": GROUP, "unreadCount": 0, "source": "api"})
    );
}

#[test]
fn receipts_cover_the_latest_500_unread_messages() {
    let (host, s) = setup();
    let t = now();
    for i in 0..620u64 {
        host.event_at(
            &s,
            "message",
            incoming(&format!("m{i:04}"), BOB_PN, BOB_PN, "x", t + i),
            t + i,
        )
        .unwrap();
    }
    assert_eq!(chat(&host, &s, BOB_PN)["unreadCount"], 620);
    let r = host.post(
        &format!("/sessions/{s}/chats/{BOB_PN}/read"),
        json!({"receipts": true}),
    );
    assert_eq!(r.status, 200);
    let keys = &host.chats().receipts()[0].1;
    assert_eq!(keys.len(), 500);
    assert_eq!(keys.first().unwrap().id, "m0120");
    assert_eq!(keys.last().unwrap().id, "m0619");
}

#[test]
fn a_person_by_lid_and_by_phone_is_one_chat() {
    let (host, s) = setup();
    let t = now();
    // Alice writes by LID; the store knows her number only from contact sync.
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"jid": ALICE_PN, "name": "Alice"}]}),
    )
    .unwrap();
    host.event_at(
        &s,
        "message",
        incoming("l1", ALICE_LID, ALICE_LID, "by lid", t),
        t,
    )
    .unwrap();
    // And once by phone number (a second chat until the mapping is known).
    host.event_at(
        &s,
        "message",
        incoming("p1", ALICE_PN, ALICE_PN, "by phone", t + 1),
        t + 1,
    )
    .unwrap();
    host.patch(
        &format!("/sessions/{s}/chats/{ALICE_LID}"),
        json!({"archived": true}),
    );
    assert_eq!(jids(&host, &format!("/sessions/{s}/chats")).len(), 2);

    host.event_at(
        &s,
        "lid.mapping",
        json!({"mappings": [{"lid": ALICE_LID, "jid": ALICE_PN}]}),
        t + 2,
    )
    .unwrap();
    let list = host.collect_pages(&format!("/sessions/{s}/chats"));
    assert_eq!(list.len(), 1, "{list:?}");
    let by_lid = chat(&host, &s, ALICE_LID);
    let by_phone = chat(&host, &s, &ALICE_PN.replace('@', "%40"));
    assert_eq!(by_lid, by_phone);
    assert_eq!(by_lid["jid"], ALICE_PN);
    assert_eq!(by_lid["lid"], ALICE_LID);
    assert_eq!(by_lid["phoneJid"], ALICE_PN);
    assert_eq!(by_lid["name"], "Alice");
    assert_eq!(by_lid["unreadCount"], 2);
    assert_eq!(by_lid["archived"], true);
    assert_eq!(by_lid["lastMessage"]["preview"], "by phone");
    // Both messages are acknowledged, each on the address it came by.
    host.post(
        &format!("/sessions/{s}/chats/{ALICE_PN}/read"),
        json!({"receipts": true}),
    );
    let mut receipts: Vec<(String, Vec<String>)> = host
        .chats()
        .receipts()
        .into_iter()
        .map(|(c, keys)| (c, keys.into_iter().map(|k| k.id).collect()))
        .collect();
    receipts.sort();
    assert_eq!(
        receipts,
        [
            (ALICE_LID.to_owned(), vec!["l1".to_owned()]),
            (ALICE_PN.to_owned(), vec!["p1".to_owned()])
        ]
    );
    // Events name the chat by phone JID, with the LID beside it.
    assert_eq!(
        host.emitted().last().unwrap().payload,
        json!({"jid": ALICE_PN, "lid": ALICE_LID, "unreadCount": 0, "source": "api"})
    );
}

#[test]
fn a_dm_message_links_the_senders_lid_and_phone() {
    let (host, s) = setup();
    let m = json!({"id": "x1", "chat": ALICE_LID, "sender": ALICE_LID, "senderLid": ALICE_LID,
                   "senderJid": ALICE_PN, "fromMe": false, "isGroup": false, "pushName": "Alice W",
                   "timestamp": PAST, "type": "image", "text": "", "media": {"mimetype": "image/jpeg", "size": 1}});
    host.event(&s, "message", m).unwrap();
    let c = chat(&host, &s, ALICE_PN);
    assert_eq!(c["lid"], ALICE_LID);
    assert_eq!(c["name"], "Alice W");
    assert_eq!(
        c["lastMessage"],
        json!({"id": "x1", "fromMe": false, "type": "image", "preview": ""})
    );
    // A contact name beats the push name.
    host.event(
        &s,
        "contacts.upsert",
        json!({"contacts": [{"lid": ALICE_LID, "name": "Alice"}]}),
    )
    .unwrap();
    assert_eq!(chat(&host, &s, ALICE_LID)["name"], "Alice");
}

#[test]
fn previews_are_cut_to_100_characters_and_other_chats_ignored() {
    let (host, s) = setup();
    let long = "word ".repeat(60);
    host.event(&s, "message", incoming("l", BOB_PN, BOB_PN, &long, PAST))
        .unwrap();
    let preview = chat(&host, &s, BOB_PN)["lastMessage"]["preview"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(preview.chars().count(), 100);
    assert!(preview.ends_with('…'));
    let loc = json!({"id": "loc", "chat": BOB_PN, "sender": BOB_PN, "fromMe": false, "timestamp": PAST + 1,
                     "type": "location", "location": {"latitude": 1.0, "longitude": 2.0, "name": "Cafe"}});
    host.event(&s, "message", loc).unwrap();
    assert_eq!(chat(&host, &s, BOB_PN)["lastMessage"]["preview"], "Cafe");
    // An older message does not replace the last one.
    host.event(
        &s,
        "message",
        incoming("older", BOB_PN, BOB_PN, "old", PAST - 1),
    )
    .unwrap();
    assert_eq!(chat(&host, &s, BOB_PN)["lastMessage"]["id"], "loc");
    // Status updates are not chats.
    host.event(
        &s,
        "message",
        incoming("st", "status@broadcast", BOB_PN, "story", PAST),
    )
    .unwrap();
    assert_eq!(jids(&host, &format!("/sessions/{s}/chats")), [BOB_PN]);
}

#[test]
fn history_sync_fills_state_without_overriding_changes() {
    let (host, s) = setup();
    some_chats(&host, &s);
    host.patch(
        &format!("/sessions/{s}/chats/{BOB_PN}"),
        json!({"archived": true}),
    );
    let t = now();
    let history = json!({
        "syncType": "INITIAL_BOOTSTRAP",
        "chats": [
            {"jid": BOB_PN, "archived": false, "pinned": true, "unreadCount": 2, "lastMessageAt": PAST + 500},
            {"jid": "15557770000@s.whatsapp.net", "name": "Carol", "unreadCount": 1, "mutedUntil": -1, "lastMessageAt": PAST + 300}
        ],
        "messages": [
            incoming("h1", "15557770000@s.whatsapp.net", "15557770000@s.whatsapp.net", "from history", PAST + 300),
            incoming("h0", "15557770000@s.whatsapp.net", "15557770000@s.whatsapp.net", "older", PAST + 200)
        ]
    });
    host.event_at(&s, "history.sync", history, t + 5).unwrap();
    let bob = chat(&host, &s, BOB_PN);
    assert_eq!(bob["archived"], true, "the API change stands");
    assert_eq!(bob["pinned"], true, "history fills what nothing set");
    assert_eq!(bob["unreadCount"], 2);
    assert_eq!(bob["lastMessage"]["id"], "m1");
    let carol = chat(&host, &s, "15557770000@s.whatsapp.net");
    assert_eq!(carol["name"], "Carol");
    assert_eq!(carol["mutedUntil"], -1);
    assert_eq!(
        carol["unreadCount"], 1,
        "history messages are not counted again"
    );
    assert_eq!(carol["lastMessage"]["preview"], "from history");
    host.post(
        &format!("/sessions/{s}/chats/15557770000@s.whatsapp.net/read"),
        json!({"receipts": true}),
    );
    let ids: Vec<String> = host.chats().receipts()[0]
        .1
        .iter()
        .map(|k| k.id.clone())
        .collect();
    assert_eq!(ids, ["h1"], "the latest unread one");
}

#[test]
fn presence_is_live_and_needs_no_stored_chat() {
    let (host, s) = setup();
    let path = format!("/sessions/{s}/chats/{BOB_PN}/presence");
    let r = host.put(&path, json!({"state": "composing"}));
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    host.put(
        &format!("/sessions/{s}/chats/{GROUP}/presence"),
        json!({"state": "recording"}),
    );
    assert_eq!(
        host.chats().states(),
        [
            (BOB_PN.to_owned(), ChatState::Composing),
            (GROUP.to_owned(), ChatState::Recording)
        ]
    );
    for bad in [
        json!({}),
        json!({"state": "typing"}),
        json!({"state": null}),
        json!({"state": "paused", "for": 5}),
    ] {
        let r = host.put(&path, bad.clone());
        assert_eq!(r.status, 400, "{bad}");
    }
    host.whatsapp().set_connected(false);
    let r = host.put(&path, json!({"state": "paused"}));
    assert_eq!(r.status, 501);
    assert_eq!(host.chats().states().len(), 2);
    assert!(host.emitted().is_empty());
}

#[test]
fn every_api_change_is_emitted_with_source_api() {
    let (host, s) = setup();
    some_chats(&host, &s);
    let until = now() as i64 + 60_000;
    host.patch(
        &format!("/sessions/{s}/chats/{ALICE_PN}"),
        json!({"archived": true, "mutedUntil": until}),
    );
    host.patch(
        &format!("/sessions/{s}/chats/{ALICE_PN}"),
        json!({"unmute": true}),
    );
    host.post(&format!("/sessions/{s}/chats/{GROUP}/read"), json!({}));
    host.delete(&format!("/sessions/{s}/chats/{GROUP}"));
    let events: Vec<(String, Value)> = host
        .emitted()
        .into_iter()
        .map(|e| (e.name, e.payload))
        .collect();
    assert_eq!(
        events,
        [
            (
                "chats.update".to_owned(),
                json!({"jid": ALICE_PN, "lid": ALICE_LID, "archived": true, "mutedUntil": until, "source": "api"})
            ),
            (
                "chats.update".to_owned(),
                json!({"jid": ALICE_PN, "lid": ALICE_LID, "mutedUntil": 0, "source": "api"})
            ),
            (
                "chats.update".to_owned(),
                json!({"jid": GROUP, "unreadCount": 0, "source": "api"})
            ),
            (
                "chats.delete".to_owned(),
                json!({"jid": GROUP, "source": "api"})
            ),
        ]
    );
}

#[test]
fn a_refused_emit_is_an_internal_error() {
    let (host, s) = setup();
    some_chats(&host, &s);
    host.event_bus().grant(&["groups.*"]);
    let r = host.post(&format!("/sessions/{s}/chats/{BOB_PN}/read"), json!({}));
    assert_eq!(r.status, 500);
    assert!(host.emitted().is_empty());
}

#[test]
fn reading_needs_read_and_changing_needs_send() {
    let host = TestHost::new::<Chats>().caller("org_test", &[Capability::Read]);
    let s = host.add_session();
    assert_eq!(host.get(&format!("/sessions/{s}/chats")).status, 200);
    let r = host.patch(
        &format!("/sessions/{s}/chats/{BOB_PN}"),
        json!({"pinned": true}),
    );
    assert_eq!(r.status, 403);
    let theirs = host.sessions().add("org_other", None);
    assert_eq!(host.get(&format!("/sessions/{theirs}/chats")).status, 404);
}
