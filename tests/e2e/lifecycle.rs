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

/// Sends `request` on `s` and reads one answer: its head (lower-cased) and its body.
fn exchange(s: &mut TcpStream, request: &[u8]) -> (String, String) {
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before a whole answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let head = head.to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return (head, body.to_owned());
            }
        }
    }
}

#[test]
fn an_error_before_the_body_is_read_closes_the_connection_and_says_so() {
    let g = Gateway::start();
    let key = g.key("org_conn", &["read"]);
    let mut s = TcpStream::connect(addr(&g)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    // Errors on bodiless requests keep the connection: a 401 and then a 200 on one socket.
    let (head, body) = exchange(
        &mut s,
        b"GET /api/v1/chaos/ok HTTP/1.1\r\nhost: x\r\nx-api-key: wa_bogus\r\n\r\n",
    );
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    let env: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["error"]["code"], "unauthorized");
    let (head, body) = exchange(
        &mut s,
        format!("GET /api/v1/chaos/ok HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n\r\n").as_bytes(),
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ok"],
        true
    );

    // A refused request whose body was never read: the answer says `connection: close`
    // and the gateway then closes, so no client sends its next request into it.
    refused_then_closed(
        &mut s,
        b"POST /api/v1/sessions HTTP/1.1\r\nhost: x\r\nx-api-key: wa_bogus\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"partial\":",
        "401",
        "unauthorized",
    );
    // The same for a body declared over the limit (413, answered before reading it).
    let mut s = TcpStream::connect(addr(&g)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let too_big = g.options.max_body_bytes + 1;
    refused_then_closed(
        &mut s,
        format!("POST /api/v1/sessions HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-length: {too_big}\r\n\r\n{{").as_bytes(),
        "413",
        "payload_too_large",
    );

    // The gateway itself is fine.
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
}

/// Sends `request`, expects an error `status` with envelope `code` and `connection: close`,
/// then the end of the connection.
fn refused_then_closed(s: &mut TcpStream, request: &[u8], status: &str, code: &str) {
    let (head, body) = exchange(s, request);
    assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let env: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["error"]["code"], code, "{body}");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing follows the answer");
}
