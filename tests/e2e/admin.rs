//! Platform admin end to end (API.md §8) on the sandbox, with real JWTs from a real JWKS:
//! sessions of every organization listed with filters and cursors, read and changed
//! through the host's admin `{session}` rule, backfills (202, status with counts, 409
//! while one runs, 501 when not connected, 404 for none), a backfill healing plugin
//! stores that never saw the connect-time sync, jobs left running by a stop or a crash
//! ending `interrupted`, the event monitor's ticket for every organization's stream, and
//! the 403 wall for API keys and organization roles.

use crate::identity::*;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The example world: 10 contacts, 6 direct chats, and 3 groups the account is in, of
/// 5, 5 and 3 members with the account itself.
const WORLD_CONTACTS: u64 = 10;
const WORLD_CHATS: u64 = 6;
const WORLD_GROUPS: u64 = 3;
const WORLD_GROUP_MEMBERS: u64 = 13;
const ALICE: &str = "205227043110953@lid";
const ALICE_PN: &str = "6281234567890@s.whatsapp.net";
const PROJECT: &str = "120363021234567890@g.us";

/// A gateway trusting a test dashboard, and a super admin's token.
struct Platform {
    g: Gateway,
    key: SigningKey,
    admin: String,
    _jwks: JwksServer,
}

impl Platform {
    fn start(mut o: Options) -> Platform {
        let key = ec_key("ec-admin");
        let jwks = JwksServer::start(&[&key]);
        o.extra_toml = format!("{}\n{}", jwks.auth_toml(300, 1), o.extra_toml);
        let g = Gateway::with(o);
        let admin = super_admin(&key, "alice");
        Platform {
            g,
            key,
            admin,
            _jwks: jwks,
        }
    }

    fn owner(&self, org: &str) -> String {
        sign(&self.key, &claims(org, "owner"))
    }

    fn get(&self, path: &str) -> Resp {
        self.g.get(path, &self.admin)
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Resp {
        self.g.call(method, path, &self.admin, Some(body))
    }

    /// Polls the session's backfill until it is no longer running; answers it.
    fn finished_backfill(&self, s: &str) -> Value {
        let mut last = Value::Null;
        let ok = wait_for(Duration::from_secs(30), || {
            let r = self.get(&format!("/admin/sessions/{s}/backfill"));
            assert_eq!(r.status, 200, "{}", r.text());
            last = r.json();
            last["status"] != "running"
        });
        assert!(ok, "the backfill never finished: {last}");
        last
    }
}

fn sandbox_delay(ms: u64) -> Options {
    Options {
        sandbox_toml: format!("backfill_delay_ms = {ms}"),
        ..Options::default()
    }
}

fn assert_job_shape(job: &Value, s: &str, org: &str) {
    for field in [
        "id",
        "sessionId",
        "organizationId",
        "status",
        "scope",
        "contacts",
        "groups",
        "groupMembers",
        "chats",
        "startedAt",
        "finishedAt",
        "error",
        "requestedBy",
    ] {
        assert!(job.get(field).is_some(), "{field} missing from {job}");
    }
    assert_eq!(job["sessionId"], s);
    assert_eq!(job["organizationId"], org);
    assert_eq!(job["requestedBy"], "user:alice");
    assert!(
        job["startedAt"]
            .as_u64()
            .is_some_and(|t| t > 1_700_000_000_000)
    );
}

#[test]
fn admin_lists_every_organizations_sessions_with_filters_and_cursors() {
    let p = Platform::start(Options::default());
    let (a, b) = (p.owner("org_adm_a"), p.owner("org_adm_b"));
    let a1 = p.g.create_session(&a, json!({"label": "a1"}));
    let a2 = p.g.working_session(&a);
    let b1 = p.g.create_session(&b, json!({"label": "b1"}));

    let mut seen = Vec::new();
    let mut path = "/admin/sessions?limit=1".to_owned();
    loop {
        let r = p.get(&path);
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 1);
        seen.extend(data.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/admin/sessions?limit=1&cursor={c}"),
            None => break,
        }
    }
    let mut expected = vec![a1.clone(), a2.clone(), b1.clone()];
    expected.sort();
    assert_eq!(seen, expected);

