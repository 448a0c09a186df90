//! Routing: path parameters, colon custom methods, percent-encoded JIDs, static segments
//! beating parameters, and the 404/405/413/431 envelopes.

use crate::support::*;
use serde_json::json;

#[test]
fn params_custom_methods_and_encoded_jids() {
    let g = Gateway::start();
    let key = g.key("org_route", &["read"]);

    let r = g.get("/chaos/echo/14155550123%40s.whatsapp.net", &key);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["value"], "14155550123@s.whatsapp.net");
    assert_eq!(v["route"], "/chaos/echo/{value}");
    assert_eq!(v["path"], "/chaos/echo/14155550123%40s.whatsapp.net");

    // Raw '@' works too.
    let r = g.get("/chaos/echo/205227043110953@lid", &key);
    assert_eq!(r.json()["value"], "205227043110953@lid");

    // A static segment beats the parameter beside it.
    let r = g.get("/chaos/echo/static", &key);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"static": true}));

    // A colon custom method on the last segment.
    let r = g.post("/chaos/echo/abc%40lid:shout", &key, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["value"], "ABC@LID");

    // Query values are decoded and passed in order.
    let r = g.get("/chaos/echo/x?b=2&a=%40one+two", &key);
    assert_eq!(r.json()["query"], json!([["b", "2"], ["a", "@one two"]]));

    // Invalid UTF-8 in a parameter is the caller's mistake.
    g.get("/chaos/echo/%FF%FE", &key)
        .assert_error(400, "validation_error");
}

#[test]
fn sessions_custom_methods_route_to_the_sessions_plugin() {
    let g = Gateway::start();
    let key = g.key("org_route", &["manage"]);
    let id = g.create_session(&key, json!({"label": "colon"}));
    let r = g.post(&format!("/sessions/{id}:stop"), &key, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id);
    assert_eq!(r.json()["status"], "stopped");
    // An unknown custom method is not the bare-parameter route.
    g.post(&format!("/sessions/{id}:explode"), &key, json!({}))
        .assert_error(404, "not_found");
}

#[test]
fn unknown_routes_and_wrong_methods_are_envelopes() {
    let g = Gateway::start();
    let key = g.key("org_route", &["read", "send", "manage"]);
    let r = g.get("/no/such/route", &key);
    r.assert_error(404, "not_found");
    // Outside /api/v1.
    g.raw("GET", "/nothing-here", &[], None)
        .assert_error(404, "not_found");
    // Unknown route without credentials: still 404 (routes are public in OpenAPI).
    g.raw("GET", "/api/v1/no/such/route", &[], None)
        .assert_error(404, "not_found");

    let r = g.call("PUT", "/chaos/ok", &key, Some(json!({})));
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.json()["error"]["details"]["allow"], json!(["GET"]));

    let r = g.call("PATCH", "/sessions", &key, Some(json!({})));
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));
}

#[test]
fn request_ids_are_echoed_or_minted() {
    let g = Gateway::start();
    let key = g.key("org_route", &["read"]);
    let auth = format!("Bearer {key}");
    let r = g.raw(
        "GET",
        "/api/v1/chaos/ok",
        &[("authorization", &auth), ("x-request-id", "trace-123")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("trace-123"));
    let r = g.raw(
        "GET",
        "/api/v1/chaos/ok",
        &[
            ("authorization", &auth),
            ("x-request-id", "bad id with spaces"),
        ],
        None,
    );
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    let r = g.raw("GET", "/api/v1/nope", &[], None);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
}

#[test]
fn oversized_bodies_and_headers_get_envelopes() {
    let g = Gateway::start();
    let key = g.key("org_route", &["read", "send", "manage"]);
    let id = g.create_session(&key, json!({}));
    let limit = g.options.max_body_bytes as usize;
    let auth = format!("Bearer {key}");
    let path = format!("/api/v1/sessions/{id}/notes");

    // Declared too large: refused before reading.
    let big = vec![b'a'; limit + 1];
    let r = g.raw(
        "POST",
        &path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(big),
    );
    r.assert_error(413, "payload_too_large");
    assert_eq!(r.json()["error"]["details"]["maxBytes"], limit as u64);

    // Exactly at the limit is read (and then judged by the plugin).
    let text = "b".repeat(limit - 20);
    let body = serde_json::to_vec(&json!({"text": text})).unwrap();
    assert!(body.len() <= limit);
    let r = g.raw("POST", &path, &[("authorization", &auth)], Some(body));
    r.assert_error(400, "validation_error");
    assert_eq!(r.json()["error"]["details"]["field"], "text");

    // A head over the header limit: 431 in the envelope, not a dropped connection.
    let huge = "x".repeat(20 * 1024);
    let r = g.raw(
        "GET",
        "/api/v1/chaos/ok",
        &[("authorization", &auth), ("x-padding", &huge)],
        None,
    );
    r.assert_error(431, "payload_too_large");

    // The gateway is fine afterwards.
    assert_eq!(g.get("/chaos/ok", &key).status, 200);
}

#[test]
fn chunked_bodies_over_the_limit_are_refused() {
    use std::io::{Read, Write};
    let g = Gateway::start();
    let key = g.key("org_route", &["send", "manage"]);
    let id = g.create_session(&key, json!({}));
    let addr = g.api.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let limit = g.options.max_body_bytes as usize;
    write!(
        s,
        "POST /api/v1/sessions/{id}/notes HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'z'; 8192];
    for _ in 0..(limit / 8192 + 2) {
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(out.contains("\"payload_too_large\""), "{out}");
}
