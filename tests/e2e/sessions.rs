//! Sessions (API.md §2): the whole lifecycle on the sandbox engine, the pair-code path,
//! restart of the binary, the real whatsapp-rust engine with no network, tenancy on every
//! session route, and status/QR events delivered to subscribing plugins.

use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SESSION_FIELDS: [&str; 19] = [
    "id",
    "organizationId",
    "label",
    "status",
    "statusReason",
    "phoneNumber",
    "waJid",
    "waLid",
    "gatewayId",
    "isAdminSession",
    "autoRead",
    "presenceTyping",
    "ratePerMin",
    "ratePerHour",
    "createdByUserId",
    "createdAt",
    "updatedAt",
    "lastConnectedAt",
    "id",
];

fn assert_session_shape(s: &Value) {
    for f in SESSION_FIELDS {
        assert!(s.get(f).is_some(), "session lacks {f}: {s}");
    }
    assert_eq!(s["id"].as_str().unwrap().len(), 26, "ids are ULIDs: {s}");
}

fn poll_qr(g: &Gateway, id: &str, key: &str) -> Value {
    let mut last = String::new();
    let ok = wait_for(Duration::from_secs(20), || {
        let r = g.get(&format!("/sessions/{id}/qr"), key);
        last = r.text();
        if r.status == 404 {
            r.assert_error(404, "not_found");
            return false;
        }
        assert_eq!(r.status, 200, "{last}");
        true
    });
    assert!(ok, "no QR code: {last}");
    g.get(&format!("/sessions/{id}/qr"), key).json()
}

