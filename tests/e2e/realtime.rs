//! Realtime event streams (API.md §7.2, §7.4) with a real third-party WebSocket client:
//! PyPI's `websocket-client` (`cargo xtask test` installs it), driven by a small Python
//! script that prints one JSON line per thing it sees. Tickets, filters, resume and gaps,
//! single use and expiry, revocation (4001), the stream cap (429) and tenancy.

use crate::identity::*;
use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// The client: connects (websocket-client checks the 101 and `Sec-WebSocket-Accept`),
/// sends a text and a binary frame the server must ignore, then prints every frame until
/// the server closes or `argv[2]` seconds pass. A refused handshake prints its status and
/// envelope.
const CLIENT: &str = r#"
import json, sys, time
import websocket

def out(obj):
    print(json.dumps(obj), flush=True)

url, limit = sys.argv[1], float(sys.argv[2])
try:
    ws = websocket.create_connection(url, timeout=limit)
except websocket.WebSocketBadStatusException as e:
    body = e.resp_body.decode("utf-8") if e.resp_body else None
    headers = {k.lower(): v for k, v in (e.resp_headers or {}).items()}
    out({"kind": "refused", "status": e.status_code, "headers": headers,
         "body": json.loads(body) if body else None})
    sys.exit(0)
out({"kind": "open", "status": ws.getstatus()})
ws.send("hello, server")
ws.send_binary(b"\x00\x01")
deadline = time.monotonic() + limit
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        out({"kind": "timeout"})
        break
    ws.settimeout(left)
    try:
        opcode, frame = ws.recv_data_frame(True)
    except websocket.WebSocketTimeoutException:
        out({"kind": "timeout"})
        break
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        out({"kind": "dropped"})
        break
    if opcode == websocket.ABNF.OPCODE_TEXT:
        out({"kind": "frame", "data": json.loads(frame.data.decode("utf-8"))})
    elif opcode == websocket.ABNF.OPCODE_CLOSE:
        code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
        out({"kind": "close", "code": code, "reason": frame.data[2:].decode("utf-8", "replace")})
        break
    elif opcode == websocket.ABNF.OPCODE_PING:
        out({"kind": "ping"})
    else:
        out({"kind": "other", "opcode": opcode})
"#;

/// How long one client runs at most; tests end them sooner.
const CLIENT_SECS: u32 = 120;
/// How long a test waits for the client's next line.
const LINE_WAIT: Duration = Duration::from_secs(30);

/// A running client process and its output lines.
pub(crate) struct WsClient {
    child: Child,
    lines: Receiver<Value>,
}

