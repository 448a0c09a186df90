//! The real engine (`whatsapp-rust`, unmodified) end to end against the wire-level
//! stand-in server (tests/standin) on loopback: pairing by QR and by code, reconnecting
//! after a restart without pairing, a dropped socket, logout, the address book, groups
//! and messages reaching the stores, the LIVE calls acting on the stand-in's state, and
//! every inbound message kind (text, media, reaction, edit, revoke, poll and vote, group
//! messages, history) reaching plugins as the README's events, sends acknowledged with
//! their receipts as `message.status`, and inbound messages surviving a `kill -9`.
//! The test plays the phone: it reads the QR code the gateway serves and "scans" it.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;
use wa_standin::{AutoReceipts, Contact, HandshakePattern, MessageRef, ProfilePicture, StandIn};

/// The account the session pairs as.
const ME: &str = "15550200001";
const BOB: &str = "15550200002";
const BOB_LID: &str = "240000000000002";
const CAROL: &str = "15550200003";
const CAROL_LID: &str = "240000000000003";

/// A stand-in with two people the account knows, one group with both, and the account's
/// address book naming Bob.
fn world() -> StandIn {
    let standin = StandIn::start().expect("the stand-in starts");
    standin.add_contact(
        Contact::new(BOB, "Bobby")
            .with_lid(BOB_LID)
            .with_about("Available")
            .with_picture(ProfilePicture {
                id: "1719662400".into(),
                url: "https://pps.whatsapp.net/v/bob.jpg".into(),
                direct_path: "/v/bob.jpg".into(),
            }),
    );
    standin.add_contact(Contact::new(CAROL, "Carol").with_lid(CAROL_LID));
    standin.add_contact(Contact::new(ME, "Support"));
    standin
        .save_contact(ME, BOB, "Bob Builder", Some("Bob"))
        .unwrap();
    standin
}

fn gateway(standin: &StandIn) -> Gateway {
    Gateway::with(options(standin))
}

fn options(standin: &StandIn) -> Options {
    Options {
        engine: "whatsapp-rust",
        whatsapp_toml: format!("server_url = {:?}", standin.url()),
        grants: vec![
            ("*", vec!["storage", "log"]),
            ("sessions", vec!["session-control", "log"]),
            (
                "contacts",
                vec!["storage", "whatsapp-read", "whatsapp-send", "log"],
            ),
        ],
        ..Options::default()
    }
}

/// Starts a session and pairs it by scanning the QR code the gateway shows.
fn pair_by_qr(g: &Gateway, key: &str, standin: &StandIn) -> String {
    let id = g.create_session(key, json!({"start": true}));
    let mut code = String::new();
    let shown = wait_for(Duration::from_secs(20), || {
        let r = g.get(&format!("/sessions/{id}/qr"), key);
        if r.status == 200 {
            code = r.json()["code"].as_str().unwrap().to_owned();
            true
        } else {
            false
        }
    });
    assert!(shown, "no QR code: {}", g.log());
    standin
        .scan_qr(&code, ME, "Support")
        .expect("the phone scans");
    g.wait_status(&id, key, "working");
    id
}