#[test]
fn the_whole_lifecycle_on_the_sandbox() {
    let g = Gateway::start();
    let key = g.key("org_life", &["manage"]);

    // Create, stopped.
    let r = g.post(
        "/sessions",
        &key,
        json!({"label": "Support line", "autoRead": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let s = r.json();
    assert_session_shape(&s);
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["label"], "Support line");
    assert_eq!(s["organizationId"], "org_life");
    assert_eq!(s["autoRead"], true);
    assert_eq!(s["presenceTyping"], true);
    assert_eq!(s["ratePerMin"], 20);
    assert_eq!(s["ratePerHour"], 600);
    assert!(
        s["createdByUserId"]
            .as_str()
            .unwrap()
            .starts_with("apikey:key_")
    );
    assert_eq!(s["waJid"], Value::Null);

    // Never paired: `me` is 404; stopping a stopped session is a no-op.
    g.get(&format!("/sessions/{id}/me"), &key)
        .assert_error(404, "not_found");
    let r = g.post(&format!("/sessions/{id}:stop"), &key, json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "stopped");

    // The QR code: asking starts pairing; 404 until a code exists, then a code.
    let qr = poll_qr(&g, &id, &key);
    let code = qr["code"].as_str().unwrap().to_owned();
    assert!(!code.is_empty());
    assert!(qr["expiresAt"].as_u64().unwrap() > qr_now());
    assert_eq!(
        g.get(&format!("/sessions/{id}"), &key).json()["status"],
        "scan_qr_code"
    );

    // The PNG form decodes as an image of the code.
    let r = g.get(&format!("/sessions/{id}/qr?format=png"), &key);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    let decoder = png::Decoder::new(std::io::Cursor::new(r.body.clone()));
    let reader = decoder.read_info().expect("a PNG");
    let info = reader.info();
    assert!(
        info.width >= 21 * 8 && info.width == info.height,
        "{}x{}",
        info.width,
        info.height
    );
    g.get(&format!("/sessions/{id}/qr?format=gif"), &key)
        .assert_error(400, "validation_error");

    // Starting a session that is pairing is a no-op.
    let r = g.post(&format!("/sessions/{id}:start"), &key, json!({}));
    assert_eq!(r.json()["status"], "scan_qr_code");

    // A simulated phone scans the code: working, with the account's JID and LID.
    let scan = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{id}/scan"),
        Some(json!({"phone": "+62 812 3456 7890", "pushName": "Acme"})),
    );
    assert_eq!(scan.status, 200, "{}", scan.text());
    let s = g.wait_status(&id, &key, "working");
    assert_eq!(s["phoneNumber"], "6281234567890");
    assert_eq!(s["waJid"], "6281234567890@s.whatsapp.net");
    assert!(s["waLid"].as_str().unwrap().ends_with("@lid"));
    assert!(s["lastConnectedAt"].as_u64().is_some());

    let me = g.get(&format!("/sessions/{id}/me"), &key);
    assert_eq!(me.status, 200);
    assert_eq!(
        me.json(),
        json!({"sessionId": id, "status": "working", "connected": true, "phoneNumber": "6281234567890",
               "waJid": "6281234567890@s.whatsapp.net", "waLid": s["waLid"], "pushName": "Acme"})
    );

    // Paired: QR and pair code are refused.
    g.get(&format!("/sessions/{id}/qr"), &key)
        .assert_error(400, "validation_error");
    g.post(
        &format!("/sessions/{id}/pairing-code"),
        &key,
        json!({"phone": "14155550123"}),
    )
    .assert_error(400, "validation_error");
    // Starting a working session is a no-op.
    assert_eq!(
        g.post(&format!("/sessions/{id}:start"), &key, json!({}))
            .json()["status"],
        "working"
    );

    // Stop keeps the pairing.
    let r = g.post(&format!("/sessions/{id}:stop"), &key, json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "stopped");
    assert_eq!(r.json()["waJid"], "6281234567890@s.whatsapp.net");
    let me = g.get(&format!("/sessions/{id}/me"), &key).json();
    assert_eq!(me["connected"], false);

    // Start reconnects without pairing again.
    g.post(&format!("/sessions/{id}:start"), &key, json!({}));
    g.wait_status(&id, &key, "working");

    // Restart: stop then start, keeping the pairing.
    let r = g.post(&format!("/sessions/{id}:restart"), &key, json!({}));
    assert_eq!(r.status, 200);
    let s = g.wait_status(&id, &key, "working");
    assert_eq!(s["waJid"], "6281234567890@s.whatsapp.net");

    // Logout: the pairing is gone, the row stays; a second logout is a no-op.
    let r = g.post(&format!("/sessions/{id}:logout"), &key, json!({}));
    assert_eq!(r.status, 200);
    let s = r.json();
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["waJid"], Value::Null);
    assert_eq!(s["phoneNumber"], Value::Null);
    let again = g.post(&format!("/sessions/{id}:logout"), &key, json!({}));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["status"], "stopped");
    g.get(&format!("/sessions/{id}/me"), &key)
        .assert_error(404, "not_found");

    // After logout a start asks for a new QR code.
    g.post(&format!("/sessions/{id}:start"), &key, json!({}));
    g.wait_status(&id, &key, "scan_qr_code");

    // Delete.
    assert_eq!(g.delete(&format!("/sessions/{id}"), &key).status, 204);
    g.get(&format!("/sessions/{id}"), &key)
        .assert_error(404, "not_found");
    g.delete(&format!("/sessions/{id}"), &key)
        .assert_error(404, "not_found");
    let list = g.get("/sessions", &key).json();
    assert_eq!(list, json!({"data": [], "nextCursor": null}));
}