impl WsClient {
    fn connect(url: &str) -> WsClient {
        let mut child = Command::new("python3")
            .args(["-c", CLIENT, url, &CLIENT_SECS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with websocket-client (cargo xtask test installs it)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("client printed {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        WsClient { child, lines }
    }

    /// The next line, pings included.
    fn next(&self) -> Value {
        match self.lines.recv_timeout(LINE_WAIT) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("the client said nothing for {LINE_WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the client exited without a word"),
        }
    }

    /// The next line that is not a ping.
    fn next_event(&self) -> Value {
        loop {
            let v = self.next();
            if v["kind"] != "ping" {
                return v;
            }
        }
    }

    /// Waits for the upgrade to be accepted.
    pub(crate) fn opened(url: &str) -> WsClient {
        let c = WsClient::connect(url);
        let first = c.next();
        assert_eq!(first, json!({"kind": "open", "status": 101}), "{first}");
        c
    }

    /// The next frame's envelope.
    pub(crate) fn frame(&self) -> Value {
        let v = self.next_event();
        assert_eq!(v["kind"], "frame", "expected a frame, got {v}");
        v["data"].clone()
    }

    /// Frames up to and including the one whose payload `id` is `marker`.
    fn frames_until(&self, marker: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let f = self.frame();
            let done = f["payload"]["id"] == marker;
            seen.push(f);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A handshake the gateway refused: asserts the status and the envelope, no upgrade.
fn assert_refused(url: &str, status: u16, code: &str) -> Value {
    let c = WsClient::connect(url);
    let v = c.next();
    assert_eq!(v["kind"], "refused", "expected a refusal, got {v}");
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["headers"]["content-type"], "application/json", "{v}");
    assert_eq!(v["body"]["error"]["code"], code, "{v}");
    assert!(
        v["body"]["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(v["body"]["error"]["details"].is_object());
    v
}

/// Mints a ticket; asserts the 200 shape.
fn ticket(g: &Gateway, token: &str, body: Value) -> (String, String) {
    let r = g.post("/realtime/ticket", token, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let t = v["ticket"].as_str().unwrap().to_owned();
    let url = v["url"].as_str().unwrap().to_owned();
    assert!(t.starts_with("rtt_"), "{v}");
    assert_eq!(url, format!("{}/api/v1/realtime?ticket={t}", ws_base(g)));
    (t, url)
}

fn ws_base(g: &Gateway) -> String {
    g.api.replacen("http://", "ws://", 1)
}

fn inject(g: &Gateway, session: &str, event: &str, payload: Value) {
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{session}/events"),
        Some(json!({"event": event, "payload": payload})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// An incoming text message with WhatsApp id `id`.
fn message(g: &Gateway, session: &str, id: &str) {
    inject(
        g,
        session,
        "message",
        json!({
            "id": id, "chat": "14155550123@s.whatsapp.net", "sender": "205227043110953@lid",
            "fromMe": false, "isGroup": false, "timestamp": 1_719_662_400_000u64,
            "type": "text", "text": format!("text of {id}"),
        }),
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn realtime_gateway(realtime_toml: &str) -> Gateway {
    Gateway::with(Options {
        extra_toml: format!("[realtime]\n{realtime_toml}\n"),
        ..Options::default()
    })
}

#[test]
fn realtime_tickets_are_minted_for_readers_and_bad_requests_refused() {
    let g = Gateway::start();
    let org = "org_rt_tickets";
    let key = g.key(org, &["read", "manage"]);
    let session = g.create_session(&key, json!({"label": "rt"}));
    let other = g.key("org_rt_elsewhere", &["read", "manage"]);
    let foreign = g.create_session(&other, json!({"label": "theirs"}));

    // 200: the default body, and every kind of name the contract allows.
    let before = now_ms();
    let r = g.post("/realtime/ticket", &key, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let expires = v["expiresAt"].as_u64().unwrap();
    assert!(
        expires >= before + 29_000 && expires <= now_ms() + 30_000,
        "valid 30 s: {v}"
    );
    ticket(&g, &key, json!({}));
    let (a, _) = ticket(
        &g,
        &key,
        json!({"events": ["message.received", "session.connected", "message.*", "*", "notes.*"],
               "sessionId": session, "after": "evt_01J9ZX8K2QHV0M3T6R7P4N5W8C"}),
    );
    let (b, _) = ticket(
        &g,
        &key,
        json!({"events": null, "sessionId": null, "after": null}),
    );
    assert_ne!(a, b, "every ticket is new");
    // An empty body is the default request.
    let r = g.raw(
        "POST",
        "/api/v1/realtime/ticket",
        &[("authorization", &format!("Bearer {key}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // 422: every part of a bad body, with the field named.
    let many: Vec<&str> = std::iter::repeat_n("message", 65).collect();
    for (body, field) in [
        (json!({"event": ["message"]}), "body"),
        (json!({"events": "message"}), "body"),
        (json!([]), "body"),
        (json!({"events": []}), "events"),
        (json!({"events": many}), "events"),
        (json!({"events": ["nope"]}), "events"),
        (json!({"events": ["history.sync"]}), "events"),
        (json!({"events": ["nope.*"]}), "events"),
        (
            json!({"sessionId": "01J9ZX8K2QHV0M3T6R7P4N5W8C"}),
            "sessionId",
        ),
        (json!({"sessionId": foreign}), "sessionId"),
        (json!({"after": "yesterday"}), "after"),
        (json!({"after": "evt_nope"}), "after"),
    ] {
        let r = g.post("/realtime/ticket", &key, body.clone());
        r.assert_error(422, "validation_error");
        assert_eq!(
            r.json()["error"]["details"]["field"],
            field,
            "{body}: {}",
            r.text()
        );
    }
    let r = g.raw(
        "POST",
        "/api/v1/realtime/ticket",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(b"{not json".to_vec()),
    );
    r.assert_error(422, "validation_error");

    // 403 without `read`, 401 without a credential.
    let sender = g.key(org, &["send"]);
    let r = g.post("/realtime/ticket", &sender, json!({}));
    r.assert_error(403, "forbidden");
    assert_eq!(r.json()["error"]["details"]["required"], "read");
    g.raw("POST", "/api/v1/realtime/ticket", &[], Some(b"{}".to_vec()))
        .assert_error(401, "unauthorized");
    g.post("/realtime/ticket", "wa_notAKey", json!({}))
        .assert_error(401, "unauthorized");
}

#[test]
fn realtime_streams_deliver_live_events_that_match_their_filters() {
    let g = realtime_gateway("ping_interval_ms = 300");
    let org = "org_rt_live";
    let key = g.key(org, &["read", "manage"]);
    let s1 = g.working_session(&key);
    let s2 = g.working_session(&key);

    let (_, only_s1_messages) = ticket(
        &g,
        &key,
        json!({"events": ["message.received"], "sessionId": s1}),
    );
    let (_, everything) = ticket(&g, &key, json!({}));
    let filtered = WsClient::opened(&only_s1_messages);
    let all = WsClient::opened(&everything);

    // Excluded by the session filter, by the event filter, and internal to plugins.
    message(&g, &s2, "3EB0RT00000000000002");
    inject(
        &g,
        &s1,
        "presence.update",
        json!({"chat": "14155550123@s.whatsapp.net", "jid": "14155550123@s.whatsapp.net", "state": "composing"}),
    );
    inject(
        &g,
        &s1,
        "history.sync",
        json!({"syncType": "recent", "messages": [], "chats": []}),
    );
    message(&g, &s1, "3EB0RT00000000000001");

    let f = filtered.frame();
    assert_eq!(f["schema"], "v1");
    assert!(f["id"].as_str().unwrap().starts_with("evt_"), "{f}");
    assert_eq!(f["event"], "message");
    assert_eq!(f["session"], s1.as_str());
    assert_eq!(f["organization"], org);
    assert!(f["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(f["payload"]["id"], "3EB0RT00000000000001");
    assert_eq!(f["payload"]["text"], "text of 3EB0RT00000000000001");

    // The unfiltered stream saw everything in publish order except history.sync (the
    // sandbox's own connection-time events may come too).
    let frames = all.frames_until("3EB0RT00000000000001");
    assert!(
        frames.iter().all(|f| f["event"] != "history.sync"),
        "{frames:?}"
    );
    let injected: Vec<(&str, &str)> = frames
        .iter()
        .filter(|f| f["event"] == "message" || f["event"] == "presence.update")
        .map(|f| (f["event"].as_str().unwrap(), f["session"].as_str().unwrap()))
        .collect();
    assert_eq!(
        injected,
        [
            ("message", s2.as_str()),
            ("presence.update", s1.as_str()),
            ("message", s1.as_str())
        ],
        "{frames:?}"
    );
    assert_eq!(
        frames.last().unwrap()["id"],
        f["id"],
        "the same envelope on both streams"
    );

    // The gateway pings (every 300 ms here); the client's pongs keep the stream open.
    let mut pings = 0;
    while pings < 3 {
        if all.next()["kind"] == "ping" {
            pings += 1;
        }
    }
    message(&g, &s1, "3EB0RT00000000000003");
    assert_eq!(all.frame()["payload"]["id"], "3EB0RT00000000000003");
    assert_eq!(filtered.frame()["payload"]["id"], "3EB0RT00000000000003");
}

#[test]
fn realtime_resume_replays_newer_events_in_order_and_an_unknown_after_is_a_gap() {
    let g = Gateway::start();
    let org = "org_rt_resume";
    let key = g.key(org, &["read", "manage"]);
    let s = g.working_session(&key);

    let (_, url) = ticket(&g, &key, json!({"events": ["message"]}));
    let first = WsClient::opened(&url);
    let mut ids = Vec::new();
    for n in 1..=3 {
        let wa = format!("3EB0RS0000000000000{n}");
        message(&g, &s, &wa);
        let f = first.frame();
        assert_eq!(f["payload"]["id"], wa.as_str());
        ids.push(f["id"].as_str().unwrap().to_owned());
    }
    drop(first);
    // Missed while disconnected.
    message(&g, &s, "3EB0RS00000000000004");
    inject(
        &g,
        &s,
        "presence.update",
        json!({"chat": "14155550123@s.whatsapp.net", "jid": "14155550123@s.whatsapp.net", "state": "paused"}),
    );

    let (_, url) = ticket(&g, &key, json!({"events": ["message"], "after": ids[0]}));
    let resumed = WsClient::opened(&url);
    let replayed: Vec<Value> = (0..3).map(|_| resumed.frame()).collect();
    let wa: Vec<&str> = replayed
        .iter()
        .map(|f| f["payload"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        wa,
        [
            "3EB0RS00000000000002",
            "3EB0RS00000000000003",
            "3EB0RS00000000000004"
        ]
    );
    assert_eq!(replayed[0]["id"], ids[1].as_str(), "the same event ids");
    assert_eq!(replayed[1]["id"], ids[2].as_str());
    // Then live events.
    message(&g, &s, "3EB0RS00000000000005");
    assert_eq!(resumed.frame()["payload"]["id"], "3EB0RS00000000000005");

    // An `after` the buffer does not hold: a gap first, then live events.
    let unknown = "evt_01J9ZX8K2QHV0M3T6R7P4N5W8C";
    let (_, url) = ticket(&g, &key, json!({"after": unknown}));
    let gapped = WsClient::opened(&url);
    let gap = gapped.frame();
    assert_eq!(gap["event"], "stream.gap", "{gap}");
    assert_eq!(gap["payload"], json!({"after": unknown}));
    assert_eq!(gap["session"], Value::Null);
    assert_eq!(gap["organization"], org);
    assert_eq!(gap["schema"], "v1");
    let gap_id = gap["id"].as_str().unwrap();
    assert!(gap_id.starts_with("evt_") && gap_id != unknown, "{gap}");
    message(&g, &s, "3EB0RS00000000000006");
    assert_eq!(gapped.frame()["payload"]["id"], "3EB0RS00000000000006");
}

#[test]
fn realtime_tickets_are_single_use_and_bad_ones_get_no_upgrade() {
    let g = Gateway::start();
    let key = g.key("org_rt_once", &["read"]);
    let (t, url) = ticket(&g, &key, json!({}));

    // Not a WebSocket handshake: 400, and the ticket is still unused.
    g.raw("GET", &format!("/api/v1/realtime?ticket={t}"), &[], None)
        .assert_error(400, "validation_error");

    let stream = WsClient::opened(&url);
    let again = assert_refused(&url, 401, "unauthorized");
    assert!(
        again["headers"].get("sec-websocket-accept").is_none(),
        "{again}"
    );
    drop(stream);

    let base = ws_base(&g);
    assert_refused(
        &format!("{base}/api/v1/realtime?ticket=rtt_doesNotExist"),
        401,
        "unauthorized",
    );
    assert_refused(&format!("{base}/api/v1/realtime"), 401, "unauthorized");
    // An API key is not a ticket.
    assert_refused(
        &format!("{base}/api/v1/realtime?ticket={key}"),
        401,
        "unauthorized",
    );
    g.raw("GET", "/api/v1/realtime", &[], None)
        .assert_error(401, "unauthorized");
    let r = g.raw("POST", "/api/v1/realtime", &[], None);
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
}

#[test]
fn realtime_tickets_expire() {
    let g = realtime_gateway("ticket_ttl_ms = 200");
    let key = g.key("org_rt_expiry", &["read"]);
    let (_, url) = ticket(&g, &key, json!({}));
    std::thread::sleep(Duration::from_millis(600));
    assert_refused(&url, 401, "unauthorized");
}

#[test]
fn realtime_revoking_the_minting_key_closes_its_streams_with_4001() {
    let g = realtime_gateway("auth_check_ms = 200");
    let org = "org_rt_revoke";
    let created = g.admin_call(
        "POST",
        "/admin/api-keys",
        Some(json!({"organization": org, "name": "rt", "permissions": ["read", "manage"]})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["key"]["id"].as_str().unwrap().to_owned();
    let key = created.json()["secret"].as_str().unwrap().to_owned();
    let s = g.working_session(&key);
    let (_, url) = ticket(&g, &key, json!({"events": ["message"]}));
    let stream = WsClient::opened(&url);
    message(&g, &s, "3EB0RV00000000000001");
    assert_eq!(stream.frame()["payload"]["id"], "3EB0RV00000000000001");

    let r = g.admin_call("DELETE", &format!("/admin/api-keys/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    let closed = stream.next_event();
    assert_eq!(closed["kind"], "close", "{closed}");
    assert_eq!(closed["code"], 4001, "{closed}");
}

#[test]
fn realtime_a_jwt_minted_stream_closes_with_4001_when_the_token_expires() {
    let (rsa, ec, ed) = (rsa_key("rsa-rt"), ec_key("ec-rt"), ed_key("ed-rt"));
    let jwks = JwksServer::start(&[&rsa, &ec, &ed]);
    let g = Gateway::with(Options {
        extra_toml: format!(
            "{}\n[realtime]\nauth_check_ms = 200\n",
            jwks.auth_toml(300, 1)
                .replace("leeway_secs = 30", "leeway_secs = 0")
        ),
        ..Options::default()
    });
    let mut short = claims("org_rt_jwt", "member");
    short["exp"] = json!(now() + 8);
    let token = sign(&ec, &short);
    let (_, url) = ticket(&g, &token, json!({}));
    let stream = WsClient::opened(&url);
    let closed = stream.next_event();
    assert_eq!(closed["kind"], "close", "{closed}");
    assert_eq!(closed["code"], 4001, "{closed}");
}

#[test]
fn realtime_streams_over_the_cap_get_429() {
    let g = realtime_gateway("max_streams_per_org = 1");
    let key = g.key("org_rt_cap", &["read"]);
    let (_, first_url) = ticket(&g, &key, json!({}));
    let first = WsClient::opened(&first_url);
    let (_, second_url) = ticket(&g, &key, json!({}));
    let refused = assert_refused(&second_url, 429, "rate_limited");
    assert_eq!(refused["body"]["error"]["details"]["max"], 1, "{refused}");
    // The cap is per organization.
    let other = g.key("org_rt_cap_other", &["read"]);
    let (_, other_url) = ticket(&g, &other, json!({}));
    let _other_stream = WsClient::opened(&other_url);

    // Once the first stream is gone, the refused ticket (not used up) opens.
    drop(first);
    let mut reopened = None;
    wait_until(Duration::from_secs(20), || {
        let c = WsClient::connect(&second_url);
        let v = c.next();
        match v["kind"].as_str() {
            Some("open") => {
                reopened = Some(c);
                true
            }
            _ => {
                assert_eq!(v["status"], 429, "{v}");
                false
            }
        }
    });
    assert!(reopened.is_some());
}

#[test]
fn realtime_another_organizations_events_never_arrive() {
    let g = Gateway::start();
    let a = g.key("org_rt_a", &["read", "manage"]);
    let b = g.key("org_rt_b", &["read", "manage"]);
    let sa = g.working_session(&a);
    let sb = g.working_session(&b);
    let (_, url) = ticket(&g, &b, json!({"events": ["*"]}));
    let stream_b = WsClient::opened(&url);

    message(&g, &sa, "3EB0TA00000000000001");
    let (_, url) = ticket(&g, &a, json!({"events": ["message"]}));
    let stream_a = WsClient::opened(&url);
    message(&g, &sa, "3EB0TA00000000000002");
    let a_event = stream_a.frame();
    assert_eq!(a_event["payload"]["id"], "3EB0TA00000000000002");
    message(&g, &sb, "3EB0TB00000000000001");

    let frames = stream_b.frames_until("3EB0TB00000000000001");
    for f in &frames {
        assert_eq!(f["organization"], "org_rt_b", "{f}");
        assert!(
            !f["payload"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("3EB0TA")),
            "{f}"
        );
    }
    // Org A's event ids mean nothing to org B's buffer: resuming after one is a gap.
    let after = a_event["id"].as_str().unwrap();
    let (_, url) = ticket(&g, &b, json!({"after": after}));
    let resumed = WsClient::opened(&url);
    let gap = resumed.frame();
    assert_eq!(gap["event"], "stream.gap");
    assert_eq!(gap["organization"], "org_rt_b");
    // And a session of org A is not a filter org B may set.
    g.post("/realtime/ticket", &b, json!({"sessionId": sa}))
        .assert_error(422, "validation_error");
}

#[test]
fn realtime_streams_close_with_1001_when_the_gateway_stops() {
    let mut g = Gateway::start();
    let key = g.key("org_rt_stop", &["read"]);
    let (_, url) = ticket(&g, &key, json!({}));
    let stream = WsClient::opened(&url);
    assert!(
        g.stop(),
        "the gateway stops cleanly with a stream open:\n{}",
        g.log()
    );
    let end = stream.next_event();
    assert_eq!(end["kind"], "close", "{end}");
    assert_eq!(end["code"], 1001, "{end}");
}
