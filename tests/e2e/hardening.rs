//! The holes a hostile client finds, tried against the running binary as an attacker
//! would: invented methods that would grow the metrics without bound, connections that
//! never send a request, a plugin sleeping past its budget in a host call, cross-site
//! requests to the admin listener, loose file permissions, an empty admin token, huge
//! storage scans, and organization quotas.

use crate::support::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn host_port(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// Sends raw bytes on a fresh connection and returns whatever comes back until close.
fn raw_exchange(base: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(host_port(base)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn invented_methods_do_not_grow_the_metrics() {
    let g = Gateway::start();
    let before = g.admin_call("GET", "/metrics", None).text().len();
    for i in 0..300 {
        let method = format!("X{i}{}", "A".repeat(2000));
        let answer = raw_exchange(
            &g.api,
            format!("{method} /api/v1/chaos/ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(
            answer.starts_with("HTTP/1.1 4"),
            "{}",
            &answer[..answer.len().min(80)]
        );
    }
    let metrics = g.admin_call("GET", "/metrics", None).text();
    assert!(
        metrics.len() < before + 4096,
        "metrics grew from {before} to {} bytes",
        metrics.len()
    );
    assert!(!metrics.contains("AAAAAAAA"), "a raw method became a label");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[test]
fn connections_that_never_send_a_request_are_closed() {
    let g = Gateway::with(Options {
        header_read_timeout_ms: 1_000,
        ..Options::default()
    });
    let baseline = open_fds(g.pid());
    // A byte that could start the HTTP/2 preface, then nothing.
    let mut idle: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(host_port(&g.api)).unwrap();
            s.write_all(b"P").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    // Ordinary requests are served meanwhile.
    let key = g.key("org_idle", &["read"]);
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
    let started = Instant::now();
    for s in &mut idle {
        let mut buf = [0u8; 64];
        // The server closes: EOF (0) or a reset — never a wait past the read timeout.
        match s.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0, "the server answered a non-request"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a silent connection stayed open: {e}"
            ),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    drop(idle);
    let reaped = wait_for(Duration::from_secs(5), || open_fds(g.pid()) <= baseline + 5);
    assert!(reaped, "{} fds open, {baseline} before", open_fds(g.pid()));
}

#[test]
fn the_listener_holds_a_bounded_number_of_connections() {
    let g = Gateway::with(Options {
        header_read_timeout_ms: 1_000,
        limits_toml: "max_connections = 8".into(),
        ..Options::default()
    });
    let key = g.key("org_cap", &["read"]);
    let _silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(host_port(&g.api)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let pid = g.pid();
    let fds = open_fds(pid);
    // More connections wait in the accept queue, not in the gateway's descriptors.
    let _queued: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(host_port(&g.api)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(open_fds(pid) <= fds + 2, "{} > {fds}", open_fds(pid));
    // Once the silent ones are dropped for saying nothing, a real request gets through.
    let started = Instant::now();
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn a_client_that_never_reads_its_answers_is_cut_off() {
    let g = Gateway::with(Options {
        max_body_bytes: 2 << 20,
        limits_toml: "write_timeout_ms = 1000".into(),
        ..Options::default()
    });
    let key = g.key("org_slow_reader", &["read", "send"]);
    let big = vec![b'z'; 1 << 20];
    let r = request(
        &format!("{}/api/v1/chaos/kv/big", g.api),
        "PUT",
        &[("authorization", &format!("Bearer {key}"))],
        Some(big),
    );
    assert_eq!(r.status, 204);
    let baseline = open_fds(g.pid());
    // 32 pipelined requests for 1 MiB each, and the client never reads.
    let mut s = TcpStream::connect(host_port(&g.api)).unwrap();
    let one = format!(
        "GET /api/v1/chaos/kv/big HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\r\n"
    );
    for _ in 0..32 {
        s.write_all(one.as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        open_fds(g.pid()) > baseline,
        "the connection should be open while writing"
    );
    let closed = wait_for(Duration::from_secs(6), || open_fds(g.pid()) <= baseline);
    assert!(
        closed,
        "a stalled write kept the connection: {} fds",
        open_fds(g.pid())
    );
    drop(s);
}

#[test]
fn a_plugin_sleeping_in_a_host_call_is_stopped_at_its_budget() {
    let g = Gateway::with(Options {
        plugin_timeout_ms: 300,
        ..Options::default()
    });
    let key = g.key("org_sleep", &["read"]);
    let started = Instant::now();
    let r = g.get("/chaos/slow-version?ms=1500", &key);
    let took = started.elapsed();
    r.assert_error(500, "internal");
    assert!(
        took < Duration::from_millis(1_000),
        "answered after {took:?}"
    );
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
    let metrics = g.admin_call("GET", "/metrics", None).text();
    assert!(
        metrics.contains("gateway_plugin_faults_total{plugin=\"chaos\",kind=\"timeout\"}"),
        "{metrics}"
    );
}

#[test]
fn the_admin_listener_refuses_what_a_browser_would_send() {
    let g = Gateway::start();
    let admin = &g.admin;
    let body = r#"{"organization":"org_csrf","name":"x","permissions":["read","send","manage"]}"#;
    let post = |headers: &[(&str, &str)]| {
        request(
            &format!("{admin}/admin/api-keys"),
            "POST",
            headers,
            Some(body.as_bytes().to_vec()),
        )
    };
    // A cross-site form post: text/plain, a foreign Origin.
    post(&[
        ("content-type", "text/plain"),
        ("origin", "http://evil.example"),
    ])
    .assert_error(403, "forbidden");
    // JSON from a web page is refused too.
    post(&[
        ("content-type", "application/json"),
        ("origin", "http://evil.example"),
    ])
    .assert_error(403, "forbidden");
    // DNS rebinding: the attacker's name resolving to 127.0.0.1.
    let rebound = raw_exchange(
        admin,
        format!(
            "POST /admin/api-keys HTTP/1.1\r\nhost: evil.example:8081\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("\"forbidden\""), "{rebound}");
    // No Origin, but not JSON.
    let r = post(&[("content-type", "text/plain")]);
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "validation_error");
    // What the CLI sends works.
    let ok = post(&[("content-type", "application/json")]);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert!(ok.json()["secret"].as_str().unwrap().starts_with("wa_"));
    // Probes stay plain.
    assert_eq!(g.admin_call("GET", "/healthz", None).status, 200);
}

#[cfg(unix)]
#[test]
fn the_database_is_readable_by_the_gateway_only() {
    use std::os::unix::fs::PermissionsExt;
    let g = Gateway::start();
    let data = g.dir.path().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("gateway.redb")), 0o600);
}

#[test]
fn an_empty_or_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    for (toml, env) in [
        ("[admin]\ntoken = \"\"\n", None),
        ("[admin]\ntoken = \"short\"\n", None),
        ("", Some("")),
    ] {
        std::fs::write(
            &config,
            format!(
                "{toml}[storage]\ndata_dir = {:?}\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
        cmd.args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("RUST_LOG");
        if let Some(v) = env {
            cmd.env("GATEWAY_ADMIN__TOKEN", v);
        }
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "started with admin token {toml:?}/{env:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("admin.token must be at least 16"), "{err}");
    }
}

#[test]
fn a_scan_of_many_large_values_is_read_in_bounded_calls() {
    let g = Gateway::start();
    let key = g.key("org_scan", &["read", "send"]);
    // 6 MiB in all: more than one host scan answers at once (4 MiB).
    let r = g.call("PUT", "/chaos/kv-fill?n=6&size=1048576", &key, None);
    assert_eq!(r.status, 200, "{}", r.text());
    // One host call may not answer 6 MiB: the host refuses it before holding the rows…
    let raw = g.get("/chaos/kv-scan?raw=true", &key);
    raw.assert_error(400, "validation_error");
    assert!(
        raw.text().contains("larger than the host returns at once"),
        "{}",
        raw.text()
    );
    // …and the SDK reads the same entries in smaller calls.
    let scanned = g.get("/chaos/kv-scan", &key);
    assert_eq!(scanned.status, 200, "{}", scanned.text());
    assert_eq!(scanned.json()["entries"], 6);
    assert_eq!(scanned.json()["bytes"], 6 << 20);
}

#[test]
fn organizations_meet_their_quotas() {
    let g = Gateway::with(Options {
        extra_toml: "[quotas]\nmax_sessions_per_org = 2\nmax_api_keys_per_org = 3\nmax_stored_bytes_per_org = 300000\n".into(),
        ..Options::default()
    });
    let key = g.key("org_quota", &["read", "send", "manage"]);
    g.create_session(&key, json!({}));
    g.create_session(&key, json!({}));
    let third = g.post("/sessions", &key, json!({}));
    third.assert_error(409, "conflict");
    assert!(
        third.text().contains("max_sessions_per_org"),
        "{}",
        third.text()
    );
    // Another organization is not affected.
    let other = g.key("org_other", &["manage"]);
    assert_eq!(g.post("/sessions", &other, json!({})).status, 201);

    g.key("org_quota", &["read"]);
    g.key("org_quota", &["read"]);
    let r = g.admin_call(
        "POST",
        "/admin/api-keys",
        Some(json!({"organization": "org_quota", "name": "one too many", "permissions": ["read"]})),
    );
    r.assert_error(409, "conflict");
    assert_eq!(r.json()["error"]["details"]["reason"], "quota_exceeded");

    // 100 KB values: the third passes 300 KB with the keys' bytes.
    let fill = |n: u32| {
        g.call(
            "PUT",
            &format!("/chaos/kv-fill?n={n}&size=100000"),
            &key,
            None,
        )
    };
    assert_eq!(fill(2).status, 200);
    let over = fill(3);
    over.assert_error(409, "conflict");
    assert_eq!(over.json()["error"]["details"]["reason"], "quota_exceeded");
    // Rewriting what is stored with less is always allowed.
    assert_eq!(
        g.call("PUT", "/chaos/kv-fill?n=2&size=10", &key, None)
            .status,
        200
    );
}

#[test]
fn a_plugins_internal_error_text_stays_in_the_log() {
    let g = Gateway::start();
    let key = g.key("org_internal", &["read"]);
    let r = g.get("/chaos/internal", &key);
    r.assert_error(500, "internal");
    let text = r.text();
    assert!(!text.contains("secret") && !text.contains("redb"), "{text}");
    let request_id = r.json()["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = g.wait_log(|l| l.contains("/var/lib/secret"));
    assert!(
        log.lines()
            .any(|l| l.contains("/var/lib/secret") && l.contains(&request_id)),
        "the detail is logged with the request id"
    );
}

#[test]
fn one_session_flooding_events_is_bounded_and_delays_no_other() {
    let g = Gateway::with(Options {
        extra_toml: "[events]\nmax_queued_per_session = 200\n".into(),
        ..Options::default()
    });
    let key = g.key("org_flood", &["read", "send", "manage"]);
    let loud = g.working_session(&key);
    let quiet = g.working_session(&key);
    let inject = |s: &str, event: &str, n: u32| {
        g.admin_call(
            "POST",
            &format!("/sandbox/sessions/{s}/events"),
            Some(json!({"event": event, "payload": {
                "id": format!("m{n}"), "chat": "6281234567890@s.whatsapp.net",
                "sender": format!("{}@lid", 1000 + n), "senderLid": format!("{}@lid", 1000 + n),
                "fromMe": false, "isGroup": false, "pushName": format!("Flooder {n}"),
                "timestamp": 1719662400000u64, "type": "text", "text": "hi"}})),
        )
    };
    // The loud session's queue fills: the bound answers 503, nothing grows without limit.
    let mut refusal = None;
    for n in 0..2_000 {
        let r = inject(&loud, "message", n);
        match r.status {
            200 => {}
            503 => {
                refusal = Some(r);
                break;
            }
            other => panic!("inject answered {other}: {}", r.text()),
        }
    }
    let refusal = refusal.expect("2000 events never filled a 200-event queue");
    refusal.assert_error(503, "unavailable");
    // Meanwhile the quiet session's one event reaches its subscriber at once.
    let started = Instant::now();
    assert_eq!(inject(&quiet, "auth.qr", 0).status, 200);
    let delivered = wait_for(Duration::from_secs(3), || {
        g.get(&format!("/sessions/{quiet}/chaos-events"), &key)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "auth.qr" && e["payload"]["id"] == "m0")
    });
    assert!(
        delivered,
        "the quiet session's event waited behind the flood ({:?})",
        started.elapsed()
    );
}
