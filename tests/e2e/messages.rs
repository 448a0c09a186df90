//! Messages end to end (API.md §6): sends of every kind through the outbox, idempotency,
//! rate limits, status events, order, crash safety, media, and the actions on stored
//! messages — against the sandbox engine, whose control API shows what reached "the wire".

use crate::support::*;
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

pub const ALICE: &str = "6281234567890@s.whatsapp.net";
pub const ALICE_LID: &str = "205227043110953@lid";
pub const BOB: &str = "14155550123@s.whatsapp.net";
pub const TEAM: &str = "120363021234567890@g.us";

/// A 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// Sandbox gateway with the messaging plugins and a send rate that does not slow tests.
pub fn messaging(extra_messages_toml: &str) -> Gateway {
    Gateway::with(messaging_options(100_000, extra_messages_toml))
}

/// [`messaging`]'s options, with a session rate per minute and more `[messages]` keys.
pub fn messaging_options(rate_per_min: u32, extra_messages_toml: &str) -> Options {
    let mut o = Options::default();
    o.plugins.extend(["messages", "chats"].map(String::from));
    o.max_body_bytes = 1 << 20;
    o.extra_toml = format!(
        "[messages]\ndefault_rate_per_min = {rate_per_min}\ndefault_rate_per_hour = 1000000\n{extra_messages_toml}"
    );
    o
}

/// A request with an optional Idempotency-Key.
pub fn send_with(
    g: &Gateway,
    token: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    g.raw(
        method,
        &format!("/api/v1{path}"),
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
}

pub fn send(g: &Gateway, token: &str, session: &str, body: Value) -> Resp {
    send_with(
        g,
        token,
        "POST",
        &format!("/sessions/{session}/messages"),
        None,
        Some(&body),
    )
}

pub fn send_async(g: &Gateway, token: &str, session: &str, body: Value) -> Resp {
    send_with(
        g,
        token,
        "POST",
        &format!("/sessions/{session}/messages?async=true"),
        None,
        Some(&body),
    )
}

/// What the sandbox's simulated server received from the session, in order.
pub fn wire(g: &Gateway, session: &str) -> Vec<Value> {
    let r = g.admin_call("GET", &format!("/sandbox/sessions/{session}/wire"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["messages"].as_array().unwrap().clone()
}

pub fn outbox_item(g: &Gateway, token: &str, session: &str, id: &str) -> Value {
    let r = g.get(&format!("/sessions/{session}/outbox/{id}"), token);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Polls an outbox item until its status is one of `statuses`.
pub fn wait_outbox(g: &Gateway, token: &str, session: &str, id: &str, statuses: &[&str]) -> Value {
    let mut last = Value::Null;
    let ok = wait_for(Duration::from_secs(30), || {
        last = outbox_item(g, token, session, id);
        statuses.iter().any(|s| last["status"] == *s)
    });
    assert!(ok, "outbox item {id} never reached {statuses:?}: {last}");
    last
}

/// Every item of a list, following cursors.
pub fn all_pages(g: &Gateway, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=30&cursor={c}"),
            None => format!("{path}{sep}limit=30"),
        };
        let r = g.get(&url, token);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let v = r.json();
        items.extend(v["data"].as_array().unwrap().iter().cloned());
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn assert_send_result(v: &Value, mode: &str, chat: &str) {
    assert_eq!(v["mode"], mode, "{v}");
    assert!(v["outboxId"].as_str().unwrap().starts_with("out_"), "{v}");
    assert!(
        v["waMessageId"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert_eq!(v["chat"], chat, "{v}");
    assert!(v["timestamp"].as_u64().is_some(), "{v}");
}

/// Events the chaos plugin recorded for a session, by name.
pub fn recorded(g: &Gateway, token: &str, session: &str, name: &str) -> Vec<Value> {
    let r = g.get(&format!("/sessions/{session}/chaos-events"), token);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == name)
        .map(|e| e["payload"].clone())
        .collect()
}

#[test]
fn a_text_is_sent_acknowledged_stored_listed_and_read() {
    let g = messaging("");
    let token = g.key("org_msg", &["read", "send", "manage"]);
    let s = g.working_session(&token);

    let r = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "Hello Alice"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = r.json();
    assert_send_result(&sent, "sync", ALICE);
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["replayed"], false);
    assert_eq!(sent["errorCode"], Value::Null);
    let (wa, outbox_id) = (
        sent["waMessageId"].as_str().unwrap().to_owned(),
        sent["outboxId"].as_str().unwrap().to_owned(),
    );

    // What reached the server: exactly this message, once.
    let w = wire(&g, &s);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["id"], wa.as_str());
    assert_eq!(w[0]["to"], ALICE);
    assert_eq!(w[0]["text"], "Hello Alice");
    assert_eq!(w[0]["transmissions"], 1);

    // Stored as the session's own message.
    let m = g.get(&format!("/sessions/{s}/messages/{wa}?chat={ALICE}"), &token);
    assert_eq!(m.status, 200, "{}", m.text());
    let m = m.json();
    assert_eq!(m["id"], wa.as_str());
    assert_eq!(m["chatJid"], ALICE);
    assert_eq!(m["body"], "Hello Alice");
    assert_eq!(m["type"], "text");
    assert_eq!(m["fromMe"], true);
    assert_eq!(m["direction"], "out");
    assert_eq!(m["outboxId"], outbox_id.as_str());
    assert_eq!(m["hasMedia"], false);

    // Receipts follow (sandbox: delivered, then read) and never go back.
    let read = wait_outbox(&g, &token, &s, &outbox_id, &["read"]);
    assert_eq!(read["waMessageId"], wa.as_str());
    let ok = wait_for(Duration::from_secs(10), || {
        let m = g
            .get(&format!("/sessions/{s}/messages/{wa}"), &token)
            .json();
        m["ackLevel"] == 3 && m["status"] == "read"
    });
    assert!(ok, "the stored message never showed the read receipt");

    // Listed in the chat and in the outbox; the chat shows it as the last message.
    let list = all_pages(&g, &token, &format!("/sessions/{s}/chats/{ALICE}/messages"));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], wa.as_str());
    let outbox = all_pages(&g, &token, &format!("/sessions/{s}/outbox"));
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0]["outboxId"], outbox_id.as_str());
    let chat = g.get(&format!("/sessions/{s}/chats/{ALICE}"), &token);
    assert_eq!(chat.status, 200, "{}", chat.text());
    let chat = chat.json();
    assert_eq!(chat["lastMessage"]["id"], wa.as_str());
    assert_eq!(chat["lastMessage"]["fromMe"], true);
    assert_eq!(chat["unreadCount"], 0);

    // The same message by the person's LID, and unknown ones.
    let by_lid = g.get(&format!("/sessions/{s}/chats/{ALICE_LID}/messages"), &token);
    assert_eq!(by_lid.status, 200, "{}", by_lid.text());
    g.get(
        &format!("/sessions/{s}/messages/3EB0FFFFFFFFFFFFFFFF"),
        &token,
    )
    .assert_error(404, "not_found");
    g.get(
        &format!("/sessions/{s}/outbox/out_01J9ZZ3K8QHV0M3T6R7P4N5W8C"),
        &token,
    )
    .assert_error(404, "not_found");
}

