//! The HTTP server's own guarantees: slow clients are cut off (a slow head is dropped, a
//! slow body gets 408 in the envelope), SIGTERM lets requests in flight finish, and signals
//! are handled from the moment the gateway announces itself.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(g: &Gateway) -> String {
    g.api.trim_start_matches("http://").to_owned()
}

#[test]
fn a_request_head_that_never_completes_is_dropped() {
    let g = Gateway::with(Options {
        header_read_timeout_ms: 500,
        ..Options::default()
    });
    let mut s = TcpStream::connect(addr(&g)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/v1/chaos/ok HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    // The gateway still serves others.
    let key = g.key("org_slow", &["read"]);
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
}

#[test]
fn a_body_that_never_arrives_gets_408() {
    let g = Gateway::with(Options {
        body_read_timeout_ms: 500,
        ..Options::default()
    });
    let key = g.key("org_slow", &["read", "send", "manage"]);
    let id = g.create_session(&key, serde_json::json!({}));
    let mut s = TcpStream::connect(addr(&g)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /api/v1/sessions/{id}/notes HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-length: 100\r\n\r\n{{\"text\":"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"request_timeout\"") && answer.contains("x-request-id"),
        "{answer}"
    );
    // Nothing was stored.
    assert_eq!(
        g.get(&format!("/sessions/{id}/notes"), &key).json()["data"],
        serde_json::json!([])
    );
}

#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let mut g = Gateway::start();
    let key = g.key("org_term", &["read"]);
    let api = g.api.clone();
    let k = key.clone();
    let slow = std::thread::spawn(move || {
        request(
            &format!("{api}/api/v1/chaos/slow-version?ms=1500"),
            "GET",
            &[("authorization", &format!("Bearer {k}"))],
            None,
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert!(g.stop(), "the gateway exits cleanly");
    let r = slow.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], "1.0.0");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "exited before the request finished"
    );
    // It no longer accepts connections.
    assert!(TcpStream::connect(addr(&g)).is_err());
    g.wait_log(|log| log.contains("stopped"));
}

/// Regression: signal handlers used to be registered after the `listening` lines, so a
/// SIGTERM or SIGHUP sent right after them killed the process (exit by signal, no drain).
#[test]
fn signals_sent_as_soon_as_it_listens_are_handled() {
    let mut g = Gateway::start();
    let key = g.key("org_signals", &["read"]);
    for round in 0..40 {
        g.restart();
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &g.pid().to_string()])
            .status()
            .unwrap();
        assert!(hup.success());
        let r = g.get("/chaos/ok", &key);
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert_eq!(r.json()["ok"], true);
    }
    for round in 0..40 {
        assert!(
            g.stop(),
            "round {round}: SIGTERM right after start; log:\n{}",
            g.log()
        );
        g.restart_stopped();
    }
    assert!(g.stop(), "log:\n{}", g.log());
    let sighups = g.log().matches("SIGHUP: reloading plugins").count();
    assert_eq!(sighups, 40, "every SIGHUP reloads; log:\n{}", g.log());
}