fn events(g: &Gateway, key: &str, id: &str) -> Vec<Value> {
    g.get(&format!("/sessions/{id}/chaos-events"), key)
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn pairs_by_qr_serves_live_calls_and_builds_the_stores() {
    let standin = world();
    let group = standin.add_group("Project Team", &[ME, BOB, CAROL], Some("Q3"));
    let g = gateway(&standin);
    let key = g.key("org_real", &["read", "send", "manage"]);
    let id = pair_by_qr(&g, &key, &standin);

    let s = g.get(&format!("/sessions/{id}"), &key).json();
    assert_eq!(s["waJid"], format!("{ME}@s.whatsapp.net"));
    assert_eq!(s["phoneNumber"], ME);
    let me_lid = standin.account(ME).unwrap().lid;
    assert_eq!(s["waLid"], format!("{me_lid}@lid"));
    let me = g.get(&format!("/sessions/{id}/me"), &key).json();
    assert_eq!(me["connected"], true);
    assert_eq!(me["pushName"], "Support");

    // LIVE look-ups answer from the stand-in's world.
    let check = g.get(
        &format!("/sessions/{id}/contacts/check?phone=%2B{BOB}"),
        &key,
    );
    assert_eq!(check.status, 200, "{}", check.text());
    assert_eq!(check.json()["isOnWhatsApp"], true);
    assert_eq!(check.json()["jid"], format!("{BOB}@s.whatsapp.net"));
    assert_eq!(check.json()["lid"], format!("{BOB_LID}@lid"));
    let nobody = g
        .get(
            &format!("/sessions/{id}/contacts/check?phone=15559999999"),
            &key,
        )
        .json();
    assert_eq!(nobody["isOnWhatsApp"], false);
    let about = g.get(
        &format!("/sessions/{id}/contacts/{BOB}@s.whatsapp.net/about"),
        &key,
    );
    assert_eq!(about.json()["about"], "Available", "{}", about.text());
    let pic = g.get(
        &format!("/sessions/{id}/contacts/{BOB}@s.whatsapp.net/picture"),
        &key,
    );
    assert_eq!(pic.status, 200, "{}", pic.text());
    assert_eq!(pic.json()["id"], "1719662400");
    g.get(
        &format!("/sessions/{id}/contacts/{CAROL}@s.whatsapp.net/picture"),
        &key,
    )
    .assert_error(404, "not_found");

    // Block and unblock act on the account's block list on the server.
    let bob = format!("{BOB}@s.whatsapp.net");
    assert_eq!(
        g.post(
            &format!("/sessions/{id}/contacts/{bob}/block"),
            &key,
            json!({})
        )
        .status,
        204
    );
    assert!(standin.is_blocked(ME, BOB));
    let list = g.get(&format!("/sessions/{id}/contacts/blocked"), &key);
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        g.post(
            &format!("/sessions/{id}/contacts/{bob}/unblock"),
            &key,
            json!({})
        )
        .status,
        204
    );
    assert!(!standin.is_blocked(ME, BOB));

    // A message from Carol arrives as a `message` event with her push name.
    standin
        .send_text_from(CAROL, ME, "hello from Carol", "3EB0CAROL0001")
        .unwrap();
    let arrived = wait_for(Duration::from_secs(15), || {
        events(&g, &key, &id)
            .iter()
            .any(|e| e["name"] == "message" && e["payload"]["id"] == "3EB0CAROL0001")
    });
    assert!(arrived, "the message never reached the plugins");
    let message = events(&g, &key, &id)
        .into_iter()
        .find(|e| e["payload"]["id"] == "3EB0CAROL0001")
        .unwrap();
    assert_eq!(message["payload"]["text"], "hello from Carol");
    assert_eq!(message["payload"]["pushName"], "Carol");
    assert_eq!(message["payload"]["fromMe"], false);

    // The stores: Bob's address-book name and groups with roles, Carol's push name and DM.
    let contact = |jid: &str| {
        let mut last = Value::Null;
        let ok = wait_for(Duration::from_secs(15), || {
            last = g
                .get(&format!("/sessions/{id}/contacts/{jid}"), &key)
                .json();
            !last["identity"].is_null()
        });
        assert!(ok, "{jid} never stored: {last}");
        last
    };
    let found = wait_for(Duration::from_secs(15), || {
        let c = contact(&format!("{BOB_LID}@lid"));
        c["identity"]["name"] == "Bob Builder" && c["groups"][0]["jid"] == group.to_string()
    });
    let bob_view = contact(&format!("{BOB_LID}@lid"));
    assert!(found, "{bob_view}");
    assert_eq!(bob_view["groups"][0]["name"], "Project Team");
    assert_eq!(bob_view["groups"][0]["role"], "member");
    assert_eq!(bob_view["identity"]["phoneNumber"], BOB);
    let carol_ok = wait_for(Duration::from_secs(15), || {
        contact(&format!("{CAROL_LID}@lid"))["dm"] == true
    });
    let carol = contact(&format!("{CAROL_LID}@lid"));
    assert!(carol_ok, "{carol}");
    assert_eq!(carol["identity"]["name"], "Carol");

    // Another admin promotes Bob: the change reaches his membership.
    standin
        .change_group_participants(&group, wa_standin::GroupChange::Promote, &[BOB], ME)
        .unwrap();
    let promoted = wait_for(Duration::from_secs(15), || {
        contact(&format!("{BOB_LID}@lid"))["groups"][0]["role"] == "admin"
    });
    assert!(promoted, "{}", contact(&format!("{BOB_LID}@lid")));
}

