//! Plugin storage: scoped per plugin and per session (or organization), committed before
//! the answer, and durable across a restart of the binary.

use crate::support::*;
use serde_json::json;

#[test]
fn sessions_and_plugins_cannot_see_each_others_keys() {
    let g = Gateway::start();
    let key = g.key("org_store", &["read", "send", "manage"]);
    let a = g.create_session(&key, json!({"label": "A"}));
    let b = g.create_session(&key, json!({"label": "B"}));

    let r = g.post(
        &format!("/sessions/{a}/notes"),
        &key,
        json!({"text": "only in A"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let note = r.json();
    let note_id = note["id"].as_str().unwrap();
    assert_eq!(note["text"], "only in A");

    // Session B sees none of A's notes.
    let r = g.get(&format!("/sessions/{b}/notes"), &key);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"data": [], "nextCursor": null}));
    g.get(&format!("/sessions/{b}/notes/{note_id}"), &key)
        .assert_error(404, "not_found");
    assert_eq!(
        g.get(&format!("/sessions/{a}/notes/{note_id}"), &key)
            .json()["text"],
        "only in A"
    );

    // Another plugin writing the very same key in the same session does not touch notes'.
    let raw_key = format!("note%2F{note_id}");
    let r = g.call(
        "PUT",
        &format!("/sessions/{a}/chaos-kv/{raw_key}"),
        &key,
        Some(json!({"text": "forged"})),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        g.get(&format!("/sessions/{a}/notes/{note_id}"), &key)
            .json()["text"],
        "only in A"
    );
    let r = g.get(&format!("/sessions/{a}/chaos-kv/{raw_key}"), &key);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["text"], "forged");
    // …and chaos cannot read a key notes wrote in its own namespace.
    let other = g
        .post(
            &format!("/sessions/{a}/notes"),
            &key,
            json!({"text": "second"}),
        )
        .json();
    let other_key = format!("note%2F{}", other["id"].as_str().unwrap());
    g.get(&format!("/sessions/{a}/chaos-kv/{other_key}"), &key)
        .assert_error(404, "not_found");
}

#[test]
fn organization_scoped_data_is_per_organization() {
    let g = Gateway::start();
    let a = g.key("org_one", &["read", "send"]);
    let b = g.key("org_two", &["read", "send"]);
    let r = g.call(
        "PUT",
        "/chaos/kv/greeting",
        &a,
        Some(json!("hello from one")),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        g.get("/chaos/kv/greeting", &a).json(),
        json!("hello from one")
    );
    g.get("/chaos/kv/greeting", &b)
        .assert_error(404, "not_found");
}

#[test]
fn data_survives_a_restart_of_the_binary() {
    let mut g = Gateway::start();
    let key = g.key("org_store", &["read", "send", "manage"]);
    let s = g.create_session(&key, json!({"label": "durable"}));
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = g.post(
            &format!("/sessions/{s}/notes"),
            &key,
            json!({"text": format!("note {i}")}),
        );
        assert_eq!(r.status, 201);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    // Notes list in id order (ULIDs: creation time, then random within a millisecond).
    ids.sort();
    let deleted = g.delete(&format!("/sessions/{s}/notes/{}", ids[0]), &key);
    assert_eq!(deleted.status, 204);
    g.delete(&format!("/sessions/{s}/notes/{}", ids[0]), &key)
        .assert_error(404, "not_found");

    g.restart();

    // The key, the session and the notes are all still there.
    let r = g.get(&format!("/sessions/{s}"), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["label"], "durable");
    let list = g.get(&format!("/sessions/{s}/notes?limit=2"), &key).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["id"], ids[1]);
    let next = list["nextCursor"].as_str().unwrap().to_owned();
    let rest = g
        .get(&format!("/sessions/{s}/notes?limit=2&cursor={next}"), &key)
        .json();
    assert_eq!(rest["data"][0]["id"], ids[3]);
    assert_eq!(rest["data"][1]["id"], ids[4]);
    // The last page says so.
    assert_eq!(rest["nextCursor"], serde_json::Value::Null);
    // A forged cursor is the caller's mistake.
    g.get(&format!("/sessions/{s}/notes?cursor=%21%21"), &key)
        .assert_error(400, "validation_error");
}

#[test]
fn deleting_a_session_removes_its_plugin_data() {
    let g = Gateway::start();
    let key = g.key("org_store", &["read", "send", "manage"]);
    let s = g.create_session(&key, json!({}));
    assert_eq!(
        g.post(&format!("/sessions/{s}/notes"), &key, json!({"text": "x"}))
            .status,
        201
    );
    assert_eq!(g.delete(&format!("/sessions/{s}"), &key).status, 204);
    g.get(&format!("/sessions/{s}/notes"), &key)
        .assert_error(404, "not_found");
    g.wait_log(|log| log.contains("session data removed") && log.contains("plugin_rows=1"));
}
