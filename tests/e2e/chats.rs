//! Chats end to end (API.md §5): the chat store built from incoming messages and the
//! session's own sends, unread counters, local-by-default changes with the `sync` and
//! `receipts` opt-ins, the phone's own changes, deletion and presence.

use crate::messages::{ALICE, ALICE_LID, BOB, messaging, send, send_with};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

fn inject(g: &Gateway, session: &str, event: &str, payload: Value) {
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{session}/events"),
        Some(json!({"event": event, "payload": payload})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn incoming(g: &Gateway, session: &str, id: &str, text: &str) {
    inject(
        g,
        session,
        "message",
        json!({
            "id": id, "chat": ALICE, "sender": ALICE_LID, "senderLid": ALICE_LID, "senderJid": ALICE,
            "fromMe": false, "isGroup": false, "pushName": "Alice W", "timestamp": now_ms(),
            "type": "text", "text": text,
        }),
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn chat(g: &Gateway, token: &str, session: &str, cid: &str) -> Resp {
    g.get(&format!("/sessions/{session}/chats/{cid}"), token)
}

fn wait_chat(
    g: &Gateway,
    token: &str,
    session: &str,
    cid: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    let ok = wait_for(Duration::from_secs(15), || {
        let r = chat(g, token, session, cid);
        if r.status != 200 {
            return false;
        }
        last = r.json();
        f(&last)
    });
    assert!(ok, "chat {cid} never matched; last: {last}");
    last
}

#[test]
fn incoming_messages_count_as_unread_until_read_or_answered() {
    let g = messaging("");
    let token = g.key("org_chats", &["read", "send", "manage"]);
    let reader = g.key("org_chats", &["read"]);
    let s = g.working_session(&token);

    // The phone's chat list arrives when the session pairs.
    let c = wait_chat(&g, &token, &s, ALICE, |_| true);
    assert_eq!(c["unreadCount"], 0);
    assert_eq!(c["lastMessage"], Value::Null);
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        incoming(&g, &s, &format!("3EB0IN00000000000{i:03}"), text);
    }
    let c = wait_chat(&g, &token, &s, ALICE, |c| c["unreadCount"] == 3);
    assert_eq!(c["type"], "dm");
    assert_eq!(c["jid"], ALICE);
    assert_eq!(c["lid"], ALICE_LID);
    assert_eq!(c["phoneJid"], ALICE);
    assert_eq!(c["name"], "Alice");
    assert_eq!(c["lastMessage"]["preview"], "three");
    assert_eq!(c["lastMessage"]["fromMe"], false);
    assert_eq!(c["archived"], false);
    assert_eq!(c["mutedUntil"], Value::Null);
    // By LID it is the same chat.
    assert_eq!(chat(&g, &token, &s, ALICE_LID).json()["jid"], ALICE);
    // Stored as incoming messages.
    let m = g.get(
        &format!("/sessions/{s}/messages/3EB0IN00000000000002"),
        &reader,
    );
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(m.json()["direction"], "in");
    assert_eq!(m.json()["body"], "three");

    // Reading needs `send`; reads are local and idempotent.
    g.post(
        &format!("/sessions/{s}/chats/{ALICE}/read"),
        &reader,
        json!({}),
    )
    .assert_error(403, "forbidden");
    let r = g.post(
        &format!("/sessions/{s}/chats/{ALICE}/read"),
        &token,
        json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["unreadCount"], 0);
    let r = g.post(
        &format!("/sessions/{s}/chats/{ALICE}/read"),
        &token,
        json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // New ones count again; answering resets.
    incoming(&g, &s, "3EB0IN00000000000010", "again");
    wait_chat(&g, &token, &s, ALICE, |c| c["unreadCount"] == 1);
    let r = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "answer"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let c = wait_chat(&g, &token, &s, ALICE, |c| c["unreadCount"] == 0);
    assert_eq!(c["lastMessage"]["fromMe"], true);

    // Read receipts are LIVE: with the connection down, 501.
    incoming(&g, &s, "3EB0IN00000000000011", "unread");
    wait_chat(&g, &token, &s, ALICE, |c| c["unreadCount"] == 1);
    let r = g.post(
        &format!("/sessions/{s}/chats/{ALICE}/read"),
        &token,
        json!({"receipts": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["unreadCount"], 0);
    g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/disconnect"),
        Some(json!({})),
    );
    g.post(
        &format!("/sessions/{s}/chats/{ALICE}/read"),
        &token,
        json!({"receipts": true}),
    )
    .assert_error(501, "not_implemented");
    g.post(
        &format!("/sessions/{s}/chats/{ALICE}/read"),
        &token,
        json!({"receipts": "yes"}),
    )
    .assert_error(400, "validation_error");
}

#[test]
fn chat_changes_are_local_unless_synced_and_the_later_change_wins() {
    let g = messaging("");
    let token = g.key("org_chats", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    incoming(&g, &s, "3EB0IN00000000000100", "hello");
    send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": BOB, "text": "hi bob"}),
    );
    wait_chat(&g, &token, &s, ALICE, |_| true);
    wait_chat(&g, &token, &s, BOB, |_| true);
    let patch = |cid: &str, body: Value| {
        send_with(
            &g,
            &token,
            "PATCH",
            &format!("/sessions/{s}/chats/{cid}"),
            None,
            Some(&body),
        )
    };

    // Local changes.
    let r = patch(ALICE, json!({"archived": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["archived"], true);
    assert_eq!(r.json()["pinned"], false, "partial update");
    let r = patch(BOB, json!({"pinned": true, "mutedUntil": -1}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["mutedUntil"], -1);
    let r = patch(
        BOB,
        json!({"unmute": true, "mutedUntil": now_ms() + 60_000}),
    );
    assert_eq!(r.json()["mutedUntil"], Value::Null, "unmute wins");

    // Bad updates are 422; a malformed chat id 400; an unknown one 404.
    patch(ALICE, json!({})).assert_error(422, "validation_error");
    patch(ALICE, json!({"mutedUntil": 1000})).assert_error(422, "validation_error");
    patch(ALICE, json!({"archived": "yes"})).assert_error(422, "validation_error");
    patch(ALICE, json!({"sync": true})).assert_error(422, "validation_error");
    patch("not-a-jid", json!({"archived": true})).assert_error(400, "validation_error");
    patch("19999999999@s.whatsapp.net", json!({"archived": true})).assert_error(404, "not_found");

    // Lists: pinned first; filters.
    let all = g.get(&format!("/sessions/{s}/chats"), &token).json();
    let jids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["jid"].as_str().unwrap())
        .collect();
    assert_eq!(jids[0], BOB, "pinned first: {jids:?}");
    assert_eq!(jids[1], ALICE, "then the latest message: {jids:?}");
    let archived = g
        .get(&format!("/sessions/{s}/chats?archived=true"), &token)
        .json();
    assert_eq!(archived["data"].as_array().unwrap().len(), 1);
    assert_eq!(archived["data"][0]["jid"], ALICE);
    g.get(&format!("/sessions/{s}/chats?archived=maybe"), &token)
        .assert_error(400, "validation_error");

    // The phone's later change wins over ours.
    inject(
        &g,
        &s,
        "chats.update",
        json!({"jid": ALICE, "archived": false, "source": "phone"}),
    );
    wait_chat(&g, &token, &s, ALICE, |c| c["archived"] == false);

    // Synced changes go to WhatsApp, so they need the connection.
    let r = patch(ALICE, json!({"pinned": true, "sync": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pinned"], true);
    g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/disconnect"),
        Some(json!({})),
    );
    patch(ALICE, json!({"pinned": false, "sync": true})).assert_error(501, "not_implemented");
    assert_eq!(
        chat(&g, &token, &s, ALICE).json()["pinned"],
        true,
        "a refused sync changes nothing"
    );
    let r = patch(ALICE, json!({"pinned": false}));
    assert_eq!(
        r.status,
        200,
        "local changes need no connection: {}",
        r.text()
    );

    // Every API change was published with source api.
    let events = crate::messages::recorded(&g, &token, &s, "chats.update");
    assert!(
        events
            .iter()
            .any(|e| e["jid"] == ALICE && e["source"] == "api" && e["archived"] == true),
        "{events:?}"
    );
}

#[test]
fn deleting_a_chat_drops_its_messages_until_new_activity_and_presence_is_live() {
    let g = messaging("");
    let token = g.key("org_chats", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    incoming(&g, &s, "3EB0IN00000000000200", "to be deleted");
    wait_chat(&g, &token, &s, ALICE, |_| true);
    // The messages plugin stores the message on its own delivery of the event.
    wait_until(Duration::from_secs(10), || {
        let r = g.get(&format!("/sessions/{s}/chats/{ALICE}/messages"), &token);
        r.json()["data"].as_array().is_some_and(|d| d.len() == 1)
    });

    let r = g.delete(&format!("/sessions/{s}/chats/{ALICE}"), &token);
    assert_eq!(r.status, 204, "{}", r.text());
    chat(&g, &token, &s, ALICE).assert_error(404, "not_found");
    wait_until(Duration::from_secs(10), || {
        g.get(
            &format!("/sessions/{s}/messages/3EB0IN00000000000200"),
            &token,
        )
        .status
            == 404
    });
    g.delete(&format!("/sessions/{s}/chats/{ALICE}"), &token)
        .assert_error(404, "not_found");

    // New activity brings it back, without the old messages.
    incoming(&g, &s, "3EB0IN00000000000201", "I am back");
    let c = wait_chat(&g, &token, &s, ALICE, |c| c["unreadCount"] == 1);
    assert_eq!(c["lastMessage"]["preview"], "I am back");
    let r = g.get(&format!("/sessions/{s}/chats/{ALICE}/messages"), &token);
    let list = r.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");

    // Presence: LIVE, needs no stored chat, only the three states.
    let put = |cid: &str, body: Value| {
        send_with(
            &g,
            &token,
            "PUT",
            &format!("/sessions/{s}/chats/{cid}/presence"),
            None,
            Some(&body),
        )
    };
    let r = put(BOB, json!({"state": "composing"}));
    assert_eq!(r.status, 204, "{}", r.text());
    put(BOB, json!({"state": "dancing"})).assert_error(400, "validation_error");
    g.delete(&format!("/sessions/{s}/chats/{ALICE}?sync=true"), &token);
    g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/disconnect"),
        Some(json!({})),
    );
    put(BOB, json!({"state": "paused"})).assert_error(501, "not_implemented");
}

#[test]
fn a_session_with_auto_read_keeps_its_chats_read() {
    let g = messaging("");
    let token = g.key("org_autoread", &["read", "send", "manage"]);
    let s = g.create_session(&token, json!({"start": true, "autoRead": true}));
    assert_eq!(
        g.get(&format!("/sessions/{s}"), &token).json()["autoRead"],
        true
    );
    wait_for(Duration::from_secs(20), || {
        g.get(&format!("/sessions/{s}"), &token).json()["status"] == "scan_qr_code"
    });
    let scan = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/scan"),
        Some(json!({})),
    );
    assert_eq!(scan.status, 200, "{}", scan.text());
    g.wait_status(&s, &token, "working");

    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        incoming(&g, &s, &format!("3EB0AR00000000000{i:03}"), text);
    }
    // The messages are stored, and the chat stays read (a session without the flag counts
    // them: see incoming_messages_count_as_unread_until_read_or_answered).
    let c = wait_chat(&g, &token, &s, ALICE, |c| {
        c["lastMessage"]["id"] == "3EB0AR00000000000002" && c["unreadCount"] == 0
    });
    assert_eq!(c["lastMessage"]["fromMe"], false);
    // Each was marked read by the gateway, told to plugins as a chats.update.
    let resets = wait_for(Duration::from_secs(10), || {
        let events = g.get(&format!("/sessions/{s}/chaos-events"), &token).json();
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["name"] == "chats.update"
                    && e["payload"]["jid"] == ALICE
                    && e["payload"]["unreadCount"] == 0
                    && e["payload"]["source"] == "auto_read"
            })
            .count()
            == 3
    });
    assert!(resets, "three read resets were not published");
    let listed =
        crate::messages::all_pages(&g, &token, &format!("/sessions/{s}/chats/{ALICE}/messages"));
    assert_eq!(listed.len(), 3);
}