#[test]
fn reconnects_after_a_restart_and_a_dropped_socket_and_logs_out() {
    let standin = world();
    let mut g = gateway(&standin);
    let key = g.key("org_restart", &["read", "send", "manage"]);
    let id = pair_by_qr(&g, &key, &standin);
    let device = standin.account(ME).unwrap().devices[0].jid.clone();

    // The server drops the socket: the session says why, then works again.
    assert!(standin.drop_connections(ME) > 0);
    let reconnected = wait_for(Duration::from_secs(20), || {
        let ev = events(&g, &key, &id);
        let dropped = ev.iter().position(|e| {
            e["name"] == "session.status"
                && e["payload"]["status"] == "starting"
                && e["payload"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("disconnected"))
        });
        dropped.is_some_and(|at| {
            ev[at..]
                .iter()
                .any(|e| e["name"] == "session.status" && e["payload"]["status"] == "working")
        })
    });
    assert!(reconnected, "{:#?}", events(&g, &key, &id));
    assert_eq!(standin.account(ME).unwrap().devices.len(), 1);

    // A restart of the gateway: the keys are in redb, so it logs in without pairing (IK).
    assert!(g.stop());
    g.restart_stopped();
    g.wait_status(&id, &key, "working");
    let again = standin.account(ME).unwrap();
    assert_eq!(again.devices.len(), 1, "a second device was paired");
    assert_eq!(again.devices[0].jid, device);
    assert_eq!(again.devices[0].last_handshake, Some(HandshakePattern::Ik));
    g.get(&format!("/sessions/{id}/qr"), &key)
        .assert_error(400, "validation_error");

    // Logout unlinks the device on the server and forgets the pairing.
    let out = g.post(&format!("/sessions/{id}:logout"), &key, json!({}));
    assert_eq!(out.status, 200, "{}", out.text());
    assert!(out.json()["waJid"].is_null());
    let unlinked = wait_for(Duration::from_secs(10), || {
        standin.account(ME).is_none_or(|a| a.devices.is_empty())
    });
    assert!(unlinked, "{:?}\n{}", standin.account(ME), g.log());
    g.get(&format!("/sessions/{id}/me"), &key)
        .assert_error(404, "not_found");
    g.get(&format!("/sessions/{id}/contacts/check?phone={BOB}"), &key)
        .assert_error(501, "not_implemented");
}

#[test]
fn pairs_by_code() {
    let standin = world();
    let g = gateway(&standin);
    let key = g.key("org_code", &["manage"]);
    let id = g.create_session(&key, json!({"start": true}));
    let mut code = String::new();
    let asked = wait_for(Duration::from_secs(20), || {
        let r = g.post(
            &format!("/sessions/{id}/pairing-code"),
            &key,
            json!({"phone": ME}),
        );
        if r.status == 200 {
            code = r.json()["code"].as_str().unwrap().to_owned();
            true
        } else {
            false
        }
    });
    assert!(asked, "no pair code: {}", g.log());
    assert_eq!(code.len(), 9, "{code}");
    standin
        .enter_pair_code(ME, "Support", &code)
        .expect("the phone enters the code");
    g.wait_status(&id, &key, "working");
    let me = g.get(&format!("/sessions/{id}/me"), &key).json();
    assert_eq!(me["waJid"], format!("{ME}@s.whatsapp.net"));
}

/// The first event named `name` the chaos plugin recorded whose payload passes `test`,
/// waiting for it; with its position among everything recorded.
fn recorded(
    g: &Gateway,
    key: &str,
    id: &str,
    name: &str,
    test: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let mut found = None;
    let arrived = wait_for(Duration::from_secs(20), || {
        found = events(g, key, id)
            .into_iter()
            .enumerate()
            .find(|(_, e)| e["name"] == name && test(&e["payload"]))
            .map(|(at, e)| (at, e["payload"].clone()));
        found.is_some()
    });
    assert!(
        arrived,
        "no {name} event arrived; recorded: {:#?}",
        events(g, key, id)
            .iter()
            .map(|e| (e["name"].clone(), e["payload"].clone()))
            .collect::<Vec<_>>()
    );
    found.unwrap()
}