    let org_a = p.get("/admin/sessions?organization=org_adm_a").json();
    let ids: Vec<&str> = org_a["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a1.as_str()) && ids.contains(&a2.as_str()));
    assert_eq!(org_a["nextCursor"], Value::Null);

    let working = p.get("/admin/sessions?status=working").json();
    assert_eq!(working["data"].as_array().unwrap().len(), 1);
    assert_eq!(working["data"][0]["id"], a2.as_str());
    assert_eq!(working["data"][0]["organizationId"], "org_adm_a");

    let gw = working["data"][0]["gatewayId"].as_str().unwrap().to_owned();
    let here = p
        .get(&format!(
            "/admin/sessions?gatewayId={gw}&organization=org_adm_b"
        ))
        .json();
    assert_eq!(here["data"].as_array().unwrap().len(), 1);
    assert_eq!(here["data"][0]["id"], b1.as_str());
    let elsewhere = p.get("/admin/sessions?gatewayId=gw-nowhere").json();
    assert!(elsewhere["data"].as_array().unwrap().is_empty());

    let bad = p.get("/admin/sessions?status=asleep");
    bad.assert_error(400, "validation_error");
    assert_eq!(bad.json()["error"]["details"]["field"], "status");
    p.get("/admin/sessions?cursor=%%%")
        .assert_error(400, "validation_error");
}

#[test]
fn admin_gets_and_updates_any_organizations_session() {
    let p = Platform::start(Options::default());
    let owner = p.owner("org_adm_rates");
    let s = p.g.create_session(&owner, json!({"label": "Support"}));

    let got = p.get(&format!("/admin/sessions/{s}"));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["organizationId"], "org_adm_rates");
    assert_eq!(got.json()["ratePerMin"], 20);
    assert_eq!(got.json()["ratePerHour"], 600);

