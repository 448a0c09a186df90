//! The `labels` plugin, written in JavaScript (plugins/labels-js): every route with its
//! answers and errors, tenancy, a hot reload, the grant check at load, and faults inside a
//! JS component (tests/plugins/chaos-js) confined to their request.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn labels_gateway() -> Gateway {
    Gateway::with(Options {
        plugins: vec!["sessions".into(), "labels".into()],
        ..Options::default()
    })
}

fn patch(g: &Gateway, path: &str, key: &str, body: Value) -> Resp {
    g.call("PATCH", path, key, Some(body))
}

/// Creates a label and returns it.
fn create(g: &Gateway, key: &str, name: &str) -> Value {
    let r = g.post("/labels", key, json!({ "name": name }));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// Every item of a cursor list, walking it `limit` at a time.
fn walk(g: &Gateway, path: &str, key: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = g.get(&url, key);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let page = r.json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit as usize);
        out.extend(data.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(page["nextCursor"].is_null());
                return out;
            }
        }
    }
    panic!("{path} never ended");
}

#[test]
fn labels_create_rename_delete_list_with_envelope_errors() {
    let g = labels_gateway();
    let key = g.key("org_lab", &["read", "send", "manage"]);
    let reader = g.key("org_lab", &["read"]);
    let other = g.key("org_other", &["read", "send", "manage"]);

    // Create.
    let r = g.post(
        "/labels",
        &key,
        json!({"name": "  VIP ", "color": "#FF8800"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let vip = r.json();
    let id = vip["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("lbl_") && id.len() == 30, "{id}");
    assert_eq!(vip["name"], "VIP");
    assert_eq!(vip["color"], "#FF8800");
    assert!(vip["createdBy"].as_str().unwrap().starts_with("apikey:"));
    assert!(vip["createdAt"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(g.get(&format!("/labels/{id}"), &key).json(), vip);

    // Names are unique in the organization, whatever their case.
    let dup = g.post("/labels", &key, json!({"name": "vip"}));
    dup.assert_error(409, "conflict");
    assert_eq!(dup.json()["error"]["details"]["field"], "name");
    assert_eq!(dup.json()["error"]["details"]["label"], id.as_str());

    // Bad bodies: 400 naming the field, never a 500.
    for (body, field) in [
        (json!({"name": "   "}), "name"),
        (json!({}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "ok", "color": "red"}), "color"),
        (json!({"name": "ok", "colour": "#000000"}), "colour"),
    ] {
        let r = g.post("/labels", &key, body.clone());
        r.assert_error(400, "validation_error");
        assert_eq!(r.json()["error"]["details"]["field"], field, "{body}");
    }
    let auth = format!("Bearer {key}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    g.raw(
        "POST",
        "/api/v1/labels",
        &headers,
        Some(b"{\"name\":".to_vec()),
    )
    .assert_error(400, "validation_error");
    g.raw("POST", "/api/v1/labels", &headers, Some(b"[1,2]".to_vec()))
        .assert_error(400, "validation_error");
    g.raw("POST", "/api/v1/labels", &headers, Some(vec![0xff, 0xfe]))
        .assert_error(400, "validation_error");

    // Capabilities: reading needs `read`, writing `send`.
    g.post("/labels", &reader, json!({"name": "nope"}))
        .assert_error(403, "forbidden");
    assert_eq!(g.get(&format!("/labels/{id}"), &reader).status, 200);

    // Unknown or malformed ids are 404.
    g.get("/labels/lbl_01J9ZX8K2QHV0M3T6R7P4N5W8C", &key)
        .assert_error(404, "not_found");
    g.get("/labels/whatever", &key)
        .assert_error(404, "not_found");
    let long = "x".repeat(3000);
    g.get(&format!("/labels/{long}"), &key)
        .assert_error(404, "not_found");

    // Rename, recolor; the old name is free again, a taken one is refused.
    let r = patch(&g, &format!("/labels/{id}"), &key, json!({"name": "Gold"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let gold = r.json();
    assert_eq!(gold["name"], "Gold");
    assert_eq!(gold["color"], "#FF8800");
    assert_eq!(gold["createdAt"], vip["createdAt"]);
    assert!(gold["updatedAt"].as_u64() >= vip["updatedAt"].as_u64());
    let again = create(&g, &key, "VIP");
    patch(&g, &format!("/labels/{id}"), &key, json!({"name": "vip"})).assert_error(409, "conflict");
    // Same name in another case: a rename of itself, not a conflict.
    let r = patch(
        &g,
        &format!("/labels/{id}"),
        &key,
        json!({"name": "GOLD", "color": null}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "GOLD");
    assert_eq!(r.json()["color"], Value::Null);
    patch(&g, &format!("/labels/{id}"), &key, json!({"title": "x"}))
        .assert_error(400, "validation_error");
    patch(
        &g,
        "/labels/lbl_01J9ZX8K2QHV0M3T6R7P4N5W8C",
        &key,
        json!({"name": "x"}),
    )
    .assert_error(404, "not_found");

    // Paging: every label once, in creation order; bad paging input is 400.
    let mut made = vec![id.clone(), again["id"].as_str().unwrap().to_owned()];
    for i in 0..5 {
        made.push(
            create(&g, &key, &format!("L{i}"))["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for limit in [1, 2, 3, 7, 50] {
        let ids: Vec<String> = walk(&g, "/labels", &key, limit)
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, made, "limit {limit}");
    }
    let first = g.get("/labels?limit=0", &key).json();
    assert_eq!(first["data"].as_array().unwrap().len(), 7);
    assert!(first["nextCursor"].is_null());
    let big = g.get("/labels?limit=100000", &key);
    assert_eq!(big.status, 200);
    g.get("/labels?limit=ten", &key)
        .assert_error(400, "validation_error");
    let bad = g.get("/labels?cursor=not-a-cursor!", &key);
    bad.assert_error(400, "validation_error");
    assert_eq!(bad.json()["error"]["details"]["field"], "cursor");
    g.get("/labels?cursor=AA", &key)
        .assert_error(400, "validation_error");

    // Tenancy: another organization sees none of it and can touch none of it.
    let theirs = g.get("/labels", &other).json();
    assert_eq!(theirs["data"], json!([]));
    g.get(&format!("/labels/{id}"), &other)
        .assert_error(404, "not_found");
    patch(
        &g,
        &format!("/labels/{id}"),
        &other,
        json!({"name": "mine"}),
    )
    .assert_error(404, "not_found");
    g.delete(&format!("/labels/{id}"), &other)
        .assert_error(404, "not_found");
    // Names are per organization.
    assert_eq!(create(&g, &other, "GOLD")["name"], "GOLD");

    // Delete.
    let r = g.delete(&format!("/labels/{id}"), &key);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    g.get(&format!("/labels/{id}"), &key)
        .assert_error(404, "not_found");
    g.delete(&format!("/labels/{id}"), &key)
        .assert_error(404, "not_found");
    let left: Vec<Value> = walk(&g, "/labels", &key, 50);
    assert_eq!(left.len(), 6);
    assert!(left.iter().all(|l| l["id"] != id.as_str()));
    // Its name is free.
    create(&g, &key, "gold");
    // The other organization's label is untouched.
    assert_eq!(
        g.get("/labels", &other).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn labels_on_chats_and_contacts_of_the_organizations_sessions() {
    let g = labels_gateway();
    let key = g.key("org_lab", &["read", "send", "manage"]);
    let other = g.key("org_other", &["read", "send", "manage"]);
    let s1 = g.create_session(&key, json!({"label": "one"}));
    let s2 = g.create_session(&key, json!({"label": "two"}));
    let foreign = g.create_session(&other, json!({}));
    let label = create(&g, &key, "Leads")["id"].as_str().unwrap().to_owned();
    let items = format!("/labels/{label}/items");
    let remove = format!("/labels/{label}/items:remove");
    let target = |s: &str, kind: &str, jid: &str| json!({"sessionId": s, "kind": kind, "jid": jid});

    // Label: idempotent, answers the item.
    let r = g.post(
        &items,
        &key,
        target(&s1, "chat", "14155550123@s.whatsapp.net"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let item = r.json();
    assert_eq!(item["labelId"], label.as_str());
    assert_eq!(item["sessionId"], s1.as_str());
    assert_eq!(item["kind"], "chat");
    assert_eq!(item["jid"], "14155550123@s.whatsapp.net");
    assert!(item["attachedBy"].as_str().unwrap().starts_with("apikey:"));
    // The same chat with a device part and the old server name, the session id in lower
    // case: one item.
    let r = g.post(
        &items,
        &key,
        target(&s1.to_lowercase(), "chat", " 14155550123:7@c.us "),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), item);
    // A group chat, a LID contact, and the same chat on the other session.
    for (s, kind, jid) in [
        (&s1, "chat", "120363021234567890@g.us"),
        (&s1, "contact", "205227043110953@lid"),
        (&s2, "chat", "14155550123@s.whatsapp.net"),
    ] {
        let r = g.post(&items, &key, target(s, kind, jid));
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // Bad input is 400 naming the field; a group is a chat, not a contact.
    for (body, field) in [
        (target(&s1, "chat", "not-a-jid"), "jid"),
        (target(&s1, "chat", "123@example.com"), "jid"),
        (target(&s1, "chat", "abc@s.whatsapp.net"), "jid"),
        (target(&s1, "chat", "status@broadcast"), "jid"),
        (target(&s1, "contact", "120363021234567890@g.us"), "jid"),
        (target(&s1, "group", "120363021234567890@g.us"), "kind"),
        (json!({"sessionId": s1, "kind": "chat"}), "jid"),
        (
            json!({"kind": "chat", "jid": "14155550123@s.whatsapp.net"}),
            "sessionId",
        ),
        (
            json!({"sessionId": 7, "kind": "chat", "jid": "14155550123@s.whatsapp.net"}),
            "sessionId",
        ),
        (
            json!({"sessionId": s1, "kind": "chat", "jid": "14155550123@s.whatsapp.net", "x": 1}),
            "x",
        ),
    ] {
        let r = g.post(&items, &key, body.clone());
        r.assert_error(400, "validation_error");
        assert_eq!(r.json()["error"]["details"]["field"], field, "{body}");
    }
    // Sessions of another organization, and unknown ones, are 404 — never 403.
    for s in [foreign.as_str(), "01J9ZX8K2QHV0M3T6R7P4N5W8C", "nope"] {
        let r = g.post(
            &items,
            &key,
            target(s, "chat", "14155550123@s.whatsapp.net"),
        );
        r.assert_error(404, "not_found");
        assert_eq!(r.json()["error"]["message"], "session not found");
    }
    // An unknown label; another organization's label, even with its own session.
    let ghost = "/labels/lbl_01J9ZX8K2QHV0M3T6R7P4N5W8C/items";
    g.post(
        ghost,
        &key,
        target(&s1, "chat", "14155550123@s.whatsapp.net"),
    )
    .assert_error(404, "not_found");
    g.post(
        &items,
        &other,
        target(&foreign, "chat", "14155550123@s.whatsapp.net"),
    )
    .assert_error(404, "not_found");
    // Capabilities.
    let reader = g.key("org_lab", &["read"]);
    g.post(
        &items,
        &reader,
        target(&s1, "chat", "14155550999@s.whatsapp.net"),
    )
    .assert_error(403, "forbidden");

    // What carries the label: every item once, by session, kind and JID; filters.
    let all = walk(&g, &items, &key, 1);
    assert_eq!(all.len(), 4, "{all:?}");
    let keys: BTreeSet<(String, String, String)> = all
        .iter()
        .map(|i| {
            (
                i["sessionId"].as_str().unwrap().to_owned(),
                i["kind"].as_str().unwrap().to_owned(),
                i["jid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(walk(&g, &items, &key, 3), all);
    assert_eq!(walk(&g, &items, &reader, 50), all);
    let contacts = walk(&g, &format!("{items}?kind=contact"), &key, 50);
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["jid"], "205227043110953@lid");
    let s1_chats = walk(&g, &format!("{items}?kind=chat&session={s1}"), &key, 1);
    assert_eq!(s1_chats.len(), 2);
    assert_eq!(
        walk(&g, &format!("{items}?session={s2}"), &key, 50).len(),
        1
    );
    g.get(&format!("{items}?kind=group"), &key)
        .assert_error(400, "validation_error");
    g.get(&format!("{items}?session=bad"), &key)
        .assert_error(400, "validation_error");
    g.get(&format!("{items}?cursor=%25%25"), &key)
        .assert_error(400, "validation_error");
    g.get(&items, &other).assert_error(404, "not_found");
    g.get(ghost, &key).assert_error(404, "not_found");

    // Unlabel: 204, and again 204 (idempotent); another organization's label is 404; the
    // rest stays.
    let chat = target(&s1, "chat", "14155550123@s.whatsapp.net");
    let r = g.post(&remove, &key, chat.clone());
    assert_eq!(r.status, 204, "{}", r.text());
    let r = g.post(&remove, &key, chat);
    assert_eq!(r.status, 204, "{}", r.text());
    let lid = target(&s1, "contact", "205227043110953@lid");
    g.post(&remove, &other, lid.clone())
        .assert_error(404, "not_found");
    g.post(&remove, &key, target(&s1, "contact", "bad"))
        .assert_error(400, "validation_error");
    let r = g.post(
        &remove,
        &key,
        target("not-a-session", "contact", "205227043110953@lid"),
    );
    r.assert_error(400, "validation_error");
    assert_eq!(
        r.json()["error"]["details"]["field"],
        "sessionId",
        "{}",
        r.text()
    );
    assert_eq!(g.post(&remove, &key, lid).status, 204);
    assert_eq!(walk(&g, &items, &key, 50).len(), 2);

    // Deleting the label takes it off everything; a new label starts empty.
    assert_eq!(g.delete(&format!("/labels/{label}"), &key).status, 204);
    g.get(&items, &key).assert_error(404, "not_found");
    let fresh = create(&g, &key, "Leads")["id"].as_str().unwrap().to_owned();
    let page = g.get(&format!("/labels/{fresh}/items"), &key).json();
    assert_eq!(page, json!({"data": [], "nextCursor": null}));
}

#[test]
fn labels_routes_are_documented_in_openapi() {
    let g = labels_gateway();
    let doc = g.raw("GET", "/openapi.json", &[], None).json();
    let op = &doc["paths"]["/labels"]["post"];
    assert_eq!(op["operationId"], "createLabel");
    assert_eq!(op["x-plugin"], "labels");
    assert_eq!(op["x-capability"], "send");
    let body = &op["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["additionalProperties"], false);
    assert_eq!(body["properties"]["name"]["maxLength"], 100);
    assert!(
        op["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["id"]
            .is_object()
    );
    let list = &doc["paths"]["/labels"]["get"];
    assert!(
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "cursor" && p["in"] == "query")
    );
    for (path, method) in [
        ("/labels/{label}", "get"),
        ("/labels/{label}", "patch"),
        ("/labels/{label}", "delete"),
        ("/labels/{label}/items", "get"),
        ("/labels/{label}/items", "post"),
        ("/labels/{label}/items:remove", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
}

#[test]
fn labels_survive_a_hot_reload_with_their_data() {
    let g = Arc::new(labels_gateway());
    let key = Arc::new(g.key("org_lab", &["read", "send", "manage"]));
    let id = create(&g, &key, "Keep")["id"].as_str().unwrap().to_owned();

    // Reloads under load: every answer is whole and correct.
    let load = BackgroundLoad::start(&g, &key, &format!("/labels/{id}"), 1, |r| {
        r.status == 200 && r.json()["name"] == "Keep"
    });
    for _ in 0..3 {
        g.install_plugin("labels", "labels");
        let report = g.reload();
        assert!(report.to_string().contains("labels"), "{report}");
    }
    let (ok, bad) = load.finish();
    assert_eq!(bad, 0);
    assert!(ok > 0);

    // Unloaded: its routes are gone; loaded again: its data is still there.
    std::fs::remove_file(g.plugin_dir().join("labels.wasm")).unwrap();
    g.reload();
    g.get(&format!("/labels/{id}"), &key)
        .assert_error(404, "not_found");
    g.install_plugin("labels", "labels");
    g.reload();
    let r = g.get(&format!("/labels/{id}"), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "Keep");
}

#[test]
fn labels_importing_an_interface_it_was_not_granted_is_refused() {
    let mut o = Options {
        plugins: vec!["sessions".into(), "labels".into()],
        ..Options::default()
    };
    o.grants.push(("labels", vec!["storage", "log"]));
    let g = Gateway::with(o);
    let key = g.key("org_lab", &["read", "send", "manage"]);
    g.get("/labels", &key).assert_error(404, "not_found");
    let list = g.admin_call("GET", "/admin/plugins", None).json();
    let labels = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "labels")
        .unwrap_or_else(|| panic!("labels is not listed: {list}"))
        .clone();
    let err = labels["lastError"].as_str().unwrap();
    assert!(
        err.contains("wa:gateway/session-control") && err.contains("not granted"),
        "{err}"
    );
    // The rest of the gateway serves.
    assert_eq!(g.get("/sessions", &key).status, 200);
}

/// A gateway with the JavaScript chaos plugin, given the memory a JS engine needs.
fn chaos_js_gateway() -> Gateway {
    Gateway::with(Options {
        plugins: vec!["chaos-js".into()],
        extra_toml: "[plugins.limits.chaos-js]\nmemory_bytes = 100663296\n".into(),
        ..Options::default()
    })
}

#[test]
fn an_exception_in_a_js_plugin_answers_500_and_the_instance_serves_on() {
    let g = chaos_js_gateway();
    let key = g.key("org_js", &["read"]);
    let first = g.get("/chaos-js/ok", &key);
    assert_eq!(first.status, 200, "{}", first.text());
    let n = first.json()["served"].as_u64().unwrap();
    let r = g.get("/chaos-js/throw", &key);
    r.assert_error(500, "internal");
    // Nothing of the plugin's internals leaks.
    assert!(
        !r.text().contains("TypeError") && !r.text().contains("field"),
        "{}",
        r.text()
    );
    g.wait_log(|log| log.contains("jsThrow failed"));
    // A thrown ApiError is the caller's answer.
    let r = g.get("/chaos-js/bad-request", &key);
    r.assert_error(400, "validation_error");
    assert_eq!(r.json()["error"]["details"]["field"], "q");
    // An exception is not a trap: the same instance answers next (its counter goes on).
    let next = g.get("/chaos-js/ok", &key).json();
    assert!(next["served"].as_u64().unwrap() > n, "{next}");
}

/// Faults inside the JS component (a trap, a runaway loop, memory without bound) fail
/// only their own request, within the deadline, while other requests keep getting 200.
#[test]
fn a_trap_timeout_or_oom_in_a_js_plugin_fails_only_its_request() {
    let g = Arc::new(chaos_js_gateway());
    let key = Arc::new(g.key("org_js", &["read"]));
    assert_eq!(g.get("/chaos-js/ok", &key).status, 200);
    let timeout = Duration::from_millis(g.options.plugin_timeout_ms);
    let load = BackgroundLoad::start(&g, &key, "/chaos-js/ok", 2, |r| {
        r.status == 200 && r.json()["ok"] == true
    });
    for path in ["/chaos-js/trap", "/chaos-js/spin", "/chaos-js/oom"] {
        let started = Instant::now();
        let r = g.get(path, &key);
        let took = started.elapsed();
        r.assert_error(500, "internal");
        assert_eq!(r.json()["error"]["details"]["plugin"], "chaos-js", "{path}");
        assert!(
            took < timeout + Duration::from_secs(5),
            "{path} took {took:?}"
        );
        // The next request is served (by a fresh instance).
        assert_eq!(g.get("/chaos-js/ok", &key).status, 200, "after {path}");
    }
    let (ok, bad) = load.finish();
    assert_eq!(bad, 0, "ordinary requests failed");
    assert!(ok > 0);
    g.wait_log(|log| {
        log.lines()
            .any(|l| l.contains("plugin call failed") && l.contains("chaos-js"))
    });
}
