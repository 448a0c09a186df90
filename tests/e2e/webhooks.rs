//! Webhooks (API.md §7): targets managed over the API, every delivery verified by the
//! reference Standard Webhooks library in a real receiver (`webhook_receiver.py`), and
//! the faults a production receiver has — down, slow, failing, redirecting, private —
//! with retries, the dead-letter list, replay and a `kill -9` with deliveries pending.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The receiver script, run with python3.
fn receiver_script() -> std::path::PathBuf {
    root().join("tests/e2e/webhook_receiver.py")
}

/// A running receiver; killed on drop.
pub struct Receiver {
    child: Child,
    pub port: u16,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::on_port(0)
    }

    /// A receiver on `port` (0: any free one).
    pub fn on_port(port: u16) -> Receiver {
        let mut child = Command::new("python3")
            .arg(receiver_script())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with standardwebhooks (cargo xtask test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Receiver { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sets how `path` behaves (`secret`/`secrets`, `status`, `delay`, `location`).
    pub fn control(&self, path: &str, mut how: Value) {
        how["path"] = json!(path);
        let r = request(
            &self.url("/_control"),
            "POST",
            &[("content-type", "application/json")],
            Some(how.to_string().into_bytes()),
        );
        assert_eq!(r.status, 204);
    }

    /// What arrived at `path`, in order.
    pub fn log(&self, path: &str) -> Vec<Value> {
        let r = request(&self.url("/_log"), "GET", &[], None);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["path"] == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` received `n` requests; answers them.
    pub fn wait(&self, path: &str, n: usize, limit: Duration) -> Vec<Value> {
        let ok = wait_for(limit, || self.log(path).len() >= n);
        let got = self.log(path);
        assert!(
            ok,
            "{path}: {} of {n} requests arrived: {got:#?}",
            got.len()
        );
        got
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A gateway with the webhooks plugin, loopback targets allowed, and `extra` more
/// `[webhooks]` keys.
pub fn webhook_gateway(extra: &str) -> Gateway {
    Gateway::with(Options {
        plugins: ["sessions", "webhooks"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        extra_toml: format!(
            "[webhooks]\nallow_http = true\nallow_private_targets = true\nmax_per_org = 5\n{}{extra}",
            if extra.contains("timeout_ms") {
                ""
            } else {
                "timeout_ms = 2000\n"
            }
        ),
        ..Options::default()
    })
}

pub fn patch(g: &Gateway, path: &str, key: &str, body: Value) -> Resp {
    g.call("PATCH", path, key, Some(body))
}

/// Creates a webhook answering 201; returns it (with its one-time `secret`).
pub fn create(g: &Gateway, key: &str, body: Value) -> Value {
    let r = g.post("/webhooks", key, body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// An incoming text message on `session` (a `message` event).
pub fn inject_message(g: &Gateway, session: &str, text: &str) {
    let r = g.admin_call(
        "POST",
        &format!("/sandbox/sessions/{session}/events"),
        Some(json!({"event": "message", "payload": {
            "id": format!("3EB0{}", ulid_like()), "chat": "6281234567890@s.whatsapp.net",
            "sender": "6281234567890@s.whatsapp.net", "fromMe": false, "type": "text",
            "text": text, "timestamp": 1719662400000u64
        }})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn ulid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016X}",
        N.fetch_add(1, Ordering::Relaxed) + std::process::id() as u64 * 1_000_000
    )
}

/// A receiver, a gateway delivering to it, a manage key of `org` and a working session.
fn setup(org: &str, extra: &str) -> (Receiver, Gateway, String, String) {
    let rx = Receiver::start();
    let g = webhook_gateway(extra);
    let key = g.key(org, &["read", "send", "manage"]);
    let session = g.working_session(&key);
    (rx, g, key, session)
}

fn deliveries(g: &Gateway, key: &str, webhook: &str, query: &str) -> Vec<Value> {
    let r = g.get(
        &format!("/webhooks/{webhook}/deliveries?limit=100{query}"),
        key,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].as_array().unwrap().clone()
}

#[test]
fn webhooks_are_managed_checked_and_kept_per_organization() {
    let g = webhook_gateway("");
    let key = g.key("org_wh", &["read", "send", "manage"]);
    let session = g.create_session(&key, json!({"label": "a"}));

    // Create: defaults, a generated secret answered once.
    let w = create(
        &g,
        &key,
        json!({"url": "https://example.com/hook", "events": ["message", "session.*"],
               "customHeaders": {"X-Tenant": "acme"}}),
    );
    let id = w["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wh_"), "{w}");
    assert_eq!(w["organizationId"], "org_wh");
    assert_eq!(w["active"], true);
    assert_eq!(w["sessionId"], Value::Null);
    assert_eq!(w["disabledReason"], Value::Null);
    assert_eq!(w["customHeaders"], json!({"X-Tenant": "acme"}));
    assert_eq!(
        w["retryPolicy"],
        json!({"attempts": 15, "delaySeconds": 2, "policy": "exponential", "maxDelaySeconds": 3600})
    );
    assert!(w["secret"].as_str().unwrap().starts_with("whsec_"), "{w}");
    let got = g.get(&format!("/webhooks/{id}"), &key);
    assert_eq!(got.status, 200);
    assert!(
        got.json().get("secret").is_none(),
        "the secret is write-only"
    );
    assert_eq!(got.json()["url"], "https://example.com/hook");

    // A given secret is not echoed.
    let w2 = create(
        &g,
        &key,
        json!({"url": "https://example.com/two", "events": ["*"], "sessionId": session,
               "secret": "a-secret-of-twenty-chars"}),
    );
    assert!(w2.get("secret").is_none(), "{w2}");
    assert_eq!(w2["sessionId"], session.as_str());

    // Update is partial; retryPolicy fields merge; null clears the session filter.
    let r = patch(
        &g,
        &format!("/webhooks/{}", w2["id"].as_str().unwrap()),
        &key,
        json!({"retryPolicy": {"attempts": 3, "policy": "linear"}, "sessionId": null, "active": false}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(
        u["retryPolicy"],
        json!({"attempts": 3, "delaySeconds": 2, "policy": "linear", "maxDelaySeconds": 3600})
    );
    assert_eq!(u["sessionId"], Value::Null);
    assert_eq!(u["active"], false);
    assert_eq!(u["url"], "https://example.com/two");
    assert!(u["updatedAt"].as_u64() >= u["createdAt"].as_u64());

    // Listed, paged.
    let r = g.get("/webhooks?limit=1", &key);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
    assert!(r.json()["nextCursor"].is_string());
    let all = g.get("/webhooks", &key).json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);

    // Validation: 422 naming the field.
    for (body, field) in [
        (
            json!({"url": "ftp://example.com", "events": ["message"]}),
            "url",
        ),
        (json!({"url": "not a url", "events": ["message"]}), "url"),
        (
            json!({"url": "https://example.com", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com", "events": ["no.such_event"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com", "events": ["history.sync"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com", "events": ["*"], "customHeaders": {"Content-Type": "text/plain"}}),
            "customHeaders",
        ),
        (
            json!({"url": "https://example.com", "events": ["*"], "customHeaders": {"webhook-id": "x"}}),
            "customHeaders",
        ),
        (
            json!({"url": "https://example.com", "events": ["*"], "retryPolicy": {"attempts": 31}}),
            "retryPolicy",
        ),
        (
            json!({"url": "https://example.com", "events": ["*"], "retryPolicy": {"policy": "fibonacci"}}),
            "retryPolicy",
        ),
        (
            json!({"url": "https://example.com", "events": ["*"], "sessionId": "01NOSUCHSESSION0000000000"}),
            "sessionId",
        ),
        (
            json!({"url": "https://example.com", "events": ["*"], "secret": "short"}),
            "secret",
        ),
    ] {
        let r = g.post("/webhooks", &key, body.clone());
        r.assert_error(422, "validation_error");
        assert_eq!(
            r.json()["error"]["details"]["field"],
            field,
            "{body}: {}",
            r.text()
        );
    }
    // Unknown fields and bad JSON are 422 too (every §7 write).
    g.post(
        "/webhooks",
        &key,
        json!({"url": "https://example.com", "events": ["*"], "colour": "red"}),
    )
    .assert_error(422, "validation_error");
    patch(
        &g,
        &format!("/webhooks/{id}"),
        &key,
        json!({"events": "message"}),
    )
    .assert_error(422, "validation_error");
    // Aliases are accepted.
    create(
        &g,
        &key,
        json!({"url": "https://example.com/a", "events": ["message.received", "session.connected"]}),
    );

    // The cap (5 here): two more fit, the next is 409.
    create(
        &g,
        &key,
        json!({"url": "https://example.com/b", "events": ["*"]}),
    );
    create(
        &g,
        &key,
        json!({"url": "https://example.com/c", "events": ["*"]}),
    );
    g.post(
        "/webhooks",
        &key,
        json!({"url": "https://example.com/d", "events": ["*"]}),
    )
    .assert_error(409, "conflict");

    // Tenancy: another organization sees none of it.
    let other = g.key("org_other", &["read", "send", "manage"]);
    g.get(&format!("/webhooks/{id}"), &other)
        .assert_error(404, "not_found");
    patch(
        &g,
        &format!("/webhooks/{id}"),
        &other,
        json!({"active": false}),
    )
    .assert_error(404, "not_found");
    g.delete(&format!("/webhooks/{id}"), &other)
        .assert_error(404, "not_found");
    g.get(&format!("/webhooks/{id}/deliveries"), &other)
        .assert_error(404, "not_found");
    assert_eq!(g.get("/webhooks", &other).json()["data"], json!([]));
    // manage is required.
    let reader = g.key("org_wh", &["read", "send"]);
    g.get("/webhooks", &reader).assert_error(403, "forbidden");

    // Delete: 204, then 404.
    let r = g.delete(&format!("/webhooks/{id}"), &key);
    assert_eq!(r.status, 204, "{}", r.text());
    g.get(&format!("/webhooks/{id}"), &key)
        .assert_error(404, "not_found");
    g.get("/webhooks/wh_nope", &key)
        .assert_error(404, "not_found");
}

#[test]
fn deliveries_are_signed_verified_by_the_reference_library_and_logged() {
    let (rx, g, key, session) = setup("org_sig", "");
    let w = create(
        &g,
        &key,
        json!({"url": rx.url("/hook"), "events": ["message"], "customHeaders": {"X-Tenant": "acme", "User-Agent": "acme-hooks"}}),
    );
    let id = w["id"].as_str().unwrap();
    let secret = w["secret"].as_str().unwrap();
    rx.control("/hook", json!({"secret": secret}));
    // Another organization's webhook on the same receiver sees nothing of this one.
    let other = g.key("org_sig_other", &["manage"]);
    create(
        &g,
        &other,
        json!({"url": rx.url("/other"), "events": ["*"]}),
    );

    inject_message(&g, &session, "hello hooks");
    let got = rx.wait("/hook", 1, Duration::from_secs(15));
    let d = &got[0];
    assert_eq!(d["verified"], true, "{d:#}");
    assert_eq!(d["tamper_refused"], true, "{d:#}");
    assert_eq!(d["event"], "message");
    assert_eq!(d["attempt"], "1");
    assert_eq!(d["headers"]["content-type"], "application/json");
    assert_eq!(d["headers"]["x-tenant"], "acme");
    assert_eq!(
        d["headers"]["user-agent"], "acme-hooks",
        "custom headers override defaults"
    );
    let body: Value = serde_json::from_str(d["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["schema"], "v1");
    assert_eq!(body["event"], "message");
    assert_eq!(body["session"], session.as_str());
    assert_eq!(body["organization"], "org_sig");
    assert_eq!(body["payload"]["text"], "hello hooks");
    assert_eq!(d["id"], body["id"], "webhook-id is the event id");

    // The delivery log has it: succeeded, one attempt, the receiver's answer.
    let ok = wait_for(Duration::from_secs(5), || {
        deliveries(&g, &key, id, "")
            .first()
            .is_some_and(|d| d["status"] == "succeeded")
    });
    assert!(ok, "{:#?}", deliveries(&g, &key, id, ""));
    let list = deliveries(&g, &key, id, "");
    assert_eq!(list.len(), 1);
    let dlv = &list[0];
    assert_eq!(dlv["eventId"], body["id"]);
    assert_eq!(dlv["event"], "message");
    assert_eq!(dlv["sessionId"], session.as_str());
    assert_eq!(dlv["attempts"], 1);
    assert_eq!(dlv["lastStatusCode"], 200);
    assert_eq!(dlv["lastError"], Value::Null);
    assert_eq!(dlv["id"], d["delivery"]);
    let detail = g.get(
        &format!("/webhooks/{id}/deliveries/{}", dlv["id"].as_str().unwrap()),
        &key,
    );
    assert_eq!(detail.status, 200, "{}", detail.text());
    let detail = detail.json();
    assert_eq!(
        detail["envelope"], body,
        "the envelope is what was signed and sent"
    );
    assert_eq!(detail["attemptLog"][0]["n"], 1);
    assert_eq!(detail["attemptLog"][0]["statusCode"], 200);
    assert_eq!(
        detail["attemptLog"][0]["responseExcerpt"],
        "answered 200 for /hook"
    );
    g.get(&format!("/webhooks/{id}/deliveries/dlv_nope"), &key)
        .assert_error(404, "not_found");
    g.get(&format!("/webhooks/{id}/deliveries?status=lost"), &key)
        .assert_error(400, "validation_error");
    assert_eq!(deliveries(&g, &key, id, "&status=dead").len(), 0);
    assert_eq!(deliveries(&g, &key, id, "&event=message").len(), 1);
    assert_eq!(deliveries(&g, &key, id, "&event=session.status").len(), 0);

    // The test call: one signed webhook.test, answered when it ended.
    let t = g.post(&format!("/webhooks/{id}:test"), &key, json!({}));
    assert_eq!(t.status, 200, "{}", t.text());
    assert_eq!(t.json()["event"], "webhook.test");
    assert_eq!(t.json()["status"], "succeeded");
    assert_eq!(t.json()["attempts"], 1);
    let got = rx.wait("/hook", 2, Duration::from_secs(5));
    assert_eq!(got[1]["verified"], true);
    let test_body: Value = serde_json::from_str(got[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(test_body["payload"]["webhookId"], id);
    assert_eq!(test_body["session"], Value::Null);

    // Rotation: the next deliveries carry two signatures, each verifying with its secret.
    let r = patch(
        &g,
        &format!("/webhooks/{id}"),
        &key,
        json!({"secret": "whsec_dGhpcy1pcy1hLW5ldy1zZWNyZXQtb2YtMzItYnl0ZXMh"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    rx.control(
        "/hook",
        json!({"secrets": ["whsec_dGhpcy1pcy1hLW5ldy1zZWNyZXQtb2YtMzItYnl0ZXMh", secret]}),
    );
    inject_message(&g, &session, "after rotation");
    let got = rx.wait("/hook", 3, Duration::from_secs(15));
    assert_eq!(got[2]["verified_with"], json!([0, 1]), "{:#}", got[2]);
    assert_eq!(got[2]["signature"].as_str().unwrap().split(' ').count(), 2);
    // Other organizations' webhooks saw nothing of this one's events.
    assert!(rx.log("/other").is_empty(), "{:#?}", rx.log("/other"));
}

#[test]
fn a_failing_receiver_is_retried_then_dead_then_replayed_once() {
    let (rx, g, key, session) = setup("org_retry", "");
    let w = create(
        &g,
        &key,
        json!({"url": rx.url("/flaky"), "events": ["message"],
               "retryPolicy": {"attempts": 3, "delaySeconds": 1, "policy": "constant"}}),
    );
    let id = w["id"].as_str().unwrap();
    rx.control("/flaky", json!({"secret": w["secret"], "status": 500}));
    inject_message(&g, &session, "will fail");

    let got = rx.wait("/flaky", 3, Duration::from_secs(20));
    let attempts: Vec<&str> = got.iter().map(|d| d["attempt"].as_str().unwrap()).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    assert!(
        got.iter().all(|d| d["id"] == got[0]["id"]),
        "the same webhook-id on every attempt"
    );
    let gap = got[1]["at"].as_f64().unwrap() - got[0]["at"].as_f64().unwrap();
    assert!(
        (0.7..5.0).contains(&gap),
        "retried after about a second (±20 %): {gap}"
    );
    let ok = wait_for(Duration::from_secs(5), || {
        deliveries(&g, &key, id, "&status=dead").len() == 1
    });
    assert!(ok, "{:#?}", deliveries(&g, &key, id, ""));
    let dead = deliveries(&g, &key, id, "&status=dead").remove(0);
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["lastError"], "http_500");
    assert_eq!(dead["lastStatusCode"], 500);
    assert_eq!(dead["nextAttemptAt"], Value::Null);
    let dead_id = dead["id"].as_str().unwrap();
    let detail = g
        .get(&format!("/webhooks/{id}/deliveries/{dead_id}"), &key)
        .json();
    let log: Vec<Value> = detail["attemptLog"].as_array().unwrap().clone();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|a| a["error"] == "http_500" && a["statusCode"] == 500),
        "{log:#?}"
    );
    // No more attempts once dead.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.log("/flaky").len(), 3);

    // Fixed: replay delivers it once, with the same webhook-id.
    rx.control("/flaky", json!({"status": 200}));
    let r = g.post(
        &format!("/webhooks/{id}/deliveries/{dead_id}:replay"),
        &key,
        json!({}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let replay = r.json();
    assert_eq!(replay["replayOf"], dead_id);
    assert_eq!(replay["eventId"], dead["eventId"]);
    let got = rx.wait("/flaky", 4, Duration::from_secs(10));
    assert_eq!(got[3]["id"], got[0]["id"]);
    assert_eq!(got[3]["verified"], true);
    let ok = wait_for(Duration::from_secs(5), || {
        g.get(
            &format!(
                "/webhooks/{id}/deliveries/{}",
                replay["id"].as_str().unwrap()
            ),
            &key,
        )
        .json()["status"]
            == "succeeded"
    });
    assert!(ok);
    let original = g
        .get(&format!("/webhooks/{id}/deliveries/{dead_id}"), &key)
        .json();
    assert_eq!(original["replayedBy"], replay["id"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.log("/flaky").len(), 4, "delivered once");
    // Operators see the attempts by result.
    let metrics = g.admin_call("GET", "/metrics", None).text();
    for line in [
        "gateway_webhook_attempts_total{result=\"http_5xx\"} 3",
        "gateway_webhook_attempts_total{result=\"succeeded\"} 1",
        "gateway_webhook_deliveries_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    // A finished delivery may be replayed again (replayDelivery is not once-only; the
    // bulk replay of dead letters is).
    let again = g.post(
        &format!("/webhooks/{id}/deliveries/{dead_id}:replay"),
        &key,
        json!({}),
    );
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(again.json()["replayOf"], dead_id);
    assert_eq!(again.json()["eventId"], dead["eventId"]);
    rx.wait("/flaky", 5, Duration::from_secs(10));

    // Dead letters in bulk: two more die, replayDeadLetters queues both (not the one
    // replayed already), then none.
    rx.control("/flaky", json!({"status": 503}));
    inject_message(&g, &session, "second");
    inject_message(&g, &session, "third");
    let ok = wait_for(Duration::from_secs(20), || {
        deliveries(&g, &key, id, "&status=dead").len() == 3
    });
    assert!(ok, "{:#?}", deliveries(&g, &key, id, ""));
    rx.control("/flaky", json!({"status": 204}));
    let r = g.post(
        &format!("/webhooks/{id}:replay"),
        &key,
        json!({"limit": 10}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!({"queued": 2}));
    rx.wait("/flaky", 5 + 6 + 2, Duration::from_secs(10));
    let r = g.post(&format!("/webhooks/{id}:replay"), &key, json!({}));
    assert_eq!(r.json(), json!({"queued": 0}));
    g.post(&format!("/webhooks/{id}:replay"), &key, json!({"limit": 0}))
        .assert_error(422, "validation_error");
    g.post(
        &format!("/webhooks/{id}:replay"),
        &key,
        json!({"since": 5, "until": 1}),
    )
    .assert_error(422, "validation_error");

    // Pausing kills what waits; a paused webhook records nothing new.
    rx.control("/flaky", json!({"status": 500}));
    patch(
        &g,
        &format!("/webhooks/{id}"),
        &key,
        json!({"retryPolicy": {"attempts": 30, "delaySeconds": 60}}),
    );
    inject_message(&g, &session, "will wait");
    let ok = wait_for(Duration::from_secs(10), || {
        deliveries(&g, &key, id, "&status=retrying").len() == 1
    });
    assert!(ok, "{:#?}", deliveries(&g, &key, id, ""));
    let waiting = deliveries(&g, &key, id, "&status=retrying").remove(0);
    let r = g.post(
        &format!(
            "/webhooks/{id}/deliveries/{}:replay",
            waiting["id"].as_str().unwrap()
        ),
        &key,
        json!({}),
    );
    r.assert_error(409, "conflict");
    let r = patch(
        &g,
        &format!("/webhooks/{id}"),
        &key,
        json!({"active": false}),
    );
    assert_eq!(r.status, 200);
    let now = g
        .get(
            &format!(
                "/webhooks/{id}/deliveries/{}",
                waiting["id"].as_str().unwrap()
            ),
            &key,
        )
        .json();
    assert_eq!(now["status"], "dead");
    let before = deliveries(&g, &key, id, "").len();
    inject_message(&g, &session, "while paused");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        deliveries(&g, &key, id, "").len(),
        before,
        "paused: nothing recorded"
    );
}

#[test]
fn a_slow_receiver_times_out_without_delaying_other_targets() {
    let (rx, g, key, session) = setup("org_slow", "timeout_ms = 6000\n");
    let slow = create(
        &g,
        &key,
        json!({"url": rx.url("/slow"), "events": ["message"], "retryPolicy": {"attempts": 1}}),
    );
    let fast = create(
        &g,
        &key,
        json!({"url": rx.url("/fast"), "events": ["message"]}),
    );
    rx.control("/slow", json!({"delay": 10, "secret": slow["secret"]}));
    rx.control("/fast", json!({"secret": fast["secret"]}));
    for n in 0..5 {
        inject_message(&g, &session, &format!("m{n}"));
    }
    // The fast target has all five before the slow one's first attempts time out (6 s).
    let got = rx.wait("/fast", 5, Duration::from_secs(5));
    assert!(got.iter().all(|d| d["verified"] == true));
    let sid = slow["id"].as_str().unwrap();
    let ok = wait_for(Duration::from_secs(20), || {
        let d = deliveries(&g, &key, sid, "&status=dead");
        d.len() == 5 && d.iter().all(|d| d["lastError"] == "timeout")
    });
    assert!(ok, "{:#?}", deliveries(&g, &key, sid, ""));
}

#[test]
fn redirects_are_not_followed_and_private_targets_are_refused() {
    let rx = Receiver::start();
    let g = webhook_gateway("");
    let key = g.key("org_ssrf", &["read", "send", "manage"]);
    let w = create(
        &g,
        &key,
        json!({"url": rx.url("/moved"), "events": ["message"], "retryPolicy": {"attempts": 1}}),
    );
    rx.control("/moved", json!({"location": rx.url("/target")}));
    let t = g.post(
        &format!("/webhooks/{}:test", w["id"].as_str().unwrap()),
        &key,
        json!({}),
    );
    assert_eq!(t.status, 200, "{}", t.text());
    assert_eq!(t.json()["status"], "dead");
    assert_eq!(t.json()["lastError"], "redirect");
    assert_eq!(t.json()["lastStatusCode"], 302);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rx.log("/target").is_empty(),
        "the redirect was not followed"
    );
    drop(g);

    // Without `allow_private_targets`: literal private addresses are refused on write,
    // names resolving to one on every attempt.
    let g = Gateway::with(Options {
        plugins: ["sessions", "webhooks"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        extra_toml: "[webhooks]\nallow_http = true\n".into(),
        ..Options::default()
    });
    let key = g.key("org_ssrf", &["manage"]);
    for url in [
        rx.url("/x"),
        "http://10.0.0.1/".into(),
        "http://169.254.169.254/latest".into(),
        "http://[::1]/".into(),
    ] {
        let r = g.post("/webhooks", &key, json!({"url": url, "events": ["*"]}));
        r.assert_error(422, "validation_error");
        assert_eq!(r.json()["error"]["details"]["field"], "url");
    }
    let w = create(
        &g,
        &key,
        json!({"url": format!("http://localhost:{}/named", rx.port), "events": ["*"]}),
    );
    let t = g.post(
        &format!("/webhooks/{}:test", w["id"].as_str().unwrap()),
        &key,
        json!({}),
    );
    assert_eq!(t.status, 200, "{}", t.text());
    assert_eq!(t.json()["status"], "dead");
    assert_eq!(t.json()["lastError"], "blocked_address");
    assert!(rx.log("/named").is_empty());
}

#[test]
fn a_webhook_failing_past_the_window_is_disabled_and_others_are_told() {
    let (rx, g, key, session) = setup("org_dis", "disable_after_ms = 0\n");
    let bad = create(
        &g,
        &key,
        json!({"url": rx.url("/down"), "events": ["message"], "retryPolicy": {"attempts": 1}}),
    );
    let watcher = create(
        &g,
        &key,
        json!({"url": rx.url("/watch"), "events": ["webhook.*"]}),
    );
    rx.control("/down", json!({"status": 500}));
    rx.control("/watch", json!({"secret": watcher["secret"]}));
    inject_message(&g, &session, "x");
    let got = rx.wait("/watch", 1, Duration::from_secs(15));
    let body: Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(got[0]["verified"], true);
    assert_eq!(body["event"], "webhook.disabled");
    assert_eq!(body["session"], Value::Null);
    assert_eq!(
        body["payload"],
        json!({"webhookId": bad["id"], "reason": "failing"})
    );
    let w = g
        .get(&format!("/webhooks/{}", bad["id"].as_str().unwrap()), &key)
        .json();
    assert_eq!(w["active"], false);
    assert_eq!(w["disabledReason"], "failing");
    // Re-enabling clears the reason.
    let r = patch(
        &g,
        &format!("/webhooks/{}", bad["id"].as_str().unwrap()),
        &key,
        json!({"active": true}),
    );
    assert_eq!(r.json()["disabledReason"], Value::Null);
    assert_eq!(r.json()["active"], true);
}

#[test]
fn a_hundred_pending_deliveries_survive_kill_9() {
    let port = free_port();
    let mut g = webhook_gateway("");
    let key = g.key("org_k9", &["read", "send", "manage"]);
    let session = g.working_session(&key);
    // Nothing listens yet: every attempt fails to connect and is retried each second.
    let w = create(
        &g,
        &key,
        json!({"url": format!("http://127.0.0.1:{port}/later"), "events": ["message"],
               "retryPolicy": {"attempts": 30, "delaySeconds": 1, "policy": "constant"}}),
    );
    let id = w["id"].as_str().unwrap().to_owned();
    for n in 0..100 {
        inject_message(&g, &session, &format!("pending {n}"));
    }
    let ok = wait_for(Duration::from_secs(30), || {
        let mut n = 0;
        let mut path = format!("/webhooks/{id}/deliveries?limit=100");
        loop {
            let page = g.get(&path, &key).json();
            n += page["data"].as_array().unwrap().len();
            match page["nextCursor"].as_str() {
                Some(c) => path = format!("/webhooks/{id}/deliveries?limit=100&cursor={c}"),
                None => break,
            }
        }
        n == 100
    });
    assert!(ok, "100 deliveries recorded");
    let one = deliveries(&g, &key, &id, "").remove(0);
    assert!(
        matches!(one["status"].as_str(), Some("pending" | "retrying")),
        "{one}"
    );
    g.kill9();

    let rx = Receiver::on_port(port);
    rx.control("/later", json!({"secret": w["secret"]}));
    g.restart_stopped();
    let got = rx.wait("/later", 100, Duration::from_secs(60));
    let ids: std::collections::BTreeSet<&str> =
        got.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(
        ids.len() >= 100,
        "every event arrived: {} distinct",
        ids.len()
    );
    assert!(got.iter().all(|d| d["verified"] == true));
    let texts: std::collections::BTreeSet<String> = got
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d["body"].as_str().unwrap()).unwrap()["payload"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts.len(), 100);
}
