//! The messages plugin against the SDK's in-memory host: every sendMessage rule, the
//! outbox contract (sync/async, idempotency, rate, connection), the store built from
//! events, paging, actions, media downloads, and tenancy.

use super::Messages;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gateway_sdk::Capability;
use gateway_sdk::json;
use gateway_sdk::outbox::{Content, MediaKind, MediaSource, SendStatus};
use gateway_sdk::testing::{TestHost, TestResponse};
use serde_json::Value;

const ALICE: &str = "6281234567890@s.whatsapp.net";
const ALICE_LID: &str = "205227043110953@lid";
const BOB: &str = "6289876543210@s.whatsapp.net";
const GROUP: &str = "120363021234567890@g.us";
/// The number `TestHost::add_session` pairs.
const ME: &str = "15550001111@s.whatsapp.net";

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'];
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const OGG: &[u8] = b"OggS\0\x02\0\0\0\0";
const MP3: &[u8] = b"ID3\x04\0\0\0\0\0\0";

fn setup() -> (TestHost, String) {
    let host = TestHost::new::<Messages>();
    let s = host.add_session();
    (host, s)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn send(host: &TestHost, s: &str, body: Value) -> TestResponse {
    host.post(&format!("/sessions/{s}/messages"), body)
}

fn send_async(host: &TestHost, s: &str, body: Value) -> TestResponse {
    host.post(&format!("/sessions/{s}/messages?async=true"), body)
}

fn keyed(host: &TestHost, method: &str, path: &str, key: &str, body: Value) -> TestResponse {
    host.request_with_headers(method, path, &[("Idempotency-Key", key)], Some(body))
}

fn text_to(to: &str, text: &str) -> Value {
    json!({"type": "text", "to": to, "text": text})
}

/// Sends and expects `status`, answering the body.
fn sent(host: &TestHost, s: &str, body: Value, status: u16) -> Value {
    let r = send(host, s, body);
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// A 400 naming `field`.
fn refused(r: &TestResponse, field: &str) {
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code().as_deref(), Some("validation_error"));
    assert_eq!(r.json()["error"]["details"]["field"], field, "{}", r.json());
}

fn get_message(host: &TestHost, s: &str, id: &str) -> Value {
    let r = host.get(&format!("/sessions/{s}/messages/{id}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn event(host: &TestHost, s: &str, name: &str, payload: Value) {
    host.event(s, name, payload)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// An incoming text from `sender` in `chat`.
fn text_in(id: &str, chat: &str, sender: &str, text: &str, at: u64) -> Value {
    json!({"id": id, "chat": chat, "sender": sender, "fromMe": false,
           "isGroup": chat.ends_with("@g.us"), "pushName": "Alice", "timestamp": at,
           "type": "text", "text": text})
}

/// This account's own text (sent from the phone), which also shows the account's JID.
fn text_out(id: &str, chat: &str, text: &str, at: u64) -> Value {
    json!({"id": id, "chat": chat, "sender": ME, "senderJid": ME, "fromMe": true,
           "isGroup": chat.ends_with("@g.us"), "timestamp": at, "type": "text", "text": text})
}

fn items(host: &TestHost, s: &str) -> Vec<gateway_sdk::testing::OutboxItem> {
    host.outbox().items(s)
}

// --- sendMessage -------------------------------------------------------------------------

#[test]
fn a_sync_text_answers_200_with_the_send_result_and_stores_the_sent_message() {
    let (host, s) = setup();
    let r = sent(&host, &s, text_to(ALICE, "Hello there!"), 200);
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "chat",
            "error",
            "errorCode",
            "mode",
            "outboxId",
            "replayed",
            "status",
            "timestamp",
            "waMessageId"
        ]
    );
    assert_eq!(
        (r["mode"].as_str(), r["status"].as_str()),
        (Some("sync"), Some("sent"))
    );
    assert_eq!(r["replayed"], false);
    assert_eq!(r["chat"], ALICE);
    assert!(r["outboxId"].as_str().unwrap().starts_with("out_"));
    let id = r["waMessageId"].as_str().unwrap();
    let item = &items(&host, &s)[0];
    assert_eq!(item.message.to, ALICE);
    assert!(matches!(&item.message.content, Content::Text(t) if t == "Hello there!"));
    assert_eq!(item.fingerprint.len(), 64);

    let m = get_message(&host, &s, id);
    assert_eq!(m["chatJid"], ALICE);
    assert_eq!(
        (m["fromMe"].as_bool(), m["direction"].as_str()),
        (Some(true), Some("out"))
    );
    assert_eq!(
        (m["type"].as_str(), m["body"].as_str()),
        (Some("text"), Some("Hello there!"))
    );
    assert_eq!(
        (m["ackLevel"].as_u64(), m["status"].as_str()),
        (Some(1), Some("sent"))
    );
    assert_eq!(m["outboxId"], r["outboxId"]);
    // The account's own JID is known once one of its messages has been seen.
    assert_eq!(m["senderJid"], Value::Null);
    event(
        &host,
        &s,
        "message",
        text_out("OWN0", BOB, "from the phone", 1),
    );
    assert_eq!(get_message(&host, &s, id)["senderJid"], ME);
    for field in [
        "id",
        "chatJid",
        "senderJid",
        "senderLid",
        "fromMe",
        "direction",
        "type",
        "body",
        "hasMedia",
        "media",
        "quotedId",
        "mentions",
        "location",
        "contact",
        "poll",
        "reactions",
        "forwarded",
        "edited",
        "deleted",
        "ackLevel",
        "status",
        "error",
        "errorCode",
        "outboxId",
        "pushName",
        "createdAt",
        "updatedAt",
    ] {
        assert!(m.get(field).is_some(), "Message lacks {field}: {m}");
    }
    assert_eq!(m.as_object().unwrap().len(), 27, "{m}");
}

#[test]
fn async_answers_202_pending_and_the_row_follows_the_outbox() {
    let (host, s) = setup();
    let r = send_async(&host, &s, text_to(ALICE, "later"));
    assert_eq!(r.status, 202);
    let r = r.json();
    assert_eq!(
        (r["mode"].as_str(), r["status"].as_str()),
        (Some("async"), Some("pending"))
    );
    let id = r["waMessageId"].as_str().unwrap().to_owned();
    let out = r["outboxId"].as_str().unwrap().to_owned();
    let m = get_message(&host, &s, &id);
    assert_eq!(
        (m["ackLevel"].as_u64(), m["status"].as_str()),
        (Some(0), Some("pending"))
    );

    assert_eq!(host.outbox().dispatch(&s), 1);
    assert_eq!(get_message(&host, &s, &id)["status"], "sent");
    host.outbox().mark(&out, SendStatus::Delivered, None);
    assert_eq!(get_message(&host, &s, &id)["ackLevel"], 2);
    host.outbox().mark(&out, SendStatus::Read, None);
    let m = get_message(&host, &s, &id);
    assert_eq!(
        (m["ackLevel"].as_u64(), m["status"].as_str()),
        (Some(3), Some("read"))
    );
    let item = host.get(&format!("/sessions/{s}/outbox/{out}")).json();
    assert_eq!(
        (item["status"].as_str(), item["mode"].as_str()),
        (Some("read"), Some("async"))
    );
}

#[test]
fn recipients_are_user_lid_group_or_bare_digits() {
    let (host, s) = setup();
    for (to, chat) in [
        ("6281234567890", ALICE),
        ("6281234567890:12@s.whatsapp.net", ALICE),
        ("6281234567890@c.us", ALICE),
        (ALICE_LID, ALICE_LID),
        (GROUP, GROUP),
    ] {
        let r = sent(&host, &s, text_to(to, "hi"), 200);
        assert_eq!(r["chat"], chat, "{to}");
    }
    for to in [
        "",
        "+6281234567890",
        "123@newsletter",
        "status@broadcast",
        "alice",
        "12@x.net",
    ] {
        refused(&send(&host, &s, text_to(to, "hi")), "to");
    }
}

#[test]
fn bodies_refuse_unknown_fields_missing_fields_and_unknown_types() {
    let (host, s) = setup();
    for body in [
        json!({"type": "text", "to": ALICE, "text": "x", "extra": 1}),
        json!({"type": "text", "to": ALICE}),
        json!({"type": "text", "text": "x"}),
        json!({"type": "gif", "to": ALICE}),
        json!({"to": ALICE, "text": "x"}),
        json!({"type": "location", "to": ALICE, "latitude": 1.0, "longitude": 1.0, "text": "x"}),
        json!({"type": "audio", "to": ALICE, "media": {"data": b64(OGG), "caption": "x"}}),
        json!({"type": "image", "to": ALICE, "media": {"data": b64(JPEG), "filename": "a.jpg"}}),
        json!({"type": "image", "to": ALICE, "media": {"data": b64(JPEG), "voiceNote": true}}),
        json!({"type": "sticker", "to": ALICE, "mentions": [BOB], "media": {"data": "x"}}),
        json!({"type": "poll", "to": ALICE, "name": "n", "options": ["a", "b"], "selectableCount": -1}),
    ] {
        let r = send(&host, &s, body.clone());
        assert_eq!(
            r.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert!(
        items(&host, &s).is_empty(),
        "a refused request records nothing"
    );
}

#[test]
fn text_is_one_to_65536_characters() {
    let (host, s) = setup();
    refused(&send(&host, &s, text_to(ALICE, "")), "text");
    refused(&send(&host, &s, text_to(ALICE, " \n\t")), "text");
    refused(
        &send(&host, &s, text_to(ALICE, &"é".repeat(65_537))),
        "text",
    );
    sent(&host, &s, text_to(ALICE, &"é".repeat(65_536)), 200);
}

#[test]
fn polls_take_two_to_twelve_distinct_short_options() {
    let (host, s) = setup();
    let poll = |name: &str, options: Value, count: Option<u32>| {
        let mut b = json!({"type": "poll", "to": GROUP, "name": name, "options": options});
        if let Some(c) = count {
            b["selectableCount"] = c.into();
        }
        send(&host, &s, b)
    };
    refused(&poll("Lunch?", json!(["a"]), None), "options");
    refused(
        &poll(
            "Lunch?",
            json!((0..13).map(|i| i.to_string()).collect::<Vec<_>>()),
            None,
        ),
        "options",
    );
    refused(&poll("Lunch?", json!(["a", "a"]), None), "options");
    refused(&poll("Lunch?", json!(["a", " "]), None), "options");
    refused(
        &poll("Lunch?", json!(["a", "x".repeat(101)]), None),
        "options",
    );
    refused(&poll("", json!(["a", "b"]), None), "name");
    refused(&poll(&"n".repeat(256), json!(["a", "b"]), None), "name");
    refused(
        &poll("Lunch?", json!(["a", "b"]), Some(3)),
        "selectableCount",
    );

    let r = poll("Lunch?", json!(["Pizza", "Sushi", "x".repeat(100)]), None);
    assert_eq!(r.status, 200, "{}", r.json());
    let twelve = poll(
        "Any?",
        json!((0..12).map(|i| i.to_string()).collect::<Vec<_>>()),
        Some(0),
    );
    assert_eq!(twelve.status, 200);
    let all = items(&host, &s);
    assert!(
        matches!(&all[0].message.content, Content::Poll(p) if p.selectable_count == 1 && p.options.len() == 3)
    );
    assert!(matches!(&all[1].message.content, Content::Poll(p) if p.selectable_count == 0));
    let m = get_message(&host, &s, r.json()["waMessageId"].as_str().unwrap());
    assert_eq!(m["type"], "poll");
    assert_eq!(
        m["poll"]["options"][0],
        json!({"name": "Pizza", "votes": 0})
    );
    assert_eq!(m["poll"]["selectableCount"], 1);
}

#[test]
fn locations_are_within_the_globe() {
    let (host, s) = setup();
    let loc = |lat: f64, lon: f64| json!({"type": "location", "to": ALICE, "latitude": lat, "longitude": lon});
    refused(&send(&host, &s, loc(90.5, 0.0)), "latitude");
    refused(&send(&host, &s, loc(-91.0, 0.0)), "latitude");
    refused(&send(&host, &s, loc(0.0, 180.01)), "longitude");
    refused(&send(&host, &s, loc(0.0, -181.0)), "longitude");
    let mut edge = loc(-90.0, 180.0);
    edge["name"] = "Pole".into();
    edge["address"] = "South".into();
    let r = sent(&host, &s, edge, 200);
    let m = get_message(&host, &s, r["waMessageId"].as_str().unwrap());
    assert_eq!(
        m["location"],
        json!({"latitude": -90.0, "longitude": 180.0, "name": "Pole", "address": "South"})
    );
    assert!(
        matches!(&items(&host, &s)[0].message.content, Content::Location(l) if l.name.as_deref() == Some("Pole"))
    );
}

#[test]
fn contacts_are_a_name_and_phone_or_a_vcard_of_at_most_64_kib() {
    let (host, s) = setup();
    let contact = |c: Value| {
        send(
            &host,
            &s,
            json!({"type": "contact", "to": ALICE, "contact": c}),
        )
    };
    let r = contact(json!({"name": "Bob", "phone": "+62 898-765-43210"}));
    assert_eq!(r.status, 200, "{}", r.json());
    match &items(&host, &s)[0].message.content {
        Content::Contact(c) => {
            assert_eq!(c.name, "Bob");
            assert!(
                c.vcard
                    .contains("TEL;type=CELL;waid=6289876543210:+6289876543210"),
                "{}",
                c.vcard
            );
        }
        other => panic!("{other:?}"),
    }
    let card = "BEGIN:VCARD\nVERSION:3.0\nFN:Carol\nTEL:+15551234567\nEND:VCARD";
    let r = contact(json!(card));
    assert_eq!(r.status, 200);
    let m = get_message(&host, &s, r.json()["waMessageId"].as_str().unwrap());
    assert_eq!(m["contact"], json!({"name": "Carol", "vcard": card}));

    refused(
        &contact(json!({"name": "Bob", "phone": "12"})),
        "contact.phone",
    );
    refused(
        &contact(json!({"name": " ", "phone": "6289876543210"})),
        "contact.name",
    );
    refused(&contact(json!("hello")), "contact");
    refused(
        &contact(json!("BEGIN:VCARD\nTEL:+15551234567\nEND:VCARD")),
        "contact",
    );
    let huge = format!(
        "BEGIN:VCARD\nFN:Big\nNOTE:{}\nEND:VCARD",
        "x".repeat(64 << 10)
    );
    refused(&contact(json!(huge)), "contact");
    assert_eq!(
        contact(json!({"name": "Bob", "phone": "6289876543210", "email": "x"})).status,
        400
    );
}

#[test]
fn media_types_come_from_the_field_the_uri_or_the_bytes_and_must_fit_the_kind() {
    let (host, s) = setup();
    let media =
        |kind: &str, m: Value| send(&host, &s, json!({"type": kind, "to": ALICE, "media": m}));
    // Sniffed JPEG, with a caption and mentions.
    let r = send(
        &host,
        &s,
        json!({"type": "image", "to": GROUP, "mentions": [BOB],
        "media": {"data": b64(JPEG), "caption": "look"}}),
    );
    assert_eq!(r.status, 200, "{}", r.json());
    let m = get_message(&host, &s, r.json()["waMessageId"].as_str().unwrap());
    assert_eq!(
        (
            m["type"].as_str(),
            m["body"].as_str(),
            m["hasMedia"].as_bool()
        ),
        (Some("image"), Some("look"), Some(true))
    );
    assert_eq!(m["media"]["mimetype"], "image/jpeg");
    assert_eq!(m["media"]["size"], JPEG.len());
    assert_eq!(m["mentions"], json!([BOB]));
    match &items(&host, &s)[0].message.content {
        Content::Media(md) => {
            assert_eq!(md.kind, MediaKind::Image);
            assert_eq!(md.mimetype.as_deref(), Some("image/jpeg"));
            assert!(matches!(&md.source, MediaSource::Inline(b) if b == JPEG));
        }
        other => panic!("{other:?}"),
    }
    // A data: URI names the type.
    assert_eq!(
        media(
            "image",
            json!({"data": format!("data:image/png;base64,{}", b64(PNG))})
        )
        .status,
        200
    );
    // Mismatches and types the kind does not take.
    refused(
        &media("image", json!({"data": b64(JPEG), "mimetype": "image/png"})),
        "media.mimetype",
    );
    refused(
        &media(
            "image",
            json!({"data": format!("data:image/png;base64,{}", b64(PNG)), "mimetype": "image/webp"}),
        ),
        "media.mimetype",
    );
    refused(
        &media("image", json!({"data": b64(b"GIF89a......")})),
        "media.mimetype",
    );
    refused(
        &media("sticker", json!({"data": b64(PNG)})),
        "media.mimetype",
    );
    refused(
        &media("video", json!({"data": b64(b"not a video")})),
        "media.mimetype",
    );
    refused(
        &media("audio", json!({"data": b64(MP3), "voiceNote": true})),
        "media.voiceNote",
    );
    assert_eq!(
        media("audio", json!({"data": b64(OGG), "voiceNote": true})).status,
        200
    );
    assert_eq!(media("audio", json!({"data": b64(MP3)})).status, 200);
    // Documents take anything; a name without a path.
    let r = media(
        "document",
        json!({"data": b64(b"just text"), "filename": "notes.txt", "caption": "notes"}),
    );
    assert_eq!(r.status, 200);
    let m = get_message(&host, &s, r.json()["waMessageId"].as_str().unwrap());
    assert_eq!(m["media"]["mimetype"], "application/octet-stream");
    assert_eq!(m["media"]["fileName"], "notes.txt");
    refused(
        &media(
            "document",
            json!({"data": b64(b"x"), "filename": "../etc/passwd"}),
        ),
        "media.filename",
    );
    // data xor id; valid base64; not empty.
    refused(
        &media("image", json!({"data": b64(JPEG), "id": "med_1"})),
        "media",
    );
    refused(&media("image", json!({})), "media");
    refused(&media("image", json!({"data": "***"})), "media.data");
    refused(&media("image", json!({"data": ""})), "media.data");
    refused(&media("image", json!({"id": "file_1"})), "media.id");
    // Mentions need a caption to live in.
    refused(
        &send(
            &host,
            &s,
            json!({"type": "image", "to": GROUP, "mentions": [BOB], "media": {"data": b64(JPEG)}}),
        ),
        "mentions",
    );
}

#[test]
fn decoded_media_over_16_mib_is_refused() {
    let (host, s) = setup();
    let big = "A".repeat(((16 << 20) / 3 + 2) * 4);
    let r = send(
        &host,
        &s,
        json!({"type": "document", "to": ALICE, "media": {"data": big}}),
    );
    refused(&r, "media.data");
    assert_eq!(r.json()["error"]["details"]["limit"], 16 << 20);
}

#[test]
fn uploaded_media_is_sent_by_id_and_unknown_ids_are_404() {
    let (host, s) = setup();
    let id = host.media().add_upload(&s);
    let r = send(
        &host,
        &s,
        json!({"type": "video", "to": ALICE, "media": {"id": id, "caption": "clip"}}),
    );
    assert_eq!(r.status, 200, "{}", r.json());
    let m = get_message(&host, &s, r.json()["waMessageId"].as_str().unwrap());
    assert_eq!(
        m["media"]["mimetype"],
        Value::Null,
        "the host knows the upload's type"
    );
    assert!(
        matches!(&items(&host, &s)[0].message.content, Content::Media(md) if matches!(&md.source, MediaSource::Upload(u) if *u == id))
    );
    let r = send(
        &host,
        &s,
        json!({"type": "video", "to": ALICE, "media": {"id": "med_01JUNKNOWN"}}),
    );
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("not_found"))
    );
    let r = send(
        &host,
        &s,
        json!({"type": "video", "to": ALICE, "media": {"id": id, "mimetype": "image/png"}}),
    );
    refused(&r, "media.mimetype");
}

#[test]
fn mentions_are_user_jids_deduplicated() {
    let (host, s) = setup();
    let body = |m: Value| json!({"type": "text", "to": GROUP, "text": "hey", "mentions": m});
    refused(&send(&host, &s, body(json!([GROUP]))), "mentions");
    refused(&send(&host, &s, body(json!(["nobody"]))), "mentions");
    let r = sent(&host, &s, body(json!([BOB, BOB, ALICE_LID])), 200);
    assert_eq!(items(&host, &s)[0].message.mentions, [BOB, ALICE_LID]);
    let m = get_message(&host, &s, r["waMessageId"].as_str().unwrap());
    assert_eq!(m["mentions"], json!([BOB, ALICE_LID]));
}

#[test]
fn reply_to_must_be_stored_in_the_chat_sent_to() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        text_in("QUOTED1", GROUP, BOB, "question?", now()),
    );
    event(
        &host,
        &s,
        "message",
        text_in("DMQ1", ALICE_LID, ALICE_LID, "from the lid", now()),
    );
    let reply =
        |to: &str, id: &str| json!({"type": "text", "to": to, "text": "answer", "replyTo": id});
    let r = send(&host, &s, reply(GROUP, "NOPE"));
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("not_found"))
    );
    let r = send(&host, &s, reply(ALICE, "QUOTED1"));
    assert_eq!(r.status, 404, "stored, but in another chat");
    refused(&send(&host, &s, reply(GROUP, "bad/id")), "replyTo");

    let r = sent(&host, &s, reply(GROUP, "QUOTED1"), 200);
    let key = items(&host, &s)[0].message.reply_to.clone().unwrap();
    assert_eq!(
        (key.chat.as_str(), key.id.as_str(), key.sender.as_deref()),
        (GROUP, "QUOTED1", Some(BOB))
    );
    assert_eq!(
        get_message(&host, &s, r["waMessageId"].as_str().unwrap())["quotedId"],
        "QUOTED1"
    );

    // A DM is one chat whether addressed by phone or LID, once the link is known.
    assert_eq!(send(&host, &s, reply(ALICE, "DMQ1")).status, 404);
    event(
        &host,
        &s,
        "lid.mapping",
        json!({"mappings": [{"lid": ALICE_LID, "jid": ALICE}]}),
    );
    assert_eq!(send(&host, &s, reply(ALICE, "DMQ1")).status, 200);
    assert_eq!(send(&host, &s, reply("6281234567890", "DMQ1")).status, 200);
}

