//! The session operations against the SDK's in-memory host: paging, validation, the
//! pairing rules and tenancy, in milliseconds and without a gateway.

use super::Sessions;
use gateway_sdk::json;
use gateway_sdk::testing::TestHost;

#[test]
fn lists_page_every_session_once_in_id_order() {
    let host = TestHost::new::<Sessions>();
    let ids: Vec<String> = (0..7)
        .map(|i| host.sessions().add("org_test", Some(&format!("s{i}"))))
        .collect();
    host.sessions().add("org_other", Some("not ours"));
    let seen: Vec<String> = host
        .collect_pages("/sessions?limit=3")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids);
    let bad = host.get("/sessions?cursor=nope");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code().as_deref(), Some("validation_error"));
}

#[test]
fn create_validates_its_body_and_starts_on_request() {
    let host = TestHost::new::<Sessions>();
    let r = host.post("/sessions", json!({"label": "Support", "start": true}));
    assert_eq!(r.status, 201);
    let s = r.json();
    assert_eq!(s["label"], "Support");
    assert_eq!(s["status"], "scan_qr_code");
    assert_eq!(s["organizationId"], "org_test");
    assert_eq!(s["ratePerMin"], 20);
    let long = host.post("/sessions", json!({"label": "x".repeat(101)}));
    assert_eq!(long.status, 400);
    assert_eq!(long.json()["error"]["details"]["field"], "label");
    let typo = host.post("/sessions", json!({"lable": "x"}));
    assert_eq!(typo.status, 400);
    assert!(
        typo.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field")
    );
    let stopped = host.post("/sessions", json!({}));
    assert_eq!(stopped.json()["status"], "stopped");
}

#[test]
fn lifecycle_and_pairing_rules() {
    let host = TestHost::new::<Sessions>();
    let id = host.sessions().add("org_test", None);
    let me = host.get(&format!("/sessions/{id}/me"));
    assert_eq!(me.status, 404);
    let qr = host.get(&format!("/sessions/{id}/qr"));
    assert_eq!(qr.status, 200);
    assert!(qr.json()["code"].as_str().unwrap().starts_with("2@"));
    let png = host.get(&format!("/sessions/{id}/qr?format=png"));
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(&png.body[1..4], b"PNG");
    assert_eq!(
        host.get(&format!("/sessions/{id}/qr?format=gif")).status,
        400
    );
    for phone in [json!("+1 555"), json!(15551234567u64)] {
        let bad = host.post(
            &format!("/sessions/{id}/pairing-code"),
            json!({"phone": phone}),
        );
        assert_eq!(bad.status, 400);
        assert_eq!(bad.json()["error"]["details"]["field"], "phone");
    }
    let code = host.post(
        &format!("/sessions/{id}/pairing-code"),
        json!({"phone": "15551234567"}),
    );
    assert_eq!(code.status, 200, "{:?}", code.json());

    host.sessions().pair(&id, "15551234567");
    let me = host.get(&format!("/sessions/{id}/me"));
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["waJid"], "15551234567@s.whatsapp.net");
    let paired_qr = host.get(&format!("/sessions/{id}/qr"));
    assert_eq!(paired_qr.status, 400);
    let started = host.post(&format!("/sessions/{id}:restart"), json!({}));
    assert_eq!(started.json()["status"], "working");
    let stopped = host.post(&format!("/sessions/{id}:stop"), json!({}));
    assert_eq!(stopped.json()["status"], "stopped");
    let out = host.post(&format!("/sessions/{id}:logout"), json!({}));
    assert_eq!(out.json()["waJid"], serde_json::Value::Null);
    assert_eq!(out.json()["statusReason"], "logged out");
    assert_eq!(host.delete(&format!("/sessions/{id}")).status, 204);
    assert_eq!(host.get(&format!("/sessions/{id}")).status, 404);
}

#[test]
fn other_organizations_sessions_are_not_found() {
    let host = TestHost::new::<Sessions>();
    let theirs = host.sessions().add("org_other", None);
    let r = host.get(&format!("/sessions/{theirs}"));
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("not_found"));
    // The admin routes moved to the `admin` plugin.
    assert_eq!(host.get("/admin/sessions").status, 404);
}