fn qr_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn pairing_with_a_code() {
    let g = Gateway::start();
    let key = g.key("org_pair", &["manage"]);
    let id = g.create_session(&key, json!({"start": true}));
    let r = g.post(
        &format!("/sessions/{id}/pairing-code"),
        &key,
        json!({"phone": "14155550123"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let code = r.json()["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(code[..4].chars().all(|c| c.is_ascii_uppercase()), "{code}");
    assert!(code[5..].chars().all(|c| c.is_ascii_digit()), "{code}");
    assert!(r.json()["expiresAt"].as_u64().unwrap() > qr_now());

    // The phone enters a wrong code, then the right one.
    let wrong = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{id}/pair-code"),
        Some(json!({"code": "AAAA-0000"})),
    );
    wrong.assert_error(400, "validation_error");
    let right = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{id}/pair-code"),
        Some(json!({"code": code})),
    );
    assert_eq!(right.status, 200, "{}", right.text());
    let s = g.wait_status(&id, &key, "working");
    assert_eq!(s["phoneNumber"], "14155550123");
    assert_eq!(s["waJid"], "14155550123@s.whatsapp.net");
}

#[test]
fn bad_input_is_a_clear_400() {
    let g = Gateway::start();
    let key = g.key("org_bad", &["manage"]);
    let id = g.create_session(&key, json!({}));
    let pc = format!("/sessions/{id}/pairing-code");
    for (body, field) in [
        (json!({"phone": "+14155550123"}), Some("phone")),
        (json!({"phone": "not a phone"}), Some("phone")),
        (json!({"phone": "123"}), Some("phone")),
        (json!({"phone": 14155550123u64}), Some("phone")),
        (json!({}), None),
        (json!({"phone": "14155550123", "extra": 1}), None),
    ] {
        let r = g.post(&pc, &key, body.clone());
        r.assert_error(400, "validation_error");
        if let Some(f) = field {
            assert_eq!(r.json()["error"]["details"]["field"], f, "{body}");
        }
    }
    g.raw(
        "POST",
        &format!("/api/v1{pc}"),
        &[("authorization", &format!("Bearer {key}"))],
        Some(b"{not json".to_vec()),
    )
    .assert_error(400, "validation_error");
    g.post("/sessions", &key, json!({"label": "x".repeat(101)}))
        .assert_error(400, "validation_error");
    g.post("/sessions", &key, json!({"lable": "typo"}))
        .assert_error(400, "validation_error");
    g.post("/sessions", &key, json!({"start": "yes"}))
        .assert_error(400, "validation_error");
    // Nothing was created by the refused calls.
    assert_eq!(
        g.get("/sessions", &key).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_working_session_comes_back_after_a_restart() {
    let mut g = Gateway::start();
    let key = g.key("org_restart", &["manage"]);
    let working = g.working_session(&key);
    let stopped = g.create_session(&key, json!({"label": "idle"}));
    let before = g.get("/sessions", &key).json();
    let paired = g.get(&format!("/sessions/{working}"), &key).json();

    g.restart();

    let s = g.wait_status(&working, &key, "working");
    assert_eq!(s["waJid"], paired["waJid"]);
    assert_eq!(s["waLid"], paired["waLid"]);
    assert_eq!(
        g.get(&format!("/sessions/{stopped}"), &key).json()["status"],
        "stopped"
    );
    let after = g.get("/sessions", &key).json();
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&before), ids(&after));
}

#[test]
fn lists_are_paged() {
    let g = Gateway::start();
    let key = g.key("org_many", &["manage"]);
    let mut created: Vec<String> = (0..5)
        .map(|i| g.create_session(&key, json!({"label": format!("s{i}")})))
        .collect();
    created.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/sessions?limit=2&cursor={c}"),
            None => "/sessions?limit=2".into(),
        };
        let page = g.get(&path, &key).json();
        for s in page["data"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
    g.get("/sessions?limit=abc", &key)
        .assert_error(400, "validation_error");
}

#[test]
fn the_real_engine_without_network_reports_why_and_gives_up() {
    let mut g = Gateway::with(Options {
        engine: "whatsapp-rust",
        ..Options::default()
    });
    let key = g.key("org_real", &["manage"]);
    let started = Instant::now();
    let r = g.post("/sessions", &key, json!({"label": "real", "start": true}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "create+start blocked for {:?}",
        started.elapsed()
    );
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["status"], "starting");

    // It keeps trying, and says why it is not connected.
    let mut s = Value::Null;
    assert!(
        wait_for(Duration::from_secs(20), || {
            s = g.get(&format!("/sessions/{id}"), &key).json();
            s["statusReason"]
                .as_str()
                .is_some_and(|r| r.contains("not connected"))
        }),
        "no reason given: {s}"
    );
    assert_eq!(s["status"], "starting", "{s}");
    assert!(
        s["statusReason"].as_str().unwrap().contains("retrying"),
        "{s}"
    );

    // Other requests are served meanwhile.
    let other = g.create_session(&key, json!({"label": "sandbox-free"}));
    let t = Instant::now();
    assert_eq!(g.get(&format!("/sessions/{other}"), &key).status, 200);
    assert!(t.elapsed() < Duration::from_secs(1));

    // Live calls answer 501 while not connected.
    g.post(
        &format!("/sessions/{id}/pairing-code"),
        &key,
        json!({"phone": "14155550123"}),
    )
    .assert_error(501, "not_implemented");

    // After max_attempts (3 in the test config) it gives up: failed, with the reason.
    let s = g.wait_status(&id, &key, "failed");
    assert!(
        s["statusReason"].as_str().unwrap().contains("gave up"),
        "{s}"
    );

    // Start again, then stop: stopped.
    g.post(&format!("/sessions/{id}:start"), &key, json!({}));
    let r = g.post(&format!("/sessions/{id}:stop"), &key, json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "stopped");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        g.get(&format!("/sessions/{id}"), &key).json()["status"],
        "stopped"
    );
    assert!(g.stop(), "gateway did not stop cleanly");
}

#[test]
fn another_organizations_session_is_not_found_on_every_route() {
    let g = Gateway::start();
    let mine = g.key("org_mine", &["read", "send", "manage"]);
    let theirs = g.key("org_theirs", &["read", "send", "manage"]);
    let id = g.working_session(&theirs);
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/sessions/{id}"), None),
        ("DELETE", format!("/sessions/{id}"), None),
        ("POST", format!("/sessions/{id}:start"), Some(json!({}))),
        ("POST", format!("/sessions/{id}:stop"), Some(json!({}))),
        ("POST", format!("/sessions/{id}:restart"), Some(json!({}))),
        ("POST", format!("/sessions/{id}:logout"), Some(json!({}))),
        ("GET", format!("/sessions/{id}/qr"), None),
        ("GET", format!("/sessions/{id}/qr?format=png"), None),
        (
            "POST",
            format!("/sessions/{id}/pairing-code"),
            Some(json!({"phone": "14155550123"})),
        ),
        ("GET", format!("/sessions/{id}/me"), None),
        ("GET", format!("/sessions/{id}/notes"), None),
        (
            "POST",
            format!("/sessions/{id}/notes"),
            Some(json!({"text": "x"})),
        ),
        ("GET", format!("/sessions/{id}/chaos-events"), None),
        (
            "GET",
            format!("/sessions/{}/chaos-events", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let r = g.call(method, &path, &mine, body);
        r.assert_error(404, "not_found");
    }
    // Untouched for its owner.
    let s = g.get(&format!("/sessions/{id}"), &theirs).json();
    assert_eq!(s["status"], "working");
    assert!(
        g.get("/sessions", &mine).json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn status_changes_and_qr_codes_are_published_as_events() {
    let g = Gateway::start();
    let key = g.key("org_events", &["read", "manage"]);
    let id = g.working_session(&key);
    let mut events = Vec::new();
    assert!(wait_for(Duration::from_secs(10), || {
        events = g
            .get(&format!("/sessions/{id}/chaos-events"), &key)
            .json()
            .as_array()
            .unwrap()
            .clone();
        events
            .iter()
            .any(|e| e["name"] == "session.status" && e["payload"]["status"] == "working")
    }));
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"auth.qr"), "{names:?}");
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "session.status")
        .map(|e| e["payload"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["starting", "scan_qr_code", "working"]);
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(e["session"], id);
        assert_eq!(e["organization"], "org_events");
        assert!(e["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
    let qr = events.iter().find(|e| e["name"] == "auth.qr").unwrap();
    assert!(qr["payload"]["code"].as_str().is_some());
    assert!(qr["payload"]["expiresAt"].as_u64().is_some());
}