#[test]
fn every_kind_of_message_is_sent() {
    let g = messaging("");
    let token = g.key("org_msg", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    let bodies = [
        (
            "text",
            json!({"type": "text", "to": ALICE, "text": "hi @14155550123", "mentions": [BOB]}),
        ),
        (
            "poll",
            json!({"type": "poll", "to": TEAM, "name": "Lunch?", "options": ["Pizza", "Sushi"], "selectableCount": 1}),
        ),
        (
            "location",
            json!({"type": "location", "to": ALICE, "latitude": -6.2, "longitude": 106.8, "name": "Office"}),
        ),
        (
            "contact",
            json!({"type": "contact", "to": ALICE, "contact": {"name": "Bob", "phone": "14155550123"}}),
        ),
        (
            "image",
            json!({"type": "image", "to": ALICE, "media": {"data": png, "caption": "a pixel"}}),
        ),
        (
            "document",
            json!({"type": "document", "to": ALICE, "media": {"data": format!("data:application/pdf;base64,{}", base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 test")), "filename": "a.pdf"}}),
        ),
        (
            "text",
            json!({"type": "text", "to": "14155550123", "text": "bare digits"}),
        ),
    ];
    for (kind, body) in &bodies {
        let r = send(&g, &token, &s, body.clone());
        assert_eq!(r.status, 200, "{kind}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "sent", "{kind}: {v}");
        let wa = v["waMessageId"].as_str().unwrap();
        let chat = v["chat"].as_str().unwrap();
        let m = g.get(&format!("/sessions/{s}/messages/{wa}?chat={chat}"), &token);
        assert_eq!(m.status, 200, "{kind}: {}", m.text());
        assert_eq!(m.json()["type"], *kind, "{}", m.text());
    }
    let w = wire(&g, &s);
    let kinds: Vec<&str> = w.iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "text", "poll", "location", "contact", "image", "document", "text"
        ]
    );
    assert_eq!(w[6]["to"], BOB, "bare digits name a user JID");
    let image = send(&g, &token, &s, bodies[4].1.clone()).json();
    let wa = image["waMessageId"].as_str().unwrap();
    let m = g
        .get(&format!("/sessions/{s}/messages/{wa}"), &token)
        .json();
    assert_eq!(m["hasMedia"], true);
    assert_eq!(m["body"], "a pixel");
    assert_eq!(m["media"]["mimetype"], "image/png");
    assert_eq!(m["media"]["size"], PNG.len());
}

#[test]
fn bad_sends_are_refused_with_the_reason_and_record_nothing() {
    let g = messaging("");
    let token = g.key("org_msg", &["read", "send", "manage"]);
    let reader = g.key("org_msg", &["read"]);
    let s = g.working_session(&token);
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    let long = "x".repeat(65_537);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({}), 400, "validation_error"),
        (
            json!({"type": "text", "to": ALICE}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "text", "to": ALICE, "text": ""}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "text", "to": ALICE, "text": long}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "gif", "to": ALICE, "text": "x"}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "text", "to": "not a jid", "text": "x"}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "text", "text": "x"}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "text", "to": ALICE, "text": "x", "colour": "red"}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "poll", "to": ALICE, "name": "Q", "options": ["only one"]}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "poll", "to": ALICE, "name": "Q", "options": ["same", "same"]}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "poll", "to": ALICE, "name": "Q", "options": (0..13).map(|i| i.to_string()).collect::<Vec<_>>()}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "location", "to": ALICE, "latitude": 91.0, "longitude": 0.0}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "location", "to": ALICE, "latitude": 0.0, "longitude": 181.0}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "contact", "to": ALICE}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "image", "to": ALICE}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "image", "to": ALICE, "media": {"data": "%%% not base64"}}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "image", "to": ALICE, "media": {"data": png, "mimetype": "audio/ogg"}}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "sticker", "to": ALICE, "media": {"data": png}}),
            400,
            "validation_error",
        ),
        (
            json!({"type": "text", "to": ALICE, "text": "x", "replyTo": "3EB0AAAAAAAAAAAAAAAA"}),
            404,
            "not_found",
        ),
        (
            json!({"type": "image", "to": ALICE, "media": {"id": "med_01J9ZZ3K8QHV0M3T6R7P4N5W8C"}}),
            404,
            "not_found",
        ),
    ];
    for (body, status, code) in &cases {
        let r = send(&g, &token, &s, body.clone());
        r.assert_error(*status, code);
        let r = send_async(&g, &token, &s, body.clone());
        r.assert_error(*status, code);
    }
    // Bad keys, the wrong permission, an unknown session.
    let ok = json!({"type": "text", "to": ALICE, "text": "x"});
    for key in ["", &"k".repeat(256), "has space", "tab\there"] {
        if key.contains('\t') {
            continue; // not a valid header value for the client either
        }
        send_with(
            &g,
            &token,
            "POST",
            &format!("/sessions/{s}/messages"),
            Some(key),
            Some(&ok),
        )
        .assert_error(400, "validation_error");
    }
    send(&g, &reader, &s, ok.clone()).assert_error(403, "forbidden");
    send(&g, &token, "01J9ZX8K2QHV0M3T6R7P4N5W8C", ok.clone()).assert_error(404, "not_found");
    // A body over limits.max_body_bytes is refused from its declared length, before it is
    // read (the head alone: a client still writing the body may see the connection close).
    let head = format!(
        "POST /api/v1/sessions/{s}/messages HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 1200000\r\n\r\n"
    );
    let answer = exchange_head(&g.api, &head);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");

    assert!(all_pages(&g, &token, &format!("/sessions/{s}/outbox")).is_empty());
    assert!(wire(&g, &s).is_empty());
}