// --- the outbox contract -------------------------------------------------------------------

#[test]
fn the_same_key_and_request_replay_the_first_answer_without_a_second_message() {
    let (host, s) = setup();
    let path = format!("/sessions/{s}/messages");
    let first = keyed(&host, "POST", &path, "order-42", text_to(ALICE, "once"));
    assert_eq!(first.status, 200);
    // The same body spelled differently is the same request.
    let again = host.request_with_headers(
        "POST",
        &path,
        &[("idempotency-key", "order-42")],
        Some(
            serde_json::from_str(&format!(
                r#"{{"text":"once","to":"{ALICE}","type":"text"}}"#
            ))
            .unwrap(),
        ),
    );
    assert_eq!(again.status, 200);
    let (a, b) = (first.json(), again.json());
    assert_eq!(b["replayed"], true);
    assert_eq!(
        (&a["outboxId"], &a["waMessageId"], &a["status"]),
        (&b["outboxId"], &b["waMessageId"], &b["status"])
    );
    assert_eq!(items(&host, &s).len(), 1, "no second message");

    // Another request with the key: 422, naming the first item.
    let other = keyed(&host, "POST", &path, "order-42", text_to(ALICE, "twice"));
    assert_eq!(
        (other.status, other.error_code().as_deref()),
        (422, Some("validation_error"))
    );
    let details = &other.json()["error"]["details"];
    assert_eq!(details["reason"], "idempotency_key_reused");
    assert_eq!(details["outboxId"], a["outboxId"]);
    // The async flag and the session are part of the request.
    let r = keyed(
        &host,
        "POST",
        &format!("{path}?async=true"),
        "order-42",
        text_to(ALICE, "once"),
    );
    assert_eq!(r.status, 422);
    let s2 = host.add_session();
    let r = keyed(
        &host,
        "POST",
        &format!("/sessions/{s2}/messages"),
        "order-42",
        text_to(ALICE, "once"),
    );
    assert_eq!(r.status, 422, "keys are scoped to the organization");
    // Another organization has its own keys.
    let host = host.caller("org_other", &[Capability::Read, Capability::Send]);
    let s3 = host.add_session();
    let r = keyed(
        &host,
        "POST",
        &format!("/sessions/{s3}/messages"),
        "order-42",
        text_to(ALICE, "once"),
    );
    assert_eq!(
        (r.status, r.json()["replayed"].as_bool()),
        (200, Some(false))
    );
}

