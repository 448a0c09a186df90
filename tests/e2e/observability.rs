//! Self-description and observability: the OpenAPI 3.1 document (valid, complete, true to
//! the routes it lists, rebuilt on reload), the docs page, health and readiness, the
//! Prometheus metrics, and structured access logs without secrets.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

const ALICE: &str = "205227043110953@lid";

fn openapi(g: &Gateway) -> Value {
    let r = g.raw("GET", "/openapi.json", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// Validates with openapi-spec-validator (installed by `cargo xtask test`).
fn validate_openapi(doc: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new("python3")
        .args(["-c", "import sys, json; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
        .arg(&file)
        .output()
        .expect("python3 with openapi-spec-validator (cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "not a valid OpenAPI 3.1 document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every (METHOD, path) the loaded plugins declare, from the admin listener.
fn declared(g: &Gateway) -> BTreeSet<(String, String)> {
    let list = g.admin_call("GET", "/admin/plugins", None).json();
    let mut out = BTreeSet::new();
    for p in list["data"].as_array().unwrap() {
        for r in p["routes"].as_array().unwrap() {
            let (m, path) = r.as_str().unwrap().split_once(' ').unwrap();
            out.insert((m.to_owned(), path.to_owned()));
        }
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn openapi_is_valid_complete_and_follows_reloads() {
    let g = Gateway::start();
    let doc = openapi(&g);
    assert_eq!(doc["openapi"], "3.1.0");
    validate_openapi(&doc);
    let documented = documented(&doc);
    let declared = declared(&g);
    assert!(!declared.is_empty());
    for route in &declared {
        assert!(
            documented.contains(route),
            "{route:?} is not in /openapi.json"
        );
    }
    for host in [
        ("GET", "/api-keys"),
        ("POST", "/api-keys"),
        ("DELETE", "/api-keys/{id}"),
        ("POST", "/sessions/{session}/media"),
        ("POST", "/realtime/ticket"),
        ("GET", "/realtime"),
        ("POST", "/admin/realtime/ticket"),
    ] {
        assert!(
            documented.contains(&(host.0.to_owned(), host.1.to_owned())),
            "{host:?}"
        );
    }
    assert_eq!(
        documented.len(),
        declared.len() + 7,
        "nothing undeclared is documented"
    );

    // Operations carry their capability, parameters, schemas and the error envelope.
    let op = &doc["paths"]["/sessions/{session}/contacts/{lid}"]["get"];
    assert_eq!(op["operationId"], "getContact");
    assert_eq!(op["x-capability"], "read");
    assert_eq!(op["x-plugin"], "contacts");
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, vec!["session", "lid"]);
    assert!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["identity"]
            .is_object()
    );
    assert_eq!(
        op["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    assert!(
        doc["paths"]["/sessions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            .is_object()
    );
    let list = &doc["paths"]["/sessions/{session}/contacts"]["get"]["parameters"];
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "cursor" && p["in"] == "query")
    );
    assert_eq!(
        doc["components"]["schemas"]["Error"]["properties"]["error"]["required"],
        json!(["code", "message", "details"])
    );

    // Unloading a plugin removes its routes from the document.
    std::fs::remove_file(g.plugin_dir().join("notes.wasm")).unwrap();
    g.reload();
    let after = openapi(&g);
    validate_openapi(&after);
    assert!(after["paths"].get("/sessions/{session}/notes").is_none());
    assert!(after["paths"].get("/sessions/{session}/contacts").is_some());
}

/// Fills a path template with sample values.
fn fill(path: &str, session: &str, note: &str, key_id: &str) -> String {
    path.replace("{session}", session)
        .replace("{lid}", &ALICE.replace('@', "%40"))
        .replace("{jid}", "6281234567890%40s.whatsapp.net")
        .replace(
            "{id}",
            if path.starts_with("/api-keys") {
                key_id
            } else {
                note
            },
        )
        .replace("{value}", "sample")
}

#[test]
fn the_routes_answer_as_the_document_says() {
    let g = Gateway::start();
    let key = g.key("org_doc", &["read", "send", "manage"]);
    let s = g.working_session(&key);
    assert!(wait_for(Duration::from_secs(20), || {
        g.get(&format!("/sessions/{s}/contacts/{ALICE}"), &key)
            .status
            == 200
    }));
    let note = g
        .post(
            &format!("/sessions/{s}/notes"),
            &key,
            json!({"text": "sample"}),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = openapi(&g);
    let (mut sampled, mut succeeded) = (0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            // Destructive or state-changing sampled elsewhere; everything else is called.
            if matches!(method.as_str(), "delete")
                || [
                    "createSession",
                    "sessionPairingCode",
                    "startSession",
                    "stopSession",
                    "restartSession",
                    "logoutSession",
                    "createApiKey",
                    "chaosLoop",
                    "chaosOom",
                    "chaosTrap",
                    "chaosOrgPut",
                    "chaosPut",
                    "chaosOrgGet",
                    "chaosGet",
                ]
                .contains(&id)
            {
                continue;
            }
            let mut url = fill(path, &s, &note, "key_none");
            let required_query: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if required_query.contains(&"phone") {
                url.push_str("?phone=6281234567890");
            }
            let body = (method != "get").then(|| json!({"text": "sample"}));
            let r = g.call(&method.to_uppercase(), &url, &key, body);
            let code = r.status.to_string();
            let documented = &op["responses"][&code];
            assert!(
                documented.is_object(),
                "{method} {path} answered {code}, which it does not document: {}",
                r.text()
            );
            if r.status >= 400 {
                // A documented failure still comes in the envelope (an API key may not
                // manage keys or reach /admin; a paired session has no QR code…).
                r.assert_error(r.status, r.json()["error"]["code"].as_str().unwrap());
            } else if let Some(schema) =
                documented["content"]["application/json"]["schema"].as_object()
                && r.header("content-type") == Some("application/json")
            {
                let schema = Value::Object(schema.clone());
                let body = r.json();
                if let Err(e) = jsonschema::validate(&schema, &body) {
                    panic!("{id}: answer does not match its schema: {e}\n{body}");
                }
            }
            sampled += 1;
            if r.status < 400 {
                succeeded += 1;
            }
        }
    }
    println!(
        "sampled {sampled} documented operations, {succeeded} answered 2xx and matched their schemas"
    );
    assert!(
        sampled >= 20 && succeeded >= 15,
        "sampled {sampled}, {succeeded} succeeded"
    );
}

#[test]
fn the_docs_page_renders_the_document_without_the_internet() {
    let g = Gateway::start();
    let r = g.raw("GET", "/docs", &[], None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = r.text();
    assert!(html.contains("fetch(\"/openapi.json\")"));
    for external in ["http://", "https://", "//cdn", "<link"] {
        assert!(
            !html.contains(external),
            "the docs page references {external}"
        );
    }
}

#[test]
fn health_and_readiness() {
    let g = Gateway::start();
    let r = g.admin_call("GET", "/healthz", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = g.admin_call("GET", "/readyz", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(r.json()["database"], true);
    assert_eq!(
        r.json()["plugins"],
        5,
        "sessions, admin, contacts, notes, chaos"
    );
    // Health lives on the admin listener only.
    g.raw("GET", "/healthz", &[], None)
        .assert_error(404, "not_found");
}

/// The value of one series in a Prometheus text exposition.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

#[test]
fn metrics_move_after_requests() {
    let g = Gateway::start();
    let key = g.key("org_metrics", &["read", "manage"]);
    let scrape = || {
        let r = g.admin_call("GET", "/metrics", None);
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .unwrap()
                .contains("openmetrics-text")
        );
        r.text()
    };
    let before = scrape();
    for _ in 0..5 {
        assert_eq!(g.get("/chaos/ok", &key).status, 200);
    }
    g.get("/chaos/trap", &key).assert_error(500, "internal");
    g.get("/chaos/ok", "wa_bogus")
        .assert_error(401, "unauthorized");
    let s = g.working_session(&key);
    assert!(!s.is_empty());
    // Events reach plugins asynchronously: wait until the contacts plugin has had one.
    let delivered = |text: &str| {
        sample(
            text,
            "gateway_plugin_event_deliveries_total",
            &[("plugin", "contacts"), ("result", "ok")],
        )
    };
    let mut after = String::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            after = scrape();
            delivered(&after) >= 1.0
        }),
        "no event delivery counted:\n{after}"
    );
    let ok = [
        ("route", "/chaos/ok"),
        ("status", "200"),
        ("plugin", "chaos"),
        ("method", "GET"),
    ];
    assert_eq!(
        sample(&after, "gateway_http_requests_total", &ok)
            - sample(&before, "gateway_http_requests_total", &ok),
        5.0
    );
    assert_eq!(
        sample(
            &after,
            "gateway_http_requests_total",
            &[("route", "/chaos/ok"), ("status", "401")]
        ),
        1.0
    );
    assert!(
        sample(
            &after,
            "gateway_http_request_duration_seconds_count",
            &[("route", "/chaos/ok")]
        ) >= 6.0
            + sample(
                &before,
                "gateway_http_request_duration_seconds_count",
                &[("route", "/chaos/ok")]
            )
    );
    assert_eq!(
        sample(
            &after,
            "gateway_plugin_faults_total",
            &[("plugin", "chaos"), ("kind", "trap")]
        ),
        1.0
    );
    assert_eq!(
        sample(&after, "gateway_sessions", &[("status", "working")]),
        1.0
    );
    assert!(
        sample(
            &after,
            "gateway_engine_events_total",
            &[("event", "connected")]
        ) >= 1.0
    );
    assert!(sample(&after, "gateway_plugin_reloads_total", &[("result", "ok")]) >= 1.0);
}

#[test]
fn one_json_log_line_per_request_and_never_a_secret() {
    let g = Gateway::with(Options {
        log_format: "json",
        ..Options::default()
    });
    let key = g.key("org_logs", &["read"]);
    let r = g.raw(
        "GET",
        "/api/v1/chaos/echo/abc",
        &[("x-api-key", &key), ("x-request-id", "log-test-1")],
        None,
    );
    assert_eq!(r.status, 200);
    g.get("/chaos/ok", "wa_not_a_real_key_but_secret_looking")
        .assert_error(401, "unauthorized");
    // Both requests' access lines have been written once the second one's is there.
    let log = g.wait_log(|log| log.matches("gateway::access").count() >= 2);
    let lines: Vec<Value> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "gateway::access")
        .collect();
    let line = access
        .iter()
        .find(|l| l["request_id"] == "log-test-1")
        .expect("an access line for the request");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/chaos/echo/{value}");
    assert_eq!(line["status"], 200);
    assert_eq!(line["org"], "org_logs");
    assert_eq!(line["plugin"], "chaos");
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        access
            .iter()
            .filter(|l| l["request_id"] == "log-test-1")
            .count(),
        1
    );
    assert!(!log.contains(&key), "an API key was logged");
    assert!(
        !log.contains("wa_not_a_real_key"),
        "a credential was logged"
    );
}