#[test]
fn idempotency_keys_replay_refuse_other_bodies_and_collapse_concurrent_requests() {
    let g = messaging("");
    let token = g.key("org_idem", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let path = format!("/sessions/{s}/messages");
    let body = json!({"type": "text", "to": ALICE, "text": "once"});

    let first = send_with(&g, &token, "POST", &path, Some("order-1"), Some(&body));
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!(first["replayed"], false);
    // The same body with keys in another order is the same request.
    let reordered: Value = serde_json::from_str(
        r#"{"text": "once", "to": "6281234567890@s.whatsapp.net", "type": "text"}"#,
    )
    .unwrap();
    let again = send_with(&g, &token, "POST", &path, Some("order-1"), Some(&reordered));
    assert_eq!(again.status, 200, "{}", again.text());
    let again = again.json();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["outboxId"], first["outboxId"]);
    assert_eq!(again["waMessageId"], first["waMessageId"]);

    // Same key, other body (or the async flag): 422 naming the first item.
    let other = json!({"type": "text", "to": ALICE, "text": "twice"});
    let r = send_with(&g, &token, "POST", &path, Some("order-1"), Some(&other));
    r.assert_error(422, "validation_error");
    assert_eq!(
        r.json()["error"]["details"]["reason"],
        "idempotency_key_reused"
    );
    assert_eq!(r.json()["error"]["details"]["outboxId"], first["outboxId"]);
    send_with(
        &g,
        &token,
        "POST",
        &format!("{path}?async=true"),
        Some("order-1"),
        Some(&body),
    )
    .assert_error(422, "validation_error");

    // Another organization's key space is its own.
    let other_org = g.key("org_other", &["read", "send", "manage"]);
    let s2 = g.working_session(&other_org);
    let r = send_with(
        &g,
        &other_org,
        "POST",
        &format!("/sessions/{s2}/messages"),
        Some("order-1"),
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["replayed"], false);

    // Twenty at once with one key: one item, one message on the wire.
    let racing = json!({"type": "text", "to": ALICE, "text": "raced"});
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    let r = send_with(&g, &token, "POST", &path, Some("race-7"), Some(&racing));
                    assert!(r.status == 200 || r.status == 202, "{}", r.text());
                    r.json()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ids: BTreeSet<&str> = answers
        .iter()
        .map(|a| a["outboxId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|a| a["replayed"] == false).count(),
        1,
        "{answers:?}"
    );
    let raced_outbox_id = *ids.iter().next().unwrap();
    wait_outbox(
        &g,
        &token,
        &s,
        raced_outbox_id,
        &["sent", "delivered", "read"],
    );
    let w = wire(&g, &s);
    assert_eq!(
        w.iter().filter(|m| m["text"] == "raced").count(),
        1,
        "{w:?}"
    );
    assert_eq!(w.iter().filter(|m| m["text"] == "once").count(), 1, "{w:?}");
    assert_eq!(
        all_pages(&g, &token, &format!("/sessions/{s}/outbox")).len(),
        2
    );
}

#[test]
fn sends_over_the_rate_answer_429_with_retry_after_and_async_ones_wait() {
    let g = Gateway::with(messaging_options(2, "max_pending_per_session = 3\n"));
    let token = g.key("org_rate", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    for i in 0..2 {
        let r = send(
            &g,
            &token,
            &s,
            json!({"type": "text", "to": ALICE, "text": format!("m{i}")}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "m2"}),
    );
    r.assert_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let d = &r.json()["error"]["details"];
    assert_eq!(d["limit"], "perMinute");
    assert_eq!(d["ratePerMin"], 2);
    assert!(d["retryAfterMs"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(
        all_pages(&g, &token, &format!("/sessions/{s}/outbox")).len(),
        2
    );

    // Async waits in the queue instead, up to the pending cap.
    let mut queued = Vec::new();
    for i in 0..3 {
        let r = send_async(
            &g,
            &token,
            &s,
            json!({"type": "text", "to": ALICE, "text": format!("q{i}")}),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.json()["status"], "pending");
        queued.push(r.json()["outboxId"].as_str().unwrap().to_owned());
    }
    let r = send_async(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "q3"}),
    );
    r.assert_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    std::thread::sleep(Duration::from_millis(500));
    for id in &queued {
        assert_eq!(outbox_item(&g, &token, &s, id)["status"], "pending");
    }
    assert_eq!(wire(&g, &s).len(), 2);
}

#[test]
fn async_sends_answer_202_then_report_each_status_in_order() {
    let g = messaging("");
    let token = g.key("org_async", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let r = send_async(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "later"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let v = r.json();
    assert_send_result(&v, "async", ALICE);
    assert_eq!(v["status"], "pending");
    let id = v["outboxId"].as_str().unwrap().to_owned();
    wait_outbox(&g, &token, &s, &id, &["read"]);
    let mut statuses = Vec::new();
    let ok = wait_for(Duration::from_secs(10), || {
        statuses = recorded(&g, &token, &s, "message.status")
            .into_iter()
            .filter(|p| p["outboxId"] == id.as_str())
            .map(|p| p["status"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        statuses.last().is_some_and(|s| s == "read")
    });
    assert!(ok, "{statuses:?}");
    assert_eq!(statuses, ["pending", "sent", "delivered", "read"]);
}

#[test]
fn a_hundred_sends_to_one_chat_arrive_in_order() {
    let g = messaging("");
    let token = g.key("org_order", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let mut ids = Vec::new();
    for i in 0..100 {
        let r = send_async(
            &g,
            &token,
            &s,
            json!({"type": "text", "to": ALICE, "text": format!("m{i:03}")}),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        ids.push(r.json()["outboxId"].as_str().unwrap().to_owned());
    }
    wait_outbox(
        &g,
        &token,
        &s,
        ids.last().unwrap(),
        &["sent", "delivered", "read"],
    );
    let expected: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    let texts: Vec<String> = wire(&g, &s)
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, expected);
    // The chat lists them newest first, every one once across pages.
    let listed: Vec<String> =
        all_pages(&g, &token, &format!("/sessions/{s}/chats/{ALICE}/messages"))
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect();
    let mut newest_first = expected.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
}

#[test]
fn items_answered_202_survive_kill_9_and_go_out_once() {
    let mut g = messaging("");
    let token = g.key("org_crash", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    // The server errs for now (in memory only), so all 50 are still queued at the kill.
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/sends"),
        Some(json!({"failure": "transient"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut ids = Vec::new();
    for i in 0..50 {
        let r = send_async(
            &g,
            &token,
            &s,
            json!({"type": "text", "to": BOB, "text": format!("c{i:02}")}),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        ids.push(r.json()["outboxId"].as_str().unwrap().to_owned());
    }
    assert_eq!(outbox_item(&g, &token, &s, &ids[0])["status"], "pending");
    assert!(wire(&g, &s).is_empty());
    g.crash_restart();
    g.wait_status(&s, &token, "working");
    let mut wa_ids = BTreeSet::new();
    for id in &ids {
        let item = wait_outbox(&g, &token, &s, id, &["sent", "delivered", "read"]);
        wa_ids.insert(item["waMessageId"].as_str().unwrap().to_owned());
    }
    assert_eq!(wa_ids.len(), 50);
    let w = wire(&g, &s);
    assert_eq!(w.len(), 50, "one message on the wire per item: {w:?}");
    let wire_ids: BTreeSet<String> = w
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(wire_ids, wa_ids);
    let texts: Vec<&str> = w.iter().map(|m| m["text"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("c{i:02}")).collect();
    assert_eq!(texts, expected, "order survives the crash");

    // Again while sending: the kill lands mid-dispatch.
    let mut more = Vec::new();
    for i in 0..50 {
        let r = send_async(
            &g,
            &token,
            &s,
            json!({"type": "text", "to": BOB, "text": format!("d{i:02}")}),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        more.push(r.json()["outboxId"].as_str().unwrap().to_owned());
    }
    g.crash_restart();
    g.wait_status(&s, &token, "working");
    for id in &more {
        let item = wait_outbox(&g, &token, &s, id, &["sent", "delivered", "read"]);
        wa_ids.insert(item["waMessageId"].as_str().unwrap().to_owned());
    }
    let w = wire(&g, &s);
    let wire_ids: BTreeSet<String> = w
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(w.len(), 100, "one message on the wire per item");
    assert_eq!(wire_ids, wa_ids);
    let texts: Vec<&str> = w.iter().map(|m| m["text"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..50)
        .map(|i| format!("c{i:02}"))
        .chain((0..50).map(|i| format!("d{i:02}")))
        .collect();
    assert_eq!(texts, expected, "order survives a crash mid-dispatch");
}

#[test]
fn a_stopped_session_refuses_and_a_reconnecting_one_queues() {
    let g = messaging("");
    let token = g.key("org_conn", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let body = json!({"type": "text", "to": ALICE, "text": "while away"});

    // Dropped connection: sync 501, async queued and sent on reconnect.
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/disconnect"),
        Some(json!({})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    send(&g, &token, &s, body.clone()).assert_error(501, "not_implemented");
    let r = send_async(&g, &token, &s, body.clone());
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["outboxId"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(outbox_item(&g, &token, &s, &id)["status"], "pending");
    assert!(wire(&g, &s).is_empty());
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/reconnect"),
        Some(json!({})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_outbox(&g, &token, &s, &id, &["sent", "delivered", "read"]);
    assert_eq!(wire(&g, &s).len(), 1);

    // Stopped: both refused, nothing recorded.
    let r = g.post(&format!("/sessions/{s}:stop"), &token, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    send(&g, &token, &s, body.clone()).assert_error(501, "not_implemented");
    send_async(&g, &token, &s, body.clone()).assert_error(501, "not_implemented");
    assert_eq!(
        all_pages(&g, &token, &format!("/sessions/{s}/outbox")).len(),
        1
    );
}

#[test]
fn failed_sends_retry_or_fail_and_pending_ones_can_be_cancelled() {
    let g = messaging("");
    let token = g.key("org_fail", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let sends = |failure: &str| {
        let r = g.admin_call(
            "POST",
            &format!("/sandbox/sessions/{s}/sends"),
            Some(json!({"failure": failure})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };

    // Not on WhatsApp: fails at once, 200 with status failed, and replays the same.
    let to_nobody = || {
        send_with(
            &g,
            &token,
            "POST",
            &format!("/sessions/{s}/messages"),
            Some("nobody"),
            Some(&json!({"type": "text", "to": "19999999999@s.whatsapp.net", "text": "hello?"})),
        )
    };
    let r = to_nobody();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "failed");
    assert_eq!(r.json()["errorCode"], "not_on_whatsapp");
    let again = to_nobody();
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["replayed"], true);
    assert_eq!(again.json()["errorCode"], "not_on_whatsapp");

    // The server refuses for good.
    sends("permanent");
    let r = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "refused"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "failed");
    assert_eq!(r.json()["errorCode"], "rejected");

    // Server errors: retried until they clear.
    sends("transient");
    let r = send_async(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "retried"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let retried = r.json()["outboxId"].as_str().unwrap().to_owned();
    let r = send_async(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "cancel me"}),
    );
    let cancel = r.json()["outboxId"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(outbox_item(&g, &token, &s, &retried)["status"], "pending");
    let c = g.delete(&format!("/sessions/{s}/outbox/{cancel}"), &token);
    assert_eq!(c.status, 200, "{}", c.text());
    assert_eq!(c.json()["status"], "failed");
    assert_eq!(c.json()["errorCode"], "cancelled");
    g.delete(&format!("/sessions/{s}/outbox/{cancel}"), &token)
        .assert_error(409, "conflict");
    sends("none");
    wait_outbox(&g, &token, &s, &retried, &["sent", "delivered", "read"]);
    let texts: Vec<Value> = wire(&g, &s).iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, [json!("retried")]);
    let failed = all_pages(&g, &token, &format!("/sessions/{s}/outbox?status=failed"));
    assert_eq!(failed.len(), 3, "{failed:?}");
    g.get(&format!("/sessions/{s}/outbox?status=nonsense"), &token)
        .assert_error(400, "validation_error");
}

#[test]
fn media_goes_up_out_and_down_byte_for_byte() {
    let mut o = messaging_options(100_000, "");
    o.limits_toml = "max_media_bytes = 2097152".into();
    let g = Gateway::with(o);
    let token = g.key("org_media", &["read", "send", "manage"]);
    let reader = g.key("org_media", &["read"]);
    let s = g.working_session(&token);
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/sessions/{s}/media?filename=pixel.png");

    // Upload: streamed to disk, described, reusable.
    let photo: Vec<u8> = PNG
        .iter()
        .copied()
        .chain((0..1_000_000u32).map(|i| (i % 251) as u8))
        .collect();
    let up = g.raw(
        "POST",
        &path,
        &[("authorization", &auth), ("content-type", "image/png")],
        Some(photo.clone()),
    );
    assert_eq!(up.status, 201, "{}", up.text());
    let up = up.json();
    let media_id = up["id"].as_str().unwrap().to_owned();
    assert!(media_id.starts_with("med_"), "{up}");
    assert_eq!(up["mimetype"], "image/png");
    assert_eq!(up["size"], photo.len());
    let sha = sha256_hex(&photo);
    assert_eq!(up["sha256"], sha.as_str());
    assert!(up["expiresAt"].as_u64().unwrap() > 0);

    // Refusals: no type, too large, read-only key.
    g.raw(
        "POST",
        &path,
        &[("authorization", &auth)],
        Some(PNG.to_vec()),
    )
    .assert_error(400, "validation_error");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: gw\r\nauthorization: {auth}\r\ncontent-type: image/png\r\ncontent-length: 2200000\r\n\r\n"
    );
    let answer = exchange_head(&g.api, &head);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "refused before the body is sent: {answer}"
    );
    assert!(answer.contains("payload_too_large"), "{answer}");
    let read_auth = format!("Bearer {reader}");
    g.raw(
        "POST",
        &path,
        &[("authorization", &read_auth), ("content-type", "image/png")],
        Some(PNG.to_vec()),
    )
    .assert_error(403, "forbidden");

    // Send by id, download the bytes back.
    let r = send(
        &g,
        &token,
        &s,
        json!({"type": "image", "to": ALICE, "media": {"id": media_id, "caption": "big"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let wa = r.json()["waMessageId"].as_str().unwrap().to_owned();
    let d = g.get(
        &format!("/sessions/{s}/messages/{wa}/media?chat={ALICE}"),
        &reader,
    );
    assert_eq!(d.status, 200, "{:?}", d.header("content-type"));
    assert_eq!(d.header("content-type"), Some("image/png"));
    assert_eq!(
        d.header("content-length"),
        Some(photo.len().to_string().as_str())
    );
    assert_eq!(d.header("x-media-sha256"), Some(sha.as_str()));
    assert!(d.body == photo, "downloaded bytes differ");

    // An incoming photo (injected as the phone would receive it) downloads the same way.
    let inbound = json!({
        "id": "3EB0IN0000000000PHOTO", "chat": ALICE, "sender": ALICE_LID, "senderJid": ALICE,
        "fromMe": false, "isGroup": false, "timestamp": 1_719_662_400_000u64, "type": "image",
        "text": "from alice",
        "media": {"mimetype": "image/png", "data": base64::engine::general_purpose::STANDARD.encode(PNG)},
    });
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{s}/events"),
        Some(json!({"event": "message", "payload": inbound})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut d = None;
    wait_until(Duration::from_secs(10), || {
        let r = g.get(
            &format!("/sessions/{s}/messages/3EB0IN0000000000PHOTO/media"),
            &reader,
        );
        let done = r.status == 200;
        d = Some(r);
        done
    });
    let d = d.unwrap();
    assert!(d.body == PNG, "downloaded bytes differ");
    assert_eq!(d.header("content-type"), Some("image/png"));

    // A message without media.
    let t = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "no media"}),
    );
    let wa = t.json()["waMessageId"].as_str().unwrap().to_owned();
    g.get(&format!("/sessions/{s}/messages/{wa}/media"), &reader)
        .assert_error(404, "not_found");
}

/// Sends only a request head and reads what the server answers before any body.
fn exchange_head(base: &str, head: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("}}") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn actions_edit_react_vote_forward_and_revoke_stored_messages() {
    let g = messaging("");
    let token = g.key("org_act", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let sent = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": ALICE, "text": "first draft"}),
    )
    .json();
    let mid = sent["waMessageId"].as_str().unwrap().to_owned();
    let msg = |id: &str| {
        g.get(&format!("/sessions/{s}/messages/{id}"), &token)
            .json()
    };
    let act = |method: &str, path: &str, body: Value| {
        send_with(
            &g,
            &token,
            method,
            &format!("/sessions/{s}/messages/{path}"),
            None,
            Some(&body),
        )
    };

    // Edit.
    let r = act("PATCH", &mid, json!({"chat": ALICE, "text": "final text"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "sent");
    assert_ne!(
        r.json()["waMessageId"],
        mid.as_str(),
        "an edit is its own protocol message"
    );
    wait_until(Duration::from_secs(10), || {
        msg(&mid)["body"] == "final text"
    });
    assert_eq!(msg(&mid)["edited"], true);
    act("PATCH", &mid, json!({"chat": ALICE, "text": ""})).assert_error(400, "validation_error");
    act(
        "PATCH",
        "3EB0FFFFFFFFFFFFFFFF",
        json!({"chat": ALICE, "text": "x"}),
    )
    .assert_error(404, "not_found");

    // React, replace, remove.
    let r = act(
        "POST",
        &format!("{mid}/reaction"),
        json!({"chat": ALICE, "sender": "", "emoji": "👍"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(10), || {
        msg(&mid)["reactions"][0]["emoji"] == "👍"
    });
    act(
        "POST",
        &format!("{mid}/reaction"),
        json!({"chat": ALICE, "emoji": "👍👍"}),
    )
    .assert_error(400, "validation_error");
    let r = act("DELETE", &format!("{mid}/reaction"), json!({"chat": ALICE}));
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(10), || {
        msg(&mid)["reactions"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });

    // Vote on a poll; not on a text; only its options.
    let poll = send(
        &g,
        &token,
        &s,
        json!({"type": "poll", "to": ALICE, "name": "Lunch?", "options": ["Pizza", "Sushi"]}),
    )
    .json();
    let pid = poll["waMessageId"].as_str().unwrap().to_owned();
    let r = act(
        "POST",
        &format!("{pid}/vote"),
        json!({"chat": ALICE, "options": ["Sushi"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    act(
        "POST",
        &format!("{pid}/vote"),
        json!({"chat": ALICE, "options": ["Tacos"]}),
    )
    .assert_error(400, "validation_error");
    act(
        "POST",
        &format!("{pid}/vote"),
        json!({"chat": ALICE, "options": ["Pizza", "Sushi"]}),
    )
    .assert_error(400, "validation_error");
    act(
        "POST",
        &format!("{mid}/vote"),
        json!({"chat": ALICE, "options": ["Pizza"]}),
    )
    .assert_error(400, "validation_error");

    // Forward to another chat: a new message marked forwarded.
    let r = act(
        "POST",
        &format!("{mid}/forward"),
        json!({"chat": ALICE, "to": BOB}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let fwd = r.json();
    assert_eq!(fwd["chat"], BOB);
    let fid = fwd["waMessageId"].as_str().unwrap();
    wait_until(Duration::from_secs(10), || {
        let m = g.get(&format!("/sessions/{s}/messages/{fid}?chat={BOB}"), &token);
        m.status == 200 && m.json()["forwarded"] == true && m.json()["body"] == "final text"
    });
    act("POST", &format!("{mid}/forward"), json!({"chat": ALICE}))
        .assert_error(400, "validation_error");

    // Revoke for everyone.
    let r = act("DELETE", &mid, json!({"chat": ALICE, "sender": ""}));
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(10), || msg(&mid)["deleted"] == true);
    assert_eq!(msg(&mid)["body"], "");

    let kinds: Vec<String> = wire(&g, &s)
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "text", "edit", "reaction", "reaction", "poll", "vote", "text", "revoke"
        ]
    );
    // Actions take Idempotency-Key too and run async.
    let r = send_with(
        &g,
        &token,
        "POST",
        &format!("/sessions/{s}/messages/{pid}/reaction?async=true"),
        Some("react-1"),
        Some(&json!({"chat": ALICE, "emoji": "🍣"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r2 = send_with(
        &g,
        &token,
        "POST",
        &format!("/sessions/{s}/messages/{pid}/reaction?async=true"),
        Some("react-1"),
        Some(&json!({"chat": ALICE, "emoji": "🍣"})),
    );
    assert_eq!(r2.status, 202);
    assert_eq!(r2.json()["replayed"], true);
}

#[test]
fn a_world_contact_marked_auto_reply_answers_like_a_person() {
    let g = messaging("");
    let token = g.key("org_reply", &["read", "send", "manage"]);
    let s = g.working_session(&token);
    let chloe = "447700900123@s.whatsapp.net";
    let r = send(
        &g,
        &token,
        &s,
        json!({"type": "text", "to": chloe, "text": "Bonjour"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut listed = Vec::new();
    let ok = wait_for(Duration::from_secs(10), || {
        listed = all_pages(&g, &token, &format!("/sessions/{s}/chats/{chloe}/messages"));
        listed.len() == 2
    });
    assert!(ok, "{listed:?}");
    assert_eq!(listed[0]["direction"], "in");
    assert_eq!(listed[0]["body"], "Merci ! Vous avez écrit : Bonjour");
    assert_eq!(listed[0]["senderJid"], chloe);
    assert_eq!(listed[1]["body"], "Bonjour");
    let chat = g
        .get(&format!("/sessions/{s}/chats/{chloe}"), &token)
        .json();
    assert_eq!(chat["unreadCount"], 1, "{chat}");
}
