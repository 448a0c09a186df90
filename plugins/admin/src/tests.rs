//! The admin operations against the SDK's in-memory host: listing across organizations
//! with filters and cursors, reading and changing any organization's session, the
//! backfill rules (202, one at a time, not connected, status), and the capability wall.

use super::Admin;
use gateway_sdk::testing::{BackfillCounts, TestHost};
use gateway_sdk::{Capability, json};

/// The in-memory host serving the plugin to a platform admin of no organization.
fn admin_host() -> TestHost {
    TestHost::new::<Admin>().caller("", &[Capability::PlatformAdmin])
}

#[test]
fn lists_every_organization_with_filters_and_cursors() {
    let host = admin_host();
    let a1 = host.sessions().add("org_a", Some("a1"));
    let a2 = host.sessions().add("org_a", Some("a2"));
    let b1 = host.sessions().add("org_b", Some("b1"));
    host.sessions().pair(&b1, "15550002222");
    assert_eq!(
        host.post(&format!("/admin/sessions/{b1}:backfill"), json!({}))
            .status,
        501
    );

    let all: Vec<String> = host
        .collect_pages("/admin/sessions?limit=2")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, vec![a1.clone(), a2.clone(), b1.clone()]);
    let first = host.get("/admin/sessions?limit=2").json();
    assert!(first["nextCursor"].is_string());

    let org_a = host.get("/admin/sessions?organization=org_a").json();
    assert_eq!(org_a["data"].as_array().unwrap().len(), 2);
    assert_eq!(org_a["data"][0]["organizationId"], "org_a");
    assert_eq!(org_a["nextCursor"], serde_json::Value::Null);
    let stopped = host
        .get("/admin/sessions?status=stopped&gatewayId=gw-test")
        .json();
    assert_eq!(stopped["data"].as_array().unwrap().len(), 3);
    let none = host.get("/admin/sessions?gatewayId=gw-other").json();
    assert!(none["data"].as_array().unwrap().is_empty());

    let bad = host.get("/admin/sessions?status=sleeping");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code().as_deref(), Some("validation_error"));
    assert_eq!(bad.json()["error"]["details"]["field"], "status");
    let cursor = host.get("/admin/sessions?cursor=nope");
    assert_eq!(cursor.status, 400);
}

#[test]
fn gets_and_updates_any_organizations_session() {
    let host = admin_host();
    let id = host.sessions().add("org_acme", Some("Support"));
    let got = host.get(&format!("/admin/sessions/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["organizationId"], "org_acme");
    assert_eq!(got.json()["ratePerMin"], 20);

    let r = host.patch(
        &format!("/admin/sessions/{id}"),
        json!({"ratePerMin": 1000, "ratePerHour": 60000, "isAdminSession": true}),
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    let s = r.json();
    assert_eq!(s["ratePerMin"], 1000);
    assert_eq!(s["ratePerHour"], 60000);
    assert_eq!(s["isAdminSession"], true);
    assert_eq!(host.sessions().get(&id).unwrap().rate_per_min, 1000);
    // Fields left out stay as they are.
    let r = host.patch(&format!("/admin/sessions/{id}"), json!({"ratePerMin": 1}));
    assert_eq!(r.json()["ratePerHour"], 60000);
    assert_eq!(r.json()["ratePerMin"], 1);

    for (body, field) in [
        (json!({"ratePerMin": 0}), "ratePerMin"),
        (json!({"ratePerMin": 1001}), "ratePerMin"),
        (json!({"ratePerHour": 60001}), "ratePerHour"),
        (json!({"ratePerHour": -5}), "ratePerHour"),
    ] {
        let r = host.patch(&format!("/admin/sessions/{id}"), body.clone());
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_code().as_deref(), Some("validation_error"));
        assert_eq!(r.json()["error"]["details"]["field"], field, "{body}");
    }
    let typo = host.patch(
        &format!("/admin/sessions/{id}"),
        json!({"ratePerMinute": 5}),
    );
    assert_eq!(typo.status, 400);
    assert_eq!(host.sessions().get(&id).unwrap().rate_per_min, 1);

    let missing = "01J00000000000000000000099";
    for r in [
        host.get(&format!("/admin/sessions/{missing}")),
        host.patch(
            &format!("/admin/sessions/{missing}"),
            json!({"ratePerMin": 5}),
        ),
        host.get(&format!("/admin/sessions/{missing}/backfill")),
        host.post(&format!("/admin/sessions/{missing}:backfill"), json!({})),
    ] {
        assert_eq!(r.status, 404);
        assert_eq!(r.error_code().as_deref(), Some("not_found"));
    }
}

#[test]
fn backfills_run_one_at_a_time_and_report_their_status() {
    let host = admin_host();
    let working = {
        let h = TestHost::new::<Admin>().caller("org_acme", &[Capability::Manage]);
        h.add_session()
    };
    let host = host.caller("", &[Capability::PlatformAdmin]);
    let none = host.get(&format!("/admin/sessions/{working}/backfill"));
    assert_eq!(none.status, 404);
    assert_eq!(none.error_code().as_deref(), Some("not_found"));

    let started = host.post(
        &format!("/admin/sessions/{working}:backfill"),
        json!({"scope": ["groups", "contacts"]}),
    );
    assert_eq!(started.status, 202, "{:?}", started.json());
    let job = started.json();
    assert_eq!(job["status"], "running");
    assert_eq!(job["scope"], json!(["contacts", "groups"]));
    assert_eq!(job["sessionId"], working.as_str());
    assert_eq!(job["organizationId"], "org_acme");
    assert_eq!(job["requestedBy"], "user:test");
    assert_eq!(job["finishedAt"], serde_json::Value::Null);
    assert_eq!(job["error"], serde_json::Value::Null);

    let again = host.post(&format!("/admin/sessions/{working}:backfill"), json!({}));
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code().as_deref(), Some("conflict"));
    let running = host
        .get(&format!("/admin/sessions/{working}/backfill"))
        .json();
    assert_eq!(running["id"], job["id"]);
    assert_eq!(running["status"], "running");

    host.platform_admin().finish_backfill(
        &working,
        BackfillCounts {
            contacts: 7,
            groups: 2,
            group_members: 9,
            chats: 3,
        },
        None,
    );
    let done = host
        .get(&format!("/admin/sessions/{working}/backfill"))
        .json();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["contacts"], 7);
    assert_eq!(done["groupMembers"], 9);
    assert!(done["finishedAt"].is_u64());

    let all = host.post(&format!("/admin/sessions/{working}:backfill"), json!({}));
    assert_eq!(all.status, 202);
    assert_eq!(all.json()["scope"], json!(["contacts", "groups", "chats"]));
    assert_eq!(host.platform_admin().backfills(&working).len(), 2);

    for body in [
        json!({"scope": []}),
        json!({"scope": ["history"]}),
        json!({"scopes": ["chats"]}),
    ] {
        let r = host.post(&format!("/admin/sessions/{working}:backfill"), body.clone());
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_code().as_deref(), Some("validation_error"));
    }
}

#[test]
fn only_platform_admins_get_in() {
    let host = TestHost::new::<Admin>();
    let id = host.add_session();
    for r in [
        host.get("/admin/sessions"),
        host.get(&format!("/admin/sessions/{id}")),
        host.patch(&format!("/admin/sessions/{id}"), json!({"ratePerMin": 5})),
        host.post(&format!("/admin/sessions/{id}:backfill"), json!({})),
        host.get(&format!("/admin/sessions/{id}/backfill")),
    ] {
        assert_eq!(r.status, 403);
        assert_eq!(r.error_code().as_deref(), Some("forbidden"));
    }
}