#[test]
fn a_replayed_202_answers_202_with_the_current_state() {
    let (host, s) = setup();
    let path = format!("/sessions/{s}/messages?async=true");
    let first = keyed(&host, "POST", &path, "k1", text_to(ALICE, "queued"));
    assert_eq!(
        (first.status, first.json()["status"].as_str()),
        (202, Some("pending"))
    );
    host.outbox().dispatch(&s);
    let again = keyed(&host, "POST", &path, "k1", text_to(ALICE, "queued"));
    assert_eq!(again.status, 202, "the original status");
    assert_eq!(
        (
            again.json()["status"].as_str(),
            again.json()["replayed"].as_bool()
        ),
        (Some("sent"), Some(true))
    );
    assert_eq!(items(&host, &s).len(), 1);
}

#[test]
fn idempotency_keys_are_1_to_255_visible_ascii_characters() {
    let (host, s) = setup();
    let path = format!("/sessions/{s}/messages");
    for bad in ["", "has space", "tab\t", "ключ", &"k".repeat(256)] {
        let r = keyed(&host, "POST", &path, bad, text_to(ALICE, "x"));
        refused(&r, "Idempotency-Key");
    }
    assert_eq!(
        keyed(&host, "POST", &path, &"k".repeat(255), text_to(ALICE, "x")).status,
        200
    );
    assert_eq!(
        keyed(&host, "POST", &path, "!~", text_to(ALICE, "y")).status,
        200
    );
    refused(
        &host.post(&format!("{path}?async=maybe"), text_to(ALICE, "x")),
        "async",
    );
}

