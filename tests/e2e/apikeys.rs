//! API-key authentication (API.md §1.1): missing, unknown, revoked → 401; a key without
//! the route's capability → 403; both header forms; keys minted and revoked with the CLI.

use crate::support::*;
use serde_json::json;
use std::process::Command;

fn cli(g: &Gateway, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(g.config_path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_unknown_and_malformed_keys_are_401() {
    let g = Gateway::start();
    g.raw("GET", "/api/v1/chaos/ok", &[], None)
        .assert_error(401, "unauthorized");
    g.get("/chaos/ok", "wa_thisKeyDoesNotExist")
        .assert_error(401, "unauthorized");
    for header in [
        ("x-api-key", "wa_nope"),
        ("authorization", "Basic dXNlcjpwYXNz"),
        ("authorization", "Bearer "),
    ] {
        g.raw("GET", "/api/v1/chaos/ok", &[header], None)
            .assert_error(401, "unauthorized");
    }
}

#[test]
fn both_header_forms_authenticate() {
    let g = Gateway::start();
    let key = g.key("org_keys", &["read"]);
    let bearer = format!("Bearer {key}");
    assert_eq!(
        g.raw(
            "GET",
            "/api/v1/chaos/ok",
            &[("authorization", &bearer)],
            None
        )
        .status,
        200
    );
    assert_eq!(
        g.raw("GET", "/api/v1/chaos/ok", &[("x-api-key", &key)], None)
            .status,
        200
    );
    // Scheme names are case-insensitive.
    let lower = format!("bearer {key}");
    assert_eq!(
        g.raw(
            "GET",
            "/api/v1/chaos/ok",
            &[("authorization", &lower)],
            None
        )
        .status,
        200
    );
}

#[test]
fn a_key_without_the_capability_is_403() {
    let g = Gateway::start();
    let read = g.key("org_keys", &["read"]);
    let manage = g.key("org_keys", &["manage"]);
    let s = g.create_session(&manage, json!({}));
    // Creating a note needs `send`.
    let r = g.post(&format!("/sessions/{s}/notes"), &read, json!({"text": "x"}));
    r.assert_error(403, "forbidden");
    assert_eq!(r.json()["error"]["details"]["required"], "send");
    // Sessions need `manage`; a read key is refused even for a GET.
    g.get("/sessions", &read).assert_error(403, "forbidden");
    // `manage` does not imply `read`.
    g.get(&format!("/sessions/{s}/notes"), &manage)
        .assert_error(403, "forbidden");
}

#[test]
fn cli_creates_lists_and_revokes_keys_while_the_gateway_runs() {
    let g = Gateway::start();
    let (ok, out, err) = cli(
        &g,
        &[
            "apikey",
            "create",
            "--org",
            "org_cli",
            "--name",
            "ci",
            "--permissions",
            "read,send",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("wa_"));
    assert_eq!(g.get("/chaos/ok", &secret).status, 200);

    let (ok, out, _) = cli(&g, &["apikey", "list", "--org", "org_cli"]);
    assert!(ok);
    assert!(out.contains(&id) && out.contains("read,send"), "{out}");
    assert!(!out.contains(&secret), "list must never show secrets");

    let (ok, _, err) = cli(&g, &["apikey", "revoke", &id]);
    assert!(ok, "{err}");
    g.get("/chaos/ok", &secret)
        .assert_error(401, "unauthorized");
    let (ok, _, _) = cli(&g, &["apikey", "revoke", &id]);
    assert!(!ok, "revoking twice must fail");
}

#[test]
fn cli_works_on_a_stopped_gateway_and_keys_survive_restart() {
    let mut g = Gateway::start();
    assert!(g.stop());
    let (ok, out, err) = cli(
        &g,
        &[
            "apikey",
            "create",
            "--org",
            "org_cli",
            "--name",
            "offline",
            "--permissions",
            "read",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let secret = serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    g.restart_stopped();
    assert_eq!(g.get("/chaos/ok", &secret).status, 200);
    let (ok, _, err) = cli(&g, &["apikey", "create", "--org", "bad org", "--name", "x"]);
    assert!(!ok);
    assert!(err.contains("organization id"), "{err}");
}