    let r = p.call(
        "PATCH",
        &format!("/admin/sessions/{s}"),
        json!({"ratePerMin": 120, "ratePerHour": 6000, "isAdminSession": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ratePerMin"], 120);
    assert_eq!(r.json()["ratePerHour"], 6000);
    assert_eq!(r.json()["isAdminSession"], true);
    // The organization sees the change on its own session.
    let mine = p.g.get(&format!("/sessions/{s}"), &owner).json();
    assert_eq!(mine["ratePerMin"], 120);
    assert_eq!(mine["isAdminSession"], true);
    // Log lines are written by a background thread: wait for this one.
    p.g.wait_log(|log| log.contains("platform admin changed a session"));

    for (body, field) in [
        (json!({"ratePerMin": 0}), "ratePerMin"),
        (json!({"ratePerMin": 1001}), "ratePerMin"),
        (json!({"ratePerHour": 60001}), "ratePerHour"),
    ] {
        let r = p.call("PATCH", &format!("/admin/sessions/{s}"), body.clone());
        r.assert_error(400, "validation_error");
        assert_eq!(r.json()["error"]["details"]["field"], field, "{body}");
    }
    p.call(
        "PATCH",
        &format!("/admin/sessions/{s}"),
        json!({"label": "x"}),
    )
    .assert_error(400, "validation_error");
    assert_eq!(
        p.get(&format!("/admin/sessions/{s}")).json()["ratePerMin"],
        120
    );

    let missing = "01J9ZX8K2QHV0M3T6R7P4N5W8C";
    p.get(&format!("/admin/sessions/{missing}"))
        .assert_error(404, "not_found");
    p.call(
        "PATCH",
        &format!("/admin/sessions/{missing}"),
        json!({"ratePerMin": 5}),
    )
    .assert_error(404, "not_found");
    p.get(&format!("/admin/sessions/{missing}/backfill"))
        .assert_error(404, "not_found");
    p.call(
        "POST",
        &format!("/admin/sessions/{missing}:backfill"),
        json!({}),
    )
    .assert_error(404, "not_found");
}

#[test]
fn admin_backfill_runs_reports_counts_and_refuses_what_it_cannot_do() {
    let p = Platform::start(Options::default());
    let owner = p.owner("org_adm_fill");
    let s = p.g.working_session(&owner);
    p.get(&format!("/admin/sessions/{s}/backfill"))
        .assert_error(404, "not_found");

    let r = p.call("POST", &format!("/admin/sessions/{s}:backfill"), json!({}));
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json();
    assert_job_shape(&job, &s, "org_adm_fill");
    assert_eq!(job["status"], "running");
    assert_eq!(job["scope"], json!(["contacts", "groups", "chats"]));
    assert_eq!(job["finishedAt"], Value::Null);

    let done = p.finished_backfill(&s);
    assert_job_shape(&done, &s, "org_adm_fill");
    assert_eq!(done["id"], job["id"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["error"], Value::Null);
    assert_eq!(done["contacts"], WORLD_CONTACTS);
    assert_eq!(done["groups"], WORLD_GROUPS);
    assert_eq!(done["groupMembers"], WORLD_GROUP_MEMBERS);
    assert_eq!(done["chats"], WORLD_CHATS);
    assert!(done["finishedAt"].as_u64().unwrap() >= done["startedAt"].as_u64().unwrap());

    // A narrower scope reads only that.
    let r = p.call(
        "POST",
        &format!("/admin/sessions/{s}:backfill"),
        json!({"scope": ["groups"]}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["scope"], json!(["groups"]));
    let groups_only = p.finished_backfill(&s);
    assert_ne!(groups_only["id"], job["id"]);
    assert_eq!(groups_only["groups"], WORLD_GROUPS);
    assert_eq!(groups_only["contacts"], 0);
    assert_eq!(groups_only["chats"], 0);

    let bad = p.call(
        "POST",
        &format!("/admin/sessions/{s}:backfill"),
        json!({"scope": ["history"]}),
    );
    bad.assert_error(400, "validation_error");
    assert_eq!(bad.json()["error"]["details"]["field"], "scope");

    // Not connected: 501, and no job is recorded.
    let stopped = p.g.create_session(&owner, json!({}));
    p.call(
        "POST",
        &format!("/admin/sessions/{stopped}:backfill"),
        json!({}),
    )
    .assert_error(501, "not_implemented");
    p.get(&format!("/admin/sessions/{stopped}/backfill"))
        .assert_error(404, "not_found");
}

#[test]
fn admin_backfill_heals_stores_that_never_saw_the_sync() {
    // The contacts and groups plugins arrive after the session connected: their stores
    // never saw the connect-time sync.
    let mut o = Options::default().grant_groups();
    o.plugins.retain(|p| p.as_str() != "contacts");
    let p = Platform::start(o);
    let owner = p.owner("org_adm_heal");
    let s = p.g.working_session(&owner);
    p.g.install_plugin("contacts", "contacts");
    p.g.install_plugin("groups", "groups");
    let report = p.g.reload();
    assert!(
        report["refused"].as_object().unwrap().is_empty(),
        "{report}"
    );
    let contact = format!("/sessions/{s}/contacts/{ALICE}");
    let group = format!("/sessions/{s}/groups/{PROJECT}");
    p.g.get(&contact, &owner).assert_error(404, "not_found");
    p.g.get(&group, &owner).assert_error(404, "not_found");

    let r = p.call("POST", &format!("/admin/sessions/{s}:backfill"), json!({}));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(p.finished_backfill(&s)["status"], "succeeded");

    wait_until(Duration::from_secs(20), || {
        p.g.get(&group, &owner).status == 200 && p.g.get(&contact, &owner).status == 200
    });
    let alice = p.g.get(&contact, &owner).json();
    assert_eq!(alice["identity"]["lid"], ALICE);
    assert_eq!(alice["identity"]["name"], "Alice");
    assert!(
        alice["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["jid"] == PROJECT),
        "{alice}"
    );
    let team = p.g.get(&group, &owner).json();
    assert_eq!(team["groupJid"], PROJECT);
    assert_eq!(team["participantCount"], 5);
}

#[test]
fn admin_backfill_restates_chat_settings_as_phone_changes() {
    let mut o = Options::default();
    o.plugins.push("chats".into());
    let p = Platform::start(o);
    let owner = p.owner("org_adm_chats");
    let s = p.g.working_session(&owner);
    let chat = format!("/sessions/{s}/chats/{ALICE_PN}");
    wait_until(Duration::from_secs(20), || {
        p.g.get(&chat, &owner).status == 200
    });
    let r = p.g.call(
        "PATCH",
        &chat,
        &owner,
        Some(json!({"archived": true, "mutedUntil": -1, "sync": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let r = p.call(
        "POST",
        &format!("/admin/sessions/{s}:backfill"),
        json!({"scope": ["chats"]}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let done = p.finished_backfill(&s);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["chats"], WORLD_CHATS);
    assert_eq!(done["contacts"], 0);
    assert_eq!(done["groups"], 0);
    assert_eq!(done["groupMembers"], 0);

    // Subscribers get the chat's settings as WhatsApp holds them, as a phone change.
    let mut restated = Vec::new();
    let ok = wait_for(Duration::from_secs(20), || {
        let r = p.g.get(&format!("/sessions/{s}/chaos-events"), &owner);
        assert_eq!(r.status, 200, "{}", r.text());
        restated = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "chats.update" && e["payload"]["source"] == "phone")
            .map(|e| e["payload"].clone())
            .collect();
        !restated.is_empty()
    });
    assert!(ok, "no chats.update from the backfill");
    assert_eq!(restated.len(), 1, "{restated:?}");
    assert_eq!(restated[0]["jid"], ALICE_PN);
    assert_eq!(restated[0]["archived"], true);
    assert_eq!(restated[0]["mutedUntil"], -1);
    assert!(restated[0].get("pinned").is_none(), "{}", restated[0]);
    let stored = p.g.get(&chat, &owner).json();
    assert_eq!(stored["archived"], true);
    assert_eq!(stored["mutedUntil"], -1);
}

#[test]
fn admin_backfill_is_one_at_a_time_and_ends_interrupted_by_a_stop_or_a_crash() {
    let mut p = Platform::start(sandbox_delay(4_000));
    let owner = p.owner("org_adm_stop");
    let s = p.g.working_session(&owner);
    let first = p.call("POST", &format!("/admin/sessions/{s}:backfill"), json!({}));
    assert_eq!(first.status, 202, "{}", first.text());
    let again = p.call(
        "POST",
        &format!("/admin/sessions/{s}:backfill"),
        json!({"scope": ["chats"]}),
    );
    again.assert_error(409, "conflict");
    let running = p.get(&format!("/admin/sessions/{s}/backfill")).json();
    assert_eq!(running["id"], first.json()["id"]);
    assert_eq!(running["status"], "running");

    // A graceful stop marks it interrupted.
    p.g.restart();
    let after_stop = p.get(&format!("/admin/sessions/{s}/backfill"));
    assert_eq!(after_stop.status, 200, "{}", after_stop.text());
    let job = after_stop.json();
    assert_eq!(job["id"], first.json()["id"]);
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], "interrupted");
    assert!(job["finishedAt"].is_u64());

    // A crash leaves it running on disk; the next start marks it interrupted.
    // The session reconnects in the background; until then a backfill is 501.
    let mut second = None;
    let started = wait_for(Duration::from_secs(30), || {
        let r = p.call("POST", &format!("/admin/sessions/{s}:backfill"), json!({}));
        if r.status == 202 {
            second = Some(r);
            return true;
        }
        r.assert_error(501, "not_implemented");
        false
    });
    assert!(started, "the session never reconnected");
    let second = second.unwrap();
    p.g.crash_restart();
    let job = p.get(&format!("/admin/sessions/{s}/backfill")).json();
    assert_eq!(job["id"], second.json()["id"]);
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], "interrupted");

    // Deleting the session removes its jobs with it.
    assert_eq!(p.g.delete(&format!("/sessions/{s}"), &owner).status, 204);
    p.get(&format!("/admin/sessions/{s}/backfill"))
        .assert_error(404, "not_found");
}

#[test]
fn admin_routes_refuse_api_keys_and_organization_roles() {
    let p = Platform::start(Options::default());
    let owner = p.owner("org_adm_wall");
    let s = p.g.create_session(&owner, json!({}));
    let key = p.g.key("org_adm_wall", &["read", "send", "manage"]);
    let admin_role = sign(&p.key, &claims("org_adm_wall", "admin"));
    let routes = [
        ("GET", "/admin/sessions".to_owned()),
        ("GET", format!("/admin/sessions/{s}")),
        ("PATCH", format!("/admin/sessions/{s}")),
        ("POST", format!("/admin/sessions/{s}:backfill")),
        ("GET", format!("/admin/sessions/{s}/backfill")),
    ];
    for token in [&key, &owner, &admin_role] {
        for (method, path) in &routes {
            let body = (*method != "GET").then(|| json!({"ratePerMin": 5}));
            let r = p.g.call(method, path, token, body);
            r.assert_error(403, "forbidden");
        }
    }
    // Nothing changed.
    assert_eq!(
        p.get(&format!("/admin/sessions/{s}")).json()["ratePerMin"],
        20
    );
}

#[test]
fn admin_events_ticket_streams_every_organization() {
    let p = Platform::start(Options::default());
    let (a, b) = (p.owner("org_mon_a"), p.owner("org_mon_b"));
    let r = p.call(
        "POST",
        "/admin/realtime/ticket",
        json!({"events": ["session.status"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    let ticket = t["ticket"].as_str().unwrap();
    assert!(ticket.starts_with("rtt_"), "{t}");
    assert!(t["url"].as_str().unwrap().contains(ticket), "{t}");
    assert!(t["expiresAt"].is_u64());
    let stream = crate::realtime::WsClient::opened(t["url"].as_str().unwrap());

    let sa = p.g.create_session(&a, json!({"start": true}));
    let sb = p.g.create_session(&b, json!({"start": true}));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let f = stream.frame();
        assert_eq!(f["event"], "session.status", "{f}");
        seen.insert(f["organization"].as_str().unwrap().to_owned());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["org_mon_a", "org_mon_b"]
    );

    // One organization's, or one session's (any organization), stream.
    let one = p.call(
        "POST",
        "/admin/realtime/ticket",
        json!({"organization": "org_mon_a", "sessionId": sa}),
    );
    assert_eq!(one.status, 200, "{}", one.text());
    let theirs = p.call("POST", "/admin/realtime/ticket", json!({"sessionId": sb}));
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    let mismatch = p.call(
        "POST",
        "/admin/realtime/ticket",
        json!({"organization": "org_mon_a", "sessionId": sb}),
    );
    mismatch.assert_error(422, "validation_error");
    assert_eq!(mismatch.json()["error"]["details"]["field"], "sessionId");
    p.call("POST", "/admin/realtime/ticket", json!({"org": "x"}))
        .assert_error(422, "validation_error");
    p.call(
        "POST",
        "/admin/realtime/ticket",
        json!({"events": ["nope"]}),
    )
    .assert_error(422, "validation_error");
    // Organizations' callers cannot mint one.
    let key = p.g.key("org_mon_a", &["read", "send", "manage"]);
    for token in [&a, &key] {
        p.g.post("/admin/realtime/ticket", token, json!({}))
            .assert_error(403, "forbidden");
    }
}