#[test]
fn sync_needs_a_connection_while_async_waits_through_a_disconnect() {
    let (host, s) = setup();
    host.outbox().set_connected(&s, false);
    let r = send(&host, &s, text_to(ALICE, "now"));
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (501, Some("not_implemented"))
    );
    assert!(
        items(&host, &s).is_empty(),
        "a refused send records nothing"
    );
    let r = send_async(&host, &s, text_to(ALICE, "when you can"));
    assert_eq!(r.status, 202);
    let id = r.json()["waMessageId"].as_str().unwrap().to_owned();
    assert_eq!(
        host.outbox().dispatch(&s),
        0,
        "nothing leaves while disconnected"
    );
    host.outbox().set_connected(&s, true);
    assert_eq!(host.outbox().dispatch(&s), 1);
    assert_eq!(get_message(&host, &s, &id)["status"], "sent");

    // A stopped, never paired session refuses both.
    let stopped = host.sessions().add(host.organization(), None);
    assert_eq!(send(&host, &stopped, text_to(ALICE, "x")).status, 501);
    assert_eq!(send_async(&host, &stopped, text_to(ALICE, "x")).status, 501);
    assert_eq!(
        host.get(&format!("/sessions/{stopped}/chats/{ALICE}/messages"))
            .status,
        404
    );
}

#[test]
fn sync_sends_over_the_rate_answer_429_with_the_limit_and_async_ones_queue() {
    let (host, s) = setup();
    for i in 0..20 {
        sent(&host, &s, text_to(ALICE, &format!("n{i}")), 200);
    }
    let r = send(&host, &s, text_to(ALICE, "one too many"));
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (429, Some("rate_limited"))
    );
    let d = &r.json()["error"]["details"];
    assert_eq!(
        (
            d["limit"].as_str(),
            d["ratePerMin"].as_u64(),
            d["ratePerHour"].as_u64()
        ),
        (Some("perMinute"), Some(20), Some(600))
    );
    assert!(d["retryAfterMs"].as_u64().unwrap() > 0);
    assert_eq!(items(&host, &s).len(), 20, "nothing recorded");
    // Async is accepted and waits for tokens.
    assert_eq!(send_async(&host, &s, text_to(ALICE, "queued")).status, 202);
    assert_eq!(host.outbox().dispatch(&s), 0);
    host.outbox().advance_clock(60_000);
    assert_eq!(host.outbox().dispatch(&s), 1);
    sent(&host, &s, text_to(ALICE, "again"), 200);
}

#[test]
fn the_waiting_queue_is_capped() {
    let (host, s) = setup();
    host.outbox().set_max_pending(2);
    host.outbox().set_connected(&s, false);
    assert_eq!(send_async(&host, &s, text_to(ALICE, "1")).status, 202);
    assert_eq!(send_async(&host, &s, text_to(ALICE, "2")).status, 202);
    let r = send_async(&host, &s, text_to(ALICE, "3"));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["details"]["limit"], "pending");
}

#[test]
fn a_send_whatsapp_refuses_answers_200_failed_and_the_row_says_why() {
    let (host, s) = setup();
    host.outbox()
        .refuse_next("not_on_whatsapp", "6281234567890 is not on WhatsApp");
    let r = sent(&host, &s, text_to(ALICE, "hello?"), 200);
    assert_eq!(
        (r["status"].as_str(), r["errorCode"].as_str()),
        (Some("failed"), Some("not_on_whatsapp"))
    );
    let m = get_message(&host, &s, r["waMessageId"].as_str().unwrap());
    assert_eq!(
        (m["ackLevel"].as_u64(), m["status"].as_str()),
        (Some(0), Some("failed"))
    );
    assert_eq!(m["errorCode"], "not_on_whatsapp");
    // A late receipt cannot revive it.
    host.outbox().publish();
    event(
        &host,
        &s,
        "message.status",
        json!({"id": r["waMessageId"], "chat": ALICE, "status": "delivered"}),
    );
    assert_eq!(
        get_message(&host, &s, r["waMessageId"].as_str().unwrap())["status"],
        "failed"
    );
}

// --- the store built from events -----------------------------------------------------------