#[test]
fn inbound_messages_of_every_kind_reach_plugins_as_readme_events() {
    let standin = world();
    let group = standin.add_group("Project Team", &[ME, BOB, CAROL], None);
    let g = gateway(&standin);
    let key = g.key("org_inbound", &["read", "send", "manage"]);
    let id = pair_by_qr(&g, &key, &standin);
    let is = |want: &'static str| move |p: &Value| p["id"] == want;

    // Bob writes, reacts to his message, corrects it, and deletes another for everyone.
    standin
        .send_text_from(BOB, ME, "Lunch at noon?", "3EB0BOB0000001")
        .unwrap();
    let lunch = MessageRef::new("3EB0BOB0000001", BOB);
    let react = standin.reaction(BOB, ME, &lunch, "👍");
    standin
        .send_message_from(BOB, ME, react, "3EB0BOB0000002")
        .unwrap();
    let edit = standin.edit(BOB, ME, "3EB0BOB0000001", "Lunch at one?");
    standin
        .send_message_from(BOB, ME, edit, "3EB0BOB0000003")
        .unwrap();
    standin
        .send_text_from(BOB, ME, "oops, wrong chat", "3EB0BOB0000004")
        .unwrap();
    let revoke = standin.revoke(BOB, ME, "3EB0BOB0000004");
    standin
        .send_message_from(BOB, ME, revoke, "3EB0BOB0000005")
        .unwrap();
    // Media his phone uploaded to the CDN: plugins get the description, not the bytes.
    let picture: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let image = standin
        .image_message(&picture, "image/jpeg", Some("the whiteboard"))
        .unwrap();
    standin
        .send_message_from(BOB, ME, image, "3EB0BOB0000006")
        .unwrap();
    let plan = standin
        .document_message(b"%PDF-1.4 the plan", "application/pdf", "plan.pdf")
        .unwrap();
    standin
        .send_message_from(BOB, ME, plan, "3EB0BOB0000007")
        .unwrap();
    // Carol asks with a poll and votes on it; then writes in the group.
    let poll = standin.poll("Lunch where?", &["Pizza", "Sushi"], 1);
    standin
        .send_message_from(CAROL, ME, poll, "3EB0CAROL000P1")
        .unwrap();
    let vote = standin
        .poll_vote(
            CAROL,
            ME,
            &MessageRef::new("3EB0CAROL000P1", CAROL),
            &["Sushi"],
        )
        .unwrap();
    standin
        .send_message_from(CAROL, ME, vote, "3EB0CAROL000V1")
        .unwrap();
    standin
        .send_text_from(CAROL, &group.to_string(), "hi team", "3EB0CAROL000G1")
        .unwrap();

    let (at_text, text) = recorded(&g, &key, &id, "message", is("3EB0BOB0000001"));
    assert_eq!(text["type"], "text");
    assert_eq!(text["text"], "Lunch at noon?");
    assert_eq!(text["fromMe"], false);
    assert_eq!(text["isGroup"], false);
    assert_eq!(text["senderJid"], format!("{BOB}@s.whatsapp.net"));
    assert_eq!(text["senderLid"], format!("{BOB_LID}@lid"));
    assert_eq!(text["pushName"], "Bobby");
    assert!(text["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    let bob_chat = text["chat"].clone();

    let (at_reaction, reaction) = recorded(&g, &key, &id, "message.reaction", is("3EB0BOB0000001"));
    assert_eq!(reaction["emoji"], "👍");
    assert_eq!(reaction["chat"], bob_chat);
    assert_eq!(reaction["fromMe"], false);
    assert_eq!(reaction["sender"], text["sender"]);
    let (at_edit, edit) = recorded(&g, &key, &id, "message.edit", is("3EB0BOB0000001"));
    assert_eq!(edit["text"], "Lunch at one?");
    assert_eq!(edit["chat"], bob_chat);
    // One session's events arrive in the order WhatsApp delivered them.
    assert!(at_text < at_reaction && at_reaction < at_edit);

    let (_, revoke) = recorded(&g, &key, &id, "message.revoke", is("3EB0BOB0000004"));
    assert_eq!(revoke["chat"], bob_chat);
    assert_eq!(revoke["sender"], text["sender"]);
    assert_eq!(revoke["by"], text["sender"]);
    assert_eq!(revoke["fromMe"], false);

    let (_, image) = recorded(&g, &key, &id, "message", is("3EB0BOB0000006"));
    assert_eq!(image["type"], "image");
    assert_eq!(image["text"], "the whiteboard");
    assert_eq!(image["media"]["mimetype"], "image/jpeg");
    assert_eq!(image["media"]["size"], 4096);
    assert!(image["media"].get("data").is_none(), "{image}");
    let (_, document) = recorded(&g, &key, &id, "message", is("3EB0BOB0000007"));
    assert_eq!(document["type"], "document");
    assert_eq!(document["media"]["fileName"], "plan.pdf");
    assert_eq!(document["media"]["size"], 17);

    let (_, poll) = recorded(&g, &key, &id, "message", is("3EB0CAROL000P1"));
    assert_eq!(poll["type"], "poll");
    assert_eq!(
        poll["poll"],
        json!({"name": "Lunch where?", "options": ["Pizza", "Sushi"], "selectableCount": 1})
    );
    let (_, vote) = recorded(&g, &key, &id, "poll.vote", |p| {
        p["pollId"] == "3EB0CAROL000P1"
    });
    assert_eq!(vote["options"], json!(["Sushi"]));
    assert_eq!(vote["chat"], poll["chat"]);
    assert_eq!(vote["voter"], poll["sender"]);

    let (_, team) = recorded(&g, &key, &id, "message", is("3EB0CAROL000G1"));
    assert_eq!(team["isGroup"], true);
    assert_eq!(team["chat"], group.to_string());
    assert_eq!(team["text"], "hi team");
    assert_eq!(team["senderJid"], format!("{CAROL}@s.whatsapp.net"));
    assert_eq!(team["senderLid"], format!("{CAROL_LID}@lid"));
    assert_eq!(team["pushName"], "Carol");

    // The phone shares its history: plugins get the chats in `history.sync`.
    standin.send_history_sync(ME).unwrap();
    let (_, history) = recorded(&g, &key, &id, "history.sync", |p| {
        p["chats"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["jid"] == group.to_string()))
    });
    assert_eq!(history["syncType"], "initial_bootstrap");
    assert!(history["messages"].is_array());
}

#[test]
fn sends_get_receipts_and_inbound_messages_survive_kill_9_stored_once() {
    use crate::messages::{all_pages, messaging_options, send, wait_outbox};
    let standin = world();
    standin.set_auto_receipts(AutoReceipts::DeliveredAndRead);
    let mut options = messaging_options(100_000, "");
    options.engine = "whatsapp-rust";
    options.whatsapp_toml = format!("server_url = {:?}", standin.url());
    let mut g = Gateway::with(options);
    let key = g.key("org_wire", &["read", "send", "manage"]);
    let id = pair_by_qr(&g, &key, &standin);
    let bob = format!("{BOB}@s.whatsapp.net");

    // Out: the server acknowledges a sync send, Bob's phone decrypts it, and his receipts
    // become `message.status` and the outbox item's status.
    let r = send(
        &g,
        &key,
        &id,
        json!({"type": "text", "to": bob, "text": "Bonjour Bob"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = r.json();
    // The answer shows the item's current status: the recipient's receipts may already
    // have come (the stand-in's phones answer at once).
    assert!(
        ["sent", "delivered", "read"].contains(&sent["status"].as_str().unwrap()),
        "{sent}"
    );
    assert_eq!(sent["mode"], "sync", "{sent}");
    let wa = sent["waMessageId"].as_str().unwrap().to_owned();
    let outbox_id = sent["outboxId"].as_str().unwrap().to_owned();
    let on_wire = standin
        .wait_for_message_from(ME, &wa, Duration::from_secs(10))
        .expect("the message reached the server");
    assert_eq!(on_wire.to.user, BOB);
    assert_eq!(on_wire.text(), Some("Bonjour Bob"));
    assert_eq!(
        standin
            .messages_from(ME)
            .iter()
            .filter(|m| m.id == wa)
            .count(),
        1,
        "sent once"
    );
    let read = wait_outbox(&g, &key, &id, &outbox_id, &["read"]);
    assert_eq!(read["waMessageId"], wa.as_str());
    let (_, read_event) = recorded(&g, &key, &id, "message.status", |p| {
        p["id"] == wa.as_str() && p["status"] == "read"
    });
    assert_eq!(read_event["outboxId"], outbox_id.as_str());
    assert_eq!(read_event["recipient"], bob.as_str());
    // The statuses published for it only ever move forward (receipts may overtake the
    // server's ack, and a read receipt may come before the delivered one).
    let rank = |s: &str| {
        ["pending", "sent", "delivered", "read"]
            .iter()
            .position(|x| *x == s)
    };
    let statuses: Vec<usize> = events(&g, &key, &id)
        .iter()
        .filter(|e| e["name"] == "message.status" && e["payload"]["id"] == wa.as_str())
        .map(|e| rank(e["payload"]["status"].as_str().unwrap()).expect("a known status"))
        .collect();
    assert!(
        statuses.windows(2).all(|w| w[0] < w[1]) && statuses.first() == Some(&0),
        "statuses went back or repeated: {statuses:?}"
    );

    // In: Bob writes twenty messages and the gateway is killed while they arrive. Each
    // is either still with the server (not acknowledged: it comes again) or in the
    // inbound journal (acknowledged: replayed at start-up) — never lost.
    let ids: Vec<String> = (0..20).map(|n| format!("3EB0KILL{n:012}")).collect();
    for (n, mid) in ids.iter().enumerate() {
        standin
            .send_text_from(BOB, ME, &format!("message {n}"), mid)
            .unwrap();
    }
    let first = wait_for(Duration::from_secs(20), || {
        let stored = all_pages(&g, &key, &format!("/sessions/{id}/chats/{bob}/messages"));
        stored.iter().any(|m| m["fromMe"] == false)
    });
    assert!(first, "no inbound message arrived: {}", g.log());
    g.kill9();
    g.restart_stopped();
    g.wait_status(&id, &key, "working");

    let mut inbound = Vec::new();
    let all = wait_for(Duration::from_secs(30), || {
        inbound = all_pages(&g, &key, &format!("/sessions/{id}/chats/{bob}/messages"))
            .into_iter()
            .filter(|m| m["fromMe"] == false)
            .collect();
        inbound.len() >= ids.len()
    });
    assert!(
        all,
        "{} of {} inbound messages stored after the crash: {:?}",
        inbound.len(),
        ids.len(),
        inbound.iter().map(|m| m["id"].clone()).collect::<Vec<_>>()
    );
    // Stored exactly once each, newest first, with their text.
    let mut listed: Vec<String> = inbound
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    listed.reverse();
    assert_eq!(listed, ids);
    for m in &inbound {
        let n: usize = m["id"].as_str().unwrap()[8..].parse().unwrap();
        assert_eq!(m["body"], format!("message {n}"));
        assert_eq!(m["direction"], "in");
    }
    // And the server holds nothing more for the session: everything was acknowledged.
    let device = standin.account(ME).expect("the account").devices[0]
        .jid
        .clone();
    let settled = wait_for(Duration::from_secs(10), || {
        standin.pending_for(&device).is_empty()
    });
    assert!(settled, "still held: {:?}", standin.pending_for(&device));
}

/// The real engine with the groups plugin (API.md §4) loaded beside the default ones.
fn groups_gateway(standin: &StandIn) -> Gateway {
    Gateway::with(crate::groups::with_groups(Options {
        engine: "whatsapp-rust",
        whatsapp_toml: format!("server_url = {:?}", standin.url()),
        ..Options::default()
    }))
}

#[test]
fn groups_routes_act_on_whatsapp_with_its_codes_and_refusals() {
    const DAN: &str = "15550200004";
    const NOBODY: &str = "15550299999";
    let standin = world();
    standin.add_contact(Contact::new(DAN, "Dan"));
    let g = groups_gateway(&standin);
    let key = g.key("org_real_groups", &["read", "send", "manage"]);
    let s = pair_by_qr(&g, &key, &standin);
    let at = |rest: &str| format!("/sessions/{s}/groups{rest}");
    let jid = |phone: &str| format!("{phone}@s.whatsapp.net");
    let me = jid(ME);

    // createGroup: 201, the account superadmin, itself ignored among the participants.
    let r = g.post(
        &at(""),
        &key,
        json!({"name": "Launch", "participants": [jid(BOB), jid(CAROL), me]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["subject"], "Launch");
    assert_eq!(created["myRole"], "superadmin");
    assert_eq!(created["participantCount"], 3);
    assert_eq!(created["ownerJid"], me.as_str());
    let gid = created["groupJid"].as_str().unwrap().to_owned();
    let group: wa_standin::Jid = gid.parse().unwrap();
    let server = || standin.group(&group).expect("the group is on the server");
    assert!(server().is_member(BOB) && server().is_member(CAROL));

    // updateGroup: every field lands on WhatsApp; refresh reads it back.
    let r = g.call(
        "PATCH",
        &at(&format!("/{gid}")),
        &key,
        Some(
            json!({"subject": "Launch Q3", "description": "Ship it", "announce": true,
                    "locked": true, "joinApproval": true, "membersCanAdd": false}),
        ),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let on_server = server();
    assert_eq!(on_server.subject, "Launch Q3");
    assert_eq!(on_server.description.as_deref(), Some("Ship it"));
    let settings = on_server.settings;
    assert!(settings.announcement && settings.locked && settings.membership_approval);
    assert_eq!(
        settings.member_add_mode,
        wa_standin::MemberAddMode::AdminAdd
    );
    let r = g.call(
        "PATCH",
        &at(&format!("/{gid}")),
        &key,
        Some(json!({"description": "Ship it by Friday"})),
    );
    assert_eq!(r.status, 204, "replacing a description: {}", r.text());
    let fresh = g.get(&at(&format!("/{gid}?refresh=true")), &key);
    assert_eq!(fresh.status, 200, "{}", fresh.text());
    let fresh = fresh.json();
    assert_eq!(
        (
            fresh["subject"].clone(),
            fresh["description"].clone(),
            fresh["isAnnounce"].clone(),
            fresh["isLocked"].clone(),
            fresh["joinApproval"].clone(),
            fresh["membersCanAdd"].clone()
        ),
        (
            json!("Launch Q3"),
            json!("Ship it by Friday"),
            json!(true),
            json!(true),
            json!(true),
            json!(false)
        )
    );

    // Members: WhatsApp's code per participant; promote, demote, remove.
    let r = g.post(
        &at(&format!("/{gid}/members?results=true")),
        &key,
        json!({"participants": [jid(DAN), jid(BOB), jid(NOBODY)]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"jid": jid(DAN), "code": 200}, {"jid": jid(BOB), "code": 409},
               {"jid": jid(NOBODY), "code": 404}])
    );
    assert!(server().is_member(DAN));
    let bob_lid = format!("{BOB_LID}@lid");
    let r = g.post(
        &at(&format!("/{gid}/members/{bob_lid}/promote")),
        &key,
        json!({}),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        server().role_of(BOB),
        Some(wa_standin::ParticipantRole::Admin)
    );
    g.post(
        &at(&format!("/{gid}/members/{}/promote", jid(NOBODY))),
        &key,
        json!({}),
    )
    .assert_error(404, "not_found");
    let r = g.post(
        &at(&format!("/{gid}/members/{}/demote", jid(BOB))),
        &key,
        json!({}),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        server().role_of(BOB),
        Some(wa_standin::ParticipantRole::Member)
    );
    for _ in 0..2 {
        let r = g.delete(&at(&format!("/{gid}/members/{}", jid(CAROL))), &key);
        assert_eq!(r.status, 204, "removing (again is a no-op): {}", r.text());
    }
    assert!(!server().is_member(CAROL));

    // Invites: read, revoke (the old code stops at once), what a code leads to.
    let r = g.get(&at(&format!("/{gid}/invite")), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    let old = server().invite_code;
    assert_eq!(
        r.json(),
        json!({"invite": format!("https://chat.whatsapp.com/{old}"), "code": old})
    );
    let r = g.delete(&at(&format!("/{gid}/invite")), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    let code = server().invite_code;
    assert_ne!(code, old);
    assert_eq!(r.json()["code"], code.as_str());
    let info = g.get(&at(&format!(":inviteInfo?invite={code}")), &key);
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(
        info.json(),
        json!({"groupJid": gid, "subject": "Launch Q3", "description": "Ship it by Friday",
               "participantCount": 3, "joinApproval": true})
    );
    g.get(&at(&format!(":inviteInfo?invite={old}")), &key)
        .assert_error(400, "validation_error");

    // Join requests: Carol asks by link (approval is on); the account approves her.
    assert!(!standin.join_group_by_invite(CAROL, &code).unwrap());
    let r = g.get(&at(&format!("/{gid}/requests")), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["jid"], jid(CAROL));
    assert_eq!(r.json()["data"][0]["lid"], format!("{CAROL_LID}@lid"));
    assert!(r.json()["data"][0]["requestedAt"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(r.json()["nextCursor"], Value::Null);
    for _ in 0..2 {
        let r = g.post(
            &at(&format!("/{gid}/members:approve")),
            &key,
            json!({"participants": [jid(CAROL)]}),
        );
        assert_eq!(r.status, 204, "approving (again is a no-op): {}", r.text());
    }
    assert!(server().is_member(CAROL));
    let r = g.get(&at(&format!("/{gid}/requests")), &key);
    assert_eq!(r.json()["data"], json!([]));

    // The picture: set, read back, removed.
    let r = g.call(
        "PUT",
        &at(&format!("/{gid}/picture")),
        &key,
        Some(json!({"data": crate::groups::JPEG_B64})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(server().picture.map(|p| p.id), Some(id.clone()));
    let pic = g.get(&at(&format!("/{gid}/picture")), &key);
    assert_eq!(pic.status, 200, "{}", pic.text());
    assert_eq!(pic.json()["id"], id.as_str());
    assert_eq!(g.delete(&at(&format!("/{gid}/picture")), &key).status, 204);
    assert!(server().picture.is_none());
    g.get(&at(&format!("/{gid}/picture")), &key)
        .assert_error(404, "not_found");

    // Bob's locked group, where the account is a plain member: WhatsApp refuses it.
    let hood = standin.add_group("Hood", &[BOB, ME, CAROL], None);
    standin
        .set_group_setting(&hood, wa_standin::GroupSetting::Locked(true), BOB)
        .unwrap();
    for r in [
        g.call(
            "PATCH",
            &at(&format!("/{hood}")),
            &key,
            Some(json!({"subject": "Mine now"})),
        ),
        g.call(
            "PATCH",
            &at(&format!("/{hood}")),
            &key,
            Some(json!({"announce": true})),
        ),
        g.post(
            &at(&format!("/{hood}/members/{}/promote", jid(CAROL))),
            &key,
            json!({}),
        ),
        g.delete(&at(&format!("/{hood}/members/{}", jid(CAROL))), &key),
        g.get(&at(&format!("/{hood}/requests")), &key),
        g.get(&at(&format!("/{hood}/invite")), &key),
        g.call(
            "PUT",
            &at(&format!("/{hood}/picture")),
            &key,
            Some(json!({"data": crate::groups::JPEG_B64})),
        ),
    ] {
        r.assert_error(403, "forbidden");
    }
    assert_eq!(standin.group(&hood).unwrap().subject, "Hood");
    assert!(standin.group(&hood).unwrap().is_member(CAROL));

    // A group the account is not in: 404; its link lets it in (again: the same answer);
    // with approval on, 202.
    let open = standin.add_group("Open", &[BOB, CAROL], Some("All welcome"));
    g.call(
        "PATCH",
        &at(&format!("/{open}")),
        &key,
        Some(json!({"subject": "x"})),
    )
    .assert_error(404, "not_found");
    let open_code = standin.group_invite_code(&open).unwrap();
    for invite in [
        format!("https://chat.whatsapp.com/{open_code}"),
        open_code.clone(),
    ] {
        let j = g.post(&at(":join"), &key, json!({"invite": invite}));
        assert_eq!(
            (j.status, j.json()),
            (200, json!({"groupJid": open.to_string()}))
        );
    }
    assert!(standin.group(&open).unwrap().is_member(ME));
    let opened = g.get(&at(&format!("/{open}")), &key);
    assert_eq!(opened.status, 200, "{}", opened.text());
    assert_eq!(opened.json()["myRole"], "member");
    let club = standin.add_group("Club", &[BOB], None);
    standin
        .set_group_setting(
            &club,
            wa_standin::GroupSetting::MembershipApproval(true),
            BOB,
        )
        .unwrap();
    let j = g.post(
        &at(":join"),
        &key,
        json!({"invite": standin.group_invite_code(&club).unwrap()}),
    );
    assert_eq!(
        (j.status, j.json()),
        (
            202,
            json!({"groupJid": club.to_string(), "pendingApproval": true})
        )
    );
    g.post(&at(":join"), &key, json!({"invite": "NoSuchCode"}))
        .assert_error(400, "validation_error");

    // leaveGroup: off the server, still readable with myRole null; again 204.
    for _ in 0..2 {
        let r = g.post(&at(&format!("/{gid}:leave")), &key, json!({}));
        assert_eq!(r.status, 204, "leaving (again is a no-op): {}", r.text());
    }
    assert!(!server().is_member(ME));
    let left = g.get(&at(&format!("/{gid}")), &key);
    assert_eq!(left.status, 200, "{}", left.text());
    assert_eq!(left.json()["myRole"], Value::Null);
}

#[test]
fn an_admin_backfill_rereads_groups_and_contacts_from_whatsapp() {
    let standin = world();
    let group = standin.add_group("Project Team", &[ME, BOB, CAROL], Some("Q3"));
    let signing = crate::identity::ec_key("ec-wa-admin");
    let jwks = crate::identity::JwksServer::start(&[&signing]);
    let mut o = options(&standin);
    o.grants
        .push(("admin", vec!["session-control", "platform-admin", "log"]));
    o.extra_toml = jwks.auth_toml(300, 1);
    let g = Gateway::with(o);
    let key = g.key("org_real_admin", &["read", "send", "manage"]);
    let admin = crate::identity::super_admin(&signing, "root");
    let id = pair_by_qr(&g, &key, &standin);
    let upserts = || {
        events(&g, &key, &id)
            .into_iter()
            .filter(|e| e["name"] == "groups.upsert")
            .count()
    };
    // The connect-time sync delivers the group once.
    assert!(wait_for(Duration::from_secs(15), || upserts() >= 1));
    let synced = upserts();

    let finished = |g: &Gateway| {
        let mut last = Value::Null;
        let ok = wait_for(Duration::from_secs(30), || {
            last = g
                .get(&format!("/admin/sessions/{id}/backfill"), &admin)
                .json();
            last["status"] != "running"
        });
        assert!(ok, "the backfill never finished: {last}");
        last
    };
    let r = g.call(
        "POST",
        &format!("/admin/sessions/{id}:backfill"),
        &admin,
        Some(json!({"scope": ["contacts", "groups"]})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["organizationId"], "org_real_admin");
    let done = finished(&g);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["groups"], 1);
    assert_eq!(done["groupMembers"], 3);
    assert!(done["contacts"].is_u64(), "{done}");
    assert!(wait_for(Duration::from_secs(15), || upserts() > synced));
    let reread = events(&g, &key, &id)
        .into_iter()
        .rfind(|e| e["name"] == "groups.upsert")
        .unwrap();
    assert_eq!(reread["payload"]["groups"][0]["jid"], group.to_string());
    assert_eq!(reread["payload"]["groups"][0]["subject"], "Project Team");
    assert_eq!(
        reread["payload"]["groups"][0]["participants"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Chat settings reach this engine only through WhatsApp's own syncs: the job says so.
    let r = g.call(
        "POST",
        &format!("/admin/sessions/{id}:backfill"),
        &admin,
        Some(json!({"scope": ["chats"]})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let refused = finished(&g);
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("chats"),
        "{refused}"
    );
}