#[test]
fn incoming_messages_of_every_kind_are_stored() {
    let (host, s) = setup();
    let at = 1_719_662_400_000;
    event(
        &host,
        &s,
        "message",
        json!({
        "id": "IMG1", "chat": GROUP, "sender": ALICE_LID, "senderLid": ALICE_LID, "senderJid": ALICE,
        "fromMe": false, "isGroup": true, "pushName": "Alice", "timestamp": at, "type": "image",
        "text": "Look at this", "media": {"mimetype": "image/jpeg", "size": 48213, "width": 1280, "height": 720},
        "mentions": [BOB], "quotedId": "Q1", "forwarded": true, "somethingNew": 1}),
    );
    let m = get_message(&host, &s, "IMG1");
    assert_eq!(m["chatJid"], GROUP);
    assert_eq!(
        (m["senderJid"].as_str(), m["senderLid"].as_str()),
        (Some(ALICE), Some(ALICE_LID))
    );
    assert_eq!(
        (
            m["direction"].as_str(),
            m["ackLevel"].as_u64(),
            m["status"].clone()
        ),
        (Some("in"), Some(1), Value::Null)
    );
    assert_eq!(
        m["media"],
        json!({"mimetype": "image/jpeg", "size": 48213, "fileName": null, "seconds": null, "width": 1280, "height": 720})
    );
    assert_eq!(
        (m["hasMedia"].as_bool(), m["forwarded"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (m["quotedId"].as_str(), m["pushName"].as_str()),
        (Some("Q1"), Some("Alice"))
    );
    assert_eq!(
        (m["createdAt"].as_u64(), m["mentions"].clone()),
        (Some(at), json!([BOB]))
    );

    event(
        &host,
        &s,
        "message",
        json!({"id": "LOC1", "chat": ALICE, "sender": ALICE, "type": "location",
        "location": {"latitude": -6.2, "longitude": 106.8, "name": "Monas"}}),
    );
    assert_eq!(get_message(&host, &s, "LOC1")["location"]["name"], "Monas");
    event(
        &host,
        &s,
        "message",
        json!({"id": "VC1", "chat": ALICE, "sender": ALICE, "type": "contact",
        "contact": {"name": "Bob", "vcard": "BEGIN:VCARD\nFN:Bob\nEND:VCARD"}}),
    );
    assert_eq!(get_message(&host, &s, "VC1")["contact"]["name"], "Bob");
    event(
        &host,
        &s,
        "message",
        json!({"id": "NEW1", "chat": ALICE, "sender": ALICE, "type": "future_thing"}),
    );
    assert_eq!(get_message(&host, &s, "NEW1")["type"], "unknown");
    // Malformed entries are skipped, not fatal.
    event(
        &host,
        &s,
        "message",
        json!({"id": "BAD/1", "chat": ALICE, "sender": ALICE}),
    );
    event(
        &host,
        &s,
        "message",
        json!({"id": "BAD2", "chat": "nonsense", "sender": ALICE}),
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/messages/BAD2")).status,
        404
    );
}

#[test]
fn edits_revokes_and_reactions_update_the_stored_message() {
    let (host, s) = setup();
    event(&host, &s, "message", text_out("OWN0", GROUP, "mine", 50));
    event(
        &host,
        &s,
        "message",
        text_in("M1", GROUP, ALICE, "helo", 100),
    );
    let change = |name: &str, extra: Value| {
        let mut p = json!({"id": "M1", "chat": GROUP, "sender": ALICE, "fromMe": false});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        event(&host, &s, name, p);
    };
    change("message.edit", json!({"text": "hello", "timestamp": 300}));
    change("message.edit", json!({"text": "stale", "timestamp": 200}));
    let m = get_message(&host, &s, "M1");
    assert_eq!(
        (m["body"].as_str(), m["edited"].as_bool()),
        (Some("hello"), Some(true))
    );
    assert_eq!(m["updatedAt"], 300);

    let react = |sender: &str, from_me: bool, emoji: &str, at: u64| {
        event(
            &host,
            &s,
            "message.reaction",
            json!({"id": "M1", "chat": GROUP, "sender": sender,
            "fromMe": from_me, "emoji": emoji, "timestamp": at}),
        );
    };
    react(BOB, false, "👍", 400);
    react(ALICE_LID, false, "❤️", 410);
    react(BOB, false, "😂", 420);
    react(BOB, false, "🙈", 415); // older than Bob's current one
    react(ME, true, "🔥", 430);
    let r = get_message(&host, &s, "M1")["reactions"].clone();
    assert_eq!(
        r,
        json!([
            {"emoji": "❤️", "senderJid": ALICE_LID, "timestamp": 410},
            {"emoji": "😂", "senderJid": BOB, "timestamp": 420},
            {"emoji": "🔥", "senderJid": ME, "timestamp": 430},
        ])
    );
    react(BOB, false, "", 500);
    assert_eq!(
        get_message(&host, &s, "M1")["reactions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    change("message.revoke", json!({"by": ALICE, "timestamp": 600}));
    let m = get_message(&host, &s, "M1");
    assert_eq!(
        (
            m["deleted"].as_bool(),
            m["body"].as_str(),
            m["media"].clone()
        ),
        (Some(true), Some(""), Value::Null)
    );
    change(
        "message.edit",
        json!({"text": "resurrected", "timestamp": 700}),
    );
    assert_eq!(get_message(&host, &s, "M1")["body"], "");
    // Changes to messages never stored are ignored.
    event(
        &host,
        &s,
        "message.edit",
        json!({"id": "GHOST", "chat": GROUP, "sender": ALICE, "text": "x"}),
    );
}

#[test]
fn poll_votes_count_each_voters_latest_choice() {
    let (host, s) = setup();
    event(&host, &s, "message", text_out("OWN0", GROUP, "mine", 50));
    event(
        &host,
        &s,
        "message",
        json!({"id": "P1", "chat": GROUP, "sender": ALICE, "type": "poll",
        "text": "Lunch?", "poll": {"name": "Lunch?", "options": ["Pizza", "Sushi", "Tacos"], "selectableCount": 0}}),
    );
    let vote = |voter: &str, options: Value, at: u64| {
        event(
            &host,
            &s,
            "poll.vote",
            json!({"pollId": "P1", "chat": GROUP, "voter": voter, "options": options, "timestamp": at}),
        );
    };
    let counts = || -> Vec<u64> {
        get_message(&host, &s, "P1")["poll"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["votes"].as_u64().unwrap())
            .collect()
    };
    vote(ALICE, json!(["Pizza"]), 10);
    vote(BOB, json!(["Pizza", "Sushi"]), 11);
    assert_eq!(counts(), [2, 1, 0]);
    vote(ALICE, json!(["Sushi"]), 20);
    vote(ALICE, json!(["Tacos"]), 15); // older: ignored
    assert_eq!(counts(), [1, 2, 0]);
    vote(BOB, json!([]), 30);
    assert_eq!(counts(), [0, 1, 0]);
    vote(ME, json!(["Tacos"]), 40); // this account, seen from another device
    assert_eq!(counts(), [0, 1, 1]);
    let p = get_message(&host, &s, "P1")["poll"].clone();
    assert_eq!(
        (p["name"].as_str(), p["selectableCount"].as_u64()),
        (Some("Lunch?"), Some(0))
    );
}

#[test]
fn receipts_only_raise_the_ack_level_and_read_marks_incoming_messages() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        text_out("OUT1", ALICE, "from the phone", 10),
    );
    let status = |id: &str, st: &str| {
        event(
            &host,
            &s,
            "message.status",
            json!({"id": id, "chat": ALICE, "status": st, "recipient": ALICE}),
        )
    };
    let level = |id: &str| get_message(&host, &s, id)["ackLevel"].as_u64().unwrap();
    assert_eq!(level("OUT1"), 1);
    status("OUT1", "delivered");
    status("OUT1", "sent");
    assert_eq!(level("OUT1"), 2);
    status("OUT1", "played");
    status("OUT1", "read");
    assert_eq!(level("OUT1"), 4);
    assert_eq!(
        get_message(&host, &s, "OUT1")["status"],
        "read",
        "played reads as read"
    );
    status("OUT1", "failed");
    assert_eq!(get_message(&host, &s, "OUT1")["status"], "read");

    event(&host, &s, "message", text_in("IN1", ALICE, ALICE, "hi", 20));
    assert_eq!(level("IN1"), 1);
    status("IN1", "read");
    assert_eq!(
        (
            level("IN1"),
            get_message(&host, &s, "IN1")["status"].clone()
        ),
        (3, Value::Null)
    );
}

#[test]
fn history_sync_adds_old_messages_without_undoing_newer_knowledge() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        text_in("H2", ALICE, ALICE, "typo", 2_000),
    );
    event(
        &host,
        &s,
        "message.edit",
        json!({"id": "H2", "chat": ALICE, "sender": ALICE, "fromMe": false, "text": "fixed", "timestamp": 2_500}),
    );
    event(
        &host,
        &s,
        "history.sync",
        json!({"syncType": "INITIAL_BOOTSTRAP",
        "chats": [{"jid": BOB, "name": "Bob"}, {"jid": "garbage"}],
        "messages": [
            text_in("H1", ALICE, ALICE, "older", 1_000),
            text_in("H2", ALICE, ALICE, "typo", 2_000),
            {"id": "H3"},
            text_out("H4", ALICE, "my old one", 1_500),
        ]}),
    );
    let list = host.collect_pages(&format!("/sessions/{s}/chats/{ALICE}/messages"));
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["H2", "H4", "H1"]);
    assert_eq!(list[0]["body"], "fixed");
    // A chat known only from the sync is stored, with no messages yet.
    let r = host.get(&format!("/sessions/{s}/chats/{BOB}/messages"));
    assert_eq!((r.status, r.json()["data"].clone()), (200, json!([])));
}

#[test]
fn a_deleted_chat_takes_its_messages_under_every_name() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "lid.mapping",
        json!({"mappings": [{"lid": ALICE_LID, "jid": ALICE}]}),
    );
    event(
        &host,
        &s,
        "message",
        text_in("A1", ALICE, ALICE, "by phone", 1),
    );
    event(
        &host,
        &s,
        "message",
        text_in("A2", ALICE_LID, ALICE_LID, "by lid", 2),
    );
    event(&host, &s, "message", text_in("B1", BOB, BOB, "bob", 3));
    assert_eq!(
        host.collect_pages(&format!("/sessions/{s}/chats/{ALICE}/messages"))
            .len(),
        2
    );
    event(
        &host,
        &s,
        "chats.delete",
        json!({"jid": ALICE_LID, "source": "api"}),
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/chats/{ALICE}/messages"))
            .status,
        404
    );
    assert_eq!(host.get(&format!("/sessions/{s}/messages/A1")).status, 404);
    assert_eq!(host.get(&format!("/sessions/{s}/messages/A2")).status, 404);
    assert_eq!(get_message(&host, &s, "B1")["body"], "bob");
    // The chat comes back with new activity.
    event(
        &host,
        &s,
        "message",
        text_in("A3", ALICE, ALICE, "again", 4),
    );
    assert_eq!(
        host.collect_pages(&format!("/sessions/{s}/chats/{ALICE}/messages"))
            .len(),
        1
    );
}

#[test]
fn chat_lists_are_newest_first_and_the_cursor_is_stable_while_messages_arrive() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "chats.upsert",
        json!({"chats": [{"jid": ALICE, "lid": ALICE_LID}]}),
    );
    for i in 0..25u64 {
        // Half arrive addressed by LID: one chat either way.
        let chat = if i % 2 == 0 { ALICE } else { ALICE_LID };
        let m = if i % 5 == 0 {
            text_out(&format!("M{i:02}"), chat, "mine", 1_000 + i)
        } else {
            text_in(&format!("M{i:02}"), chat, chat, "theirs", 1_000 + i)
        };
        event(&host, &s, "message", m);
    }
    let base = format!("/sessions/{s}/chats/{}/messages", ALICE.replace('@', "%40"));
    let first = host.get(&format!("{base}?limit=10")).json();
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&first),
        (15..25)
            .rev()
            .map(|i| format!("M{i:02}"))
            .collect::<Vec<_>>()
    );
    // Five new messages arrive; the next page goes on where the first stopped.
    for i in 25..30u64 {
        event(
            &host,
            &s,
            "message",
            text_in(&format!("M{i:02}"), ALICE, ALICE, "new", 1_000 + i),
        );
    }
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = host.get(&format!("{base}?limit=10&cursor={cursor}")).json();
    assert_eq!(
        ids(&second),
        (5..15)
            .rev()
            .map(|i| format!("M{i:02}"))
            .collect::<Vec<_>>()
    );
    let third = host
        .get(&format!(
            "{base}?limit=10&cursor={}",
            second["nextCursor"].as_str().unwrap()
        ))
        .json();
    assert_eq!(
        ids(&third),
        (0..5).rev().map(|i| format!("M{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(third["nextCursor"], Value::Null);
    // By LID: the same list.
    assert_eq!(
        host.collect_pages(&format!("/sessions/{s}/chats/{ALICE_LID}/messages?limit=7"))
            .len(),
        30
    );
    // Filters, paged.
    let mine = host.collect_pages(&format!("{base}?fromMe=true&limit=2"));
    assert_eq!(
        mine.iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["M20", "M15", "M10", "M05", "M00"]
    );
    let theirs = host.collect_pages(&format!("{base}?fromMe=false&type=text&limit=3"));
    assert_eq!(theirs.len(), 25);
    assert!(host.collect_pages(&format!("{base}?type=image")).is_empty());
    // Bad input.
    refused(&host.get(&format!("{base}?fromMe=yes")), "fromMe");
    refused(&host.get(&format!("{base}?type=gif")), "type");
    refused(&host.get(&format!("{base}?cursor=bm90IG91cnM")), "cursor");
    refused(
        &host.get(&format!("/sessions/{s}/chats/not-a-jid/messages")),
        "cid",
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/chats/{BOB}/messages"))
            .status,
        404
    );
}

#[test]
fn messages_of_one_timestamp_list_in_arrival_order() {
    let (host, s) = setup();
    // WhatsApp's timestamps are whole seconds, and ids are random: arrival breaks ties.
    for id in ["ZZ9", "AA1", "MM5", "BB2"] {
        event(
            &host,
            &s,
            "message",
            text_in(id, ALICE, ALICE, id, 1_719_662_400_000),
        );
    }
    let sent = sent(&host, &s, text_to(ALICE, "mine"), 200);
    let list = host.collect_pages(&format!("/sessions/{s}/chats/{ALICE}/messages?limit=2"));
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            sent["waMessageId"].as_str().unwrap(),
            "BB2",
            "MM5",
            "AA1",
            "ZZ9"
        ]
    );
}

// --- actions -----------------------------------------------------------------------------

#[test]
fn edits_are_for_own_texts_within_15_minutes() {
    let (host, s) = setup();
    let own = sent(&host, &s, text_to(ALICE, "helo"), 200);
    let id = own["waMessageId"].as_str().unwrap().to_owned();
    let edit = |id: &str, body: Value| host.patch(&format!("/sessions/{s}/messages/{id}"), body);
    refused(&edit(&id, json!({"text": ""})), "text");
    assert_eq!(
        edit(&id, json!({"text": "x", "sender": ""})).status,
        400,
        "edits take no sender"
    );
    let r = edit(&id, json!({"chat": ALICE, "text": "hello"}));
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["chat"], ALICE);
    assert_ne!(
        r.json()["waMessageId"],
        id.as_str(),
        "the edit is its own protocol message"
    );
    let m = get_message(&host, &s, &id);
    assert_eq!(
        (m["body"].as_str(), m["edited"].as_bool()),
        (Some("hello"), Some(true))
    );
    assert!(
        matches!(&items(&host, &s)[1].message.content, Content::Edit((k, t)) if k.id == id && k.sender.is_none() && t == "hello")
    );

    event(
        &host,
        &s,
        "message",
        text_in("THEIRS", ALICE, ALICE, "hi", now()),
    );
    assert_eq!(edit("THEIRS", json!({"text": "x"})).status, 400);
    event(
        &host,
        &s,
        "message",
        text_out("OLD", ALICE, "long ago", now() - 16 * 60 * 1000),
    );
    let r = edit("OLD", json!({"text": "x"}));
    assert_eq!(
        (r.status, r.json()["error"]["details"]["reason"].as_str()),
        (400, Some("edit_window_passed"))
    );
    let img = send(
        &host,
        &s,
        json!({"type": "image", "to": ALICE, "media": {"data": b64(JPEG)}}),
    );
    assert_eq!(
        edit(
            img.json()["waMessageId"].as_str().unwrap(),
            json!({"text": "x"})
        )
        .status,
        400
    );
    assert_eq!(edit("UNKNOWN", json!({"text": "x"})).status, 404);
    refused(&edit("bad%2Fid", json!({"text": "x"})), "mid");
}

#[test]
fn an_async_action_is_applied_once_the_outbox_sends_it() {
    let (host, s) = setup();
    let id = sent(&host, &s, text_to(ALICE, "first"), 200)["waMessageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = host.patch(
        &format!("/sessions/{s}/messages/{id}?async=true"),
        json!({"text": "second"}),
    );
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (202, Some("pending"))
    );
    assert_eq!(
        get_message(&host, &s, &id)["body"],
        "first",
        "not on WhatsApp yet"
    );
    host.outbox().dispatch(&s);
    assert_eq!(get_message(&host, &s, &id)["body"], "second");
    // A cancelled action is never applied.
    let r = host.patch(
        &format!("/sessions/{s}/messages/{id}?async=true"),
        json!({"text": "third"}),
    );
    let out = r.json()["outboxId"].as_str().unwrap().to_owned();
    assert_eq!(
        host.delete(&format!("/sessions/{s}/outbox/{out}")).status,
        200
    );
    host.outbox().publish();
    host.outbox().dispatch(&s);
    assert_eq!(get_message(&host, &s, &id)["body"], "second");
}

#[test]
fn revokes_name_the_target_by_body_or_query() {
    let (host, s) = setup();
    let id = sent(&host, &s, text_to(GROUP, "oops"), 200)["waMessageId"]
        .as_str()
        .unwrap()
        .to_owned();
    event(
        &host,
        &s,
        "message",
        text_in("ALICE1", GROUP, ALICE, "hers", now()),
    );
    event(&host, &s, "message", text_in("DM1", BOB, BOB, "his", now()));
    let revoke = |path: &str, body: Option<Value>| {
        host.request("DELETE", &format!("/sessions/{s}/messages/{path}"), body)
    };
    // Own message, body names it.
    let r = revoke(&id, Some(json!({"chat": GROUP, "sender": ""})));
    assert_eq!(r.status, 200, "{}", r.json());
    let m = get_message(&host, &s, &id);
    assert_eq!(
        (m["deleted"].as_bool(), m["body"].as_str()),
        (Some(true), Some(""))
    );
    // Someone else's in a group (an admin may): query names it.
    let r = revoke(&format!("ALICE1?chat={GROUP}&sender={ALICE}"), None);
    assert_eq!(r.status, 200, "{}", r.json());
    let key = match &items(&host, &s).last().unwrap().message.content {
        Content::Revoke(k) => k.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (key.id.as_str(), key.sender.as_deref()),
        ("ALICE1", Some(ALICE))
    );
    // Not someone else's in a direct chat.
    let r = revoke("DM1", None);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("forbidden"))
    );
    // The wrong author, the wrong chat.
    assert_eq!(revoke(&format!("ALICE1?sender={BOB}"), None).status, 404);
    assert_eq!(revoke("ALICE1?sender=", None).status, 404);
    assert_eq!(revoke(&format!("ALICE1?chat={BOB}"), None).status, 404);
    refused(&revoke("ALICE1?chat=nope", None), "chat");
    // One id in two chats: name the chat.
    event(
        &host,
        &s,
        "message",
        text_in("TWIN", GROUP, ALICE, "a", now()),
    );
    event(&host, &s, "message", text_in("TWIN", BOB, BOB, "b", now()));
    refused(&revoke("TWIN", Some(json!({"sender": ALICE}))), "chat");
    assert_eq!(revoke("TWIN", Some(json!({"chat": GROUP}))).status, 200);
    assert_eq!(revoke("NOPE", None).status, 404);
    assert_eq!(
        revoke("ALICE1", Some(json!({"chat": GROUP, "extra": true}))).status,
        400
    );
}

#[test]
fn reactions_are_exactly_one_emoji_and_removal_is_idempotent() {
    let (host, s) = setup();
    event(&host, &s, "message", text_out("OWN0", GROUP, "mine", 1));
    event(
        &host,
        &s,
        "message",
        text_in("M1", GROUP, ALICE, "hi", now()),
    );
    let path = format!("/sessions/{s}/messages/M1/reaction");
    for bad in ["", "ok", "👍👍", "👍 "] {
        refused(&host.post(&path, json!({"emoji": bad})), "emoji");
    }
    let r = host.post(
        &path,
        json!({"chat": GROUP, "sender": ALICE, "emoji": "👍🏽"}),
    );
    assert_eq!(r.status, 200, "{}", r.json());
    let reactions = get_message(&host, &s, "M1")["reactions"].clone();
    assert_eq!(reactions[0]["emoji"], "👍🏽");
    assert_eq!(reactions[0]["senderJid"], ME);
    assert!(
        matches!(&items(&host, &s)[0].message.content, Content::Reaction((k, e)) if k.id == "M1" && e == "👍🏽")
    );
    assert_eq!(host.post(&path, json!({"emoji": "❤️"})).status, 200);
    assert_eq!(
        get_message(&host, &s, "M1")["reactions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "replaced"
    );
    for _ in 0..2 {
        let r = host.delete(&format!("{path}?chat={GROUP}"));
        assert_eq!(r.status, 200);
        assert!(
            get_message(&host, &s, "M1")["reactions"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    assert!(
        matches!(&items(&host, &s).last().unwrap().message.content, Content::Reaction((_, e)) if e.is_empty())
    );
    assert_eq!(
        host.post(
            &format!("/sessions/{s}/messages/NOPE/reaction"),
            json!({"emoji": "👍"})
        )
        .status,
        404
    );
}

#[test]
fn votes_must_match_the_poll() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        json!({"id": "ONE", "chat": GROUP, "sender": ALICE, "type": "poll",
        "poll": {"name": "Pick one", "options": ["a", "b", "c"], "selectableCount": 1}}),
    );
    event(
        &host,
        &s,
        "message",
        json!({"id": "TWO", "chat": GROUP, "sender": ALICE, "type": "poll",
        "poll": {"name": "Pick two", "options": ["a", "b", "c"], "selectableCount": 2}}),
    );
    event(
        &host,
        &s,
        "message",
        text_in("TXT", GROUP, ALICE, "not a poll", now()),
    );
    let vote = |id: &str, options: Value| {
        host.post(
            &format!("/sessions/{s}/messages/{id}/vote"),
            json!({"options": options}),
        )
    };
    assert_eq!(vote("TXT", json!(["a"])).status, 400);
    refused(&vote("ONE", json!(["z"])), "options");
    refused(&vote("ONE", json!(["a", "b"])), "options");
    refused(&vote("TWO", json!(["a", "b", "c"])), "options");
    refused(&vote("TWO", json!(["a", "a"])), "options");
    assert_eq!(vote("ONE", Value::Null).status, 400, "options are required");
    assert_eq!(vote("ONE", json!(["b"])).status, 200);
    assert_eq!(vote("TWO", json!(["a", "c"])).status, 200);
    let counts = |id: &str| -> Vec<u64> {
        get_message(&host, &s, id)["poll"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["votes"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(counts("ONE"), [0, 1, 0]);
    assert_eq!(counts("TWO"), [1, 0, 1]);
    assert_eq!(vote("ONE", json!([])).status, 200, "[] clears");
    assert_eq!(counts("ONE"), [0, 0, 0]);
    assert!(
        matches!(&items(&host, &s).last().unwrap().message.content, Content::Vote((k, o)) if k.id == "ONE" && o.is_empty())
    );
}

#[test]
fn forwards_copy_the_stored_content_marked_forwarded() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        text_in("T1", ALICE, ALICE, "pass it on", now()),
    );
    event(
        &host,
        &s,
        "message",
        json!({"id": "I1", "chat": ALICE, "sender": ALICE, "type": "image", "text": "pic",
        "media": {"mimetype": "image/jpeg", "size": 10}}),
    );
    event(
        &host,
        &s,
        "message",
        json!({"id": "U1", "chat": ALICE, "sender": ALICE, "type": "unknown"}),
    );
    let forward =
        |id: &str, body: Value| host.post(&format!("/sessions/{s}/messages/{id}/forward"), body);
    refused(&forward("T1", json!({})), "to");
    refused(&forward("T1", json!({"to": "nobody"})), "to");
    let r = forward("T1", json!({"to": GROUP}));
    assert_eq!(r.status, 200, "{}", r.json());
    let copy = get_message(&host, &s, r.json()["waMessageId"].as_str().unwrap());
    assert_eq!(
        (
            copy["chatJid"].as_str(),
            copy["body"].as_str(),
            copy["forwarded"].as_bool()
        ),
        (Some(GROUP), Some("pass it on"), Some(true))
    );
    let item = items(&host, &s)[0].clone();
    assert!(item.message.forwarded);
    let r = forward("I1", json!({"to": BOB, "chat": ALICE}));
    assert_eq!(r.status, 200);
    match &items(&host, &s)[1].message.content {
        Content::Media(m) => {
            assert!(
                matches!(&m.source, MediaSource::Message(k) if k.id == "I1" && k.chat == ALICE)
            );
            assert_eq!(
                (m.mimetype.as_deref(), m.caption.as_deref()),
                (Some("image/jpeg"), Some("pic"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(forward("U1", json!({"to": BOB})).status, 400);
    assert_eq!(forward("NOPE", json!({"to": BOB})).status, 404);
}

// --- reads ---------------------------------------------------------------------------------

#[test]
fn get_message_needs_the_chat_only_when_the_id_is_ambiguous() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        text_in("TWIN", GROUP, ALICE, "in the group", 1),
    );
    event(
        &host,
        &s,
        "message",
        text_in("TWIN", BOB, BOB, "in the dm", 2),
    );
    refused(&host.get(&format!("/sessions/{s}/messages/TWIN")), "chat");
    let r = host
        .get(&format!("/sessions/{s}/messages/TWIN?chat={BOB}"))
        .json();
    assert_eq!(r["body"], "in the dm");
    assert_eq!(
        host.get(&format!("/sessions/{s}/messages/TWIN?chat={ALICE}"))
            .status,
        404
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/messages/NOPE")).status,
        404
    );
}

#[test]
fn media_downloads_answer_a_blob_the_host_streams() {
    let (host, s) = setup();
    event(
        &host,
        &s,
        "message",
        json!({"id": "DOC1", "chat": ALICE, "sender": ALICE, "type": "document",
        "media": {"mimetype": "application/pdf", "size": 4, "fileName": "a.pdf"}}),
    );
    event(
        &host,
        &s,
        "message",
        text_in("T1", ALICE, ALICE, "no media", 1),
    );
    host.media()
        .set_blob(&s, ALICE, "DOC1", "application/pdf", b"%PDF", Some("a.pdf"));
    let r = host.get(&format!("/sessions/{s}/messages/DOC1/media"));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("x-gateway-blob"),
        Some(host.media().handles()[0].as_str())
    );
    let r = host.get(&format!("/sessions/{s}/messages/T1/media"));
    assert_eq!(
        (r.status, r.json()["error"]["details"]["reason"].as_str()),
        (404, Some("no_media"))
    );
    event(
        &host,
        &s,
        "message",
        json!({"id": "GONE", "chat": ALICE, "sender": ALICE, "type": "image", "media": {"mimetype": "image/jpeg"}}),
    );
    let r = host.get(&format!("/sessions/{s}/messages/GONE/media"));
    assert_eq!(
        (r.status, r.json()["error"]["details"]["reason"].as_str()),
        (404, Some("media_gone"))
    );
    host.outbox().set_connected(&s, false);
    assert_eq!(
        host.get(&format!("/sessions/{s}/messages/DOC1/media"))
            .status,
        501
    );
    // Revoked media is gone from the store.
    event(
        &host,
        &s,
        "message.revoke",
        json!({"id": "DOC1", "chat": ALICE, "sender": ALICE, "fromMe": false, "by": ALICE}),
    );
    assert_eq!(
        host.get(&format!("/sessions/{s}/messages/DOC1/media"))
            .status,
        404
    );
}

#[test]
fn outbox_items_are_read_listed_and_cancelled() {
    let (host, s) = setup();
    let a = sent(&host, &s, text_to(ALICE, "1"), 200);
    let b = send_async(&host, &s, text_to(ALICE, "2")).json();
    let c = send_async(&host, &s, text_to(BOB, "3")).json();
    let get = |id: &Value| host.get(&format!("/sessions/{s}/outbox/{}", id.as_str().unwrap()));
    assert_eq!(get(&a["outboxId"]).json()["status"], "sent");
    assert_eq!(get(&json!("out_nope")).status, 404);
    let all = host.collect_pages(&format!("/sessions/{s}/outbox?limit=2"));
    assert_eq!(
        all.iter()
            .map(|r| r["outboxId"].clone())
            .collect::<Vec<_>>(),
        [
            c["outboxId"].clone(),
            b["outboxId"].clone(),
            a["outboxId"].clone()
        ]
    );
    let pending = host.collect_pages(&format!("/sessions/{s}/outbox?status=pending&limit=1"));
    assert_eq!(pending.len(), 2);
    refused(
        &host.get(&format!("/sessions/{s}/outbox?status=lost")),
        "status",
    );

    let cancel =
        |id: &Value| host.delete(&format!("/sessions/{s}/outbox/{}", id.as_str().unwrap()));
    let r = cancel(&b["outboxId"]);
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["status"].as_str(), r.json()["errorCode"].as_str()),
        (Some("failed"), Some("cancelled"))
    );
    let m = get_message(&host, &s, b["waMessageId"].as_str().unwrap());
    assert_eq!(
        (m["status"].as_str(), m["errorCode"].as_str()),
        (Some("failed"), Some("cancelled"))
    );
    let r = cancel(&b["outboxId"]);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (409, Some("conflict"))
    );
    assert_eq!(cancel(&a["outboxId"]).status, 409);
    assert_eq!(cancel(&json!("out_nope")).status, 404);
    host.outbox().publish();
    assert_eq!(
        host.outbox().dispatch(&s),
        1,
        "only the uncancelled one leaves"
    );
}

#[test]
fn read_capability_reads_send_capability_writes_and_other_orgs_see_nothing() {
    let (host, s) = setup();
    let r = sent(&host, &s, text_to(ALICE, "hi"), 200);
    let out = r["outboxId"].as_str().unwrap().to_owned();
    let host = host.caller("org_test", &[Capability::Read]);
    assert_eq!(
        host.get(&format!("/sessions/{s}/chats/{ALICE}/messages"))
            .status,
        200
    );
    assert_eq!(host.get(&format!("/sessions/{s}/outbox/{out}")).status, 200);
    for r in [
        send(&host, &s, text_to(ALICE, "x")),
        host.delete(&format!("/sessions/{s}/outbox/{out}")),
        host.post(
            &format!("/sessions/{s}/messages/X/reaction"),
            json!({"emoji": "👍"}),
        ),
        host.patch(&format!("/sessions/{s}/messages/X"), json!({"text": "x"})),
    ] {
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (403, Some("forbidden"))
        );
    }
    let host = host.caller("org_other", &[Capability::Read, Capability::Send]);
    assert_eq!(
        host.get(&format!("/sessions/{s}/chats/{ALICE}/messages"))
            .status,
        404
    );
    assert_eq!(send(&host, &s, text_to(ALICE, "x")).status, 404);
    // Its own session sees neither the messages nor the items of ours.
    let mine = host.add_session();
    assert_eq!(
        host.get(&format!("/sessions/{mine}/outbox/{out}")).status,
        404
    );
    assert!(
        host.collect_pages(&format!("/sessions/{mine}/outbox"))
            .is_empty()
    );
    assert_eq!(
        host.get(&format!(
            "/sessions/{mine}/messages/{}",
            r["waMessageId"].as_str().unwrap()
        ))
        .status,
        404
    );
}

#[test]
fn every_route_documents_its_bodies_from_types() {
    let m = <Messages as gateway_sdk::Plugin>::manifest();
    let ops: Vec<&str> = m.routes().map(|r| r.operation_id()).collect();
    assert_eq!(
        ops,
        [
            "sendMessage",
            "getMessage",
            "editMessage",
            "revokeMessage",
            "forwardMessage",
            "voteMessage",
            "reactMessage",
            "removeReaction",
            "downloadMedia",
            "listChatMessages",
            "listOutbox",
            "getOutboxItem",
            "cancelOutboxItem",
        ]
    );
    let schema = gateway_sdk::guest::schema::of::<crate::send::SendBody>();
    let variants = schema["oneOf"].as_array().expect("one schema per type");
    assert_eq!(variants.len(), 9);
    for v in variants {
        assert_eq!(v["additionalProperties"], false, "{v}");
        assert!(
            v["required"].as_array().unwrap().contains(&json!("to")),
            "{v}"
        );
    }
}
