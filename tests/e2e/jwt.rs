//! Person logins (JWT via JWKS) and the attacks a gateway meets, API keys managed over
//! REST, and the `/admin` gate. The test serves a real JWKS on loopback and signs real
//! tokens with real RSA, P-256 and Ed25519 keys.

use crate::identity::*;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

struct Dashboard {
    jwks: JwksServer,
    rsa: SigningKey,
    ec: SigningKey,
    ed: SigningKey,
}

fn dashboard() -> Dashboard {
    let (rsa, ec, ed) = (rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1"));
    let jwks = JwksServer::start(&[&rsa, &ec, &ed]);
    Dashboard { jwks, rsa, ec, ed }
}

fn gateway_for(d: &Dashboard, ttl: u64, min_refresh: u64) -> Gateway {
    Gateway::with(Options {
        extra_toml: d.jwks.auth_toml(ttl, min_refresh),
        ..Options::default()
    })
}

/// One case of the battery: a request and the answer it must get.
struct Case {
    name: &'static str,
    headers: Vec<(String, String)>,
    method: &'static str,
    path: String,
    status: u16,
    code: Option<&'static str>,
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("authorization".into(), format!("Bearer {token}"))]
}

fn run(g: &Gateway, cases: &[Case]) {
    let mut passed = 0;
    for (i, c) in cases.iter().enumerate() {
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = (c.method != "GET" && c.method != "DELETE").then(|| b"{}".to_vec());
        let r = g.raw(c.method, &format!("/api/v1{}", c.path), &headers, body);
        assert_ne!(
            r.status,
            500,
            "case {} ({}) answered 500: {}",
            i + 1,
            c.name,
            r.text()
        );
        match c.code {
            Some(code) => {
                r.assert_error(c.status, code);
            }
            None => assert_eq!(
                r.status,
                c.status,
                "case {} ({}): {}",
                i + 1,
                c.name,
                r.text()
            ),
        }
        passed += 1;
        println!(
            "case {:>2}: {:<55} → {} {}",
            i + 1,
            c.name,
            r.status,
            c.code.unwrap_or("ok")
        );
    }
    println!(
        "JWT/API-key security battery: {passed} of {} cases passed",
        cases.len()
    );
}

#[test]
fn security_battery() {
    let d = dashboard();
    let g = gateway_for(&d, 300, 1);
    let member_org = "org_battery";
    let owner = sign(&d.rsa, &claims(member_org, "owner"));
    let s = g.create_session(&owner, json!({"label": "battery"}));
    let notes = format!("/sessions/{s}/notes");

    let mut expired = claims(member_org, "owner");
    expired["exp"] = json!(now() - 3600);
    let mut within_leeway = claims(member_org, "owner");
    within_leeway["exp"] = json!(now() - 5);
    let mut future = claims(member_org, "owner");
    future["nbf"] = json!(now() + 3600);
    let mut wrong_iss = claims(member_org, "owner");
    wrong_iss["iss"] = json!("https://evil.test");
    let mut wrong_aud = claims(member_org, "owner");
    wrong_aud["aud"] = json!("someone-else");
    let mut no_org = claims(member_org, "owner");
    no_org.as_object_mut().unwrap().remove("org");
    // Configured means required: leaving the claim out is no way around the check.
    let mut no_iss = claims(member_org, "owner");
    no_iss.as_object_mut().unwrap().remove("iss");
    let mut no_aud = claims(member_org, "owner");
    no_aud.as_object_mut().unwrap().remove("aud");
    // An organization id that would break the storage key layout (NUL) or is not printable.
    let mut nul_org = claims(member_org, "owner");
    nul_org["org"] = json!("org_battery\u{0}x");
    let mut spaced_org = claims(member_org, "owner");
    spaced_org["org"] = json!("org battery");

    // alg none: a header that names no algorithm and an empty signature.
    let none = forge(
        &json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}),
        &claims(member_org, "owner"),
        b"",
    );
    // HS256 "signed" with the RSA public key as the HMAC secret (key confusion).
    let confusion = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}),
        &claims(member_org, "owner"),
        d.rsa.public_pem.as_bytes(),
    );
    // A valid token whose payload is swapped for another organization's.
    let tampered = {
        let good = sign(&d.rsa, &claims(member_org, "owner"));
        let parts: Vec<&str> = good.split('.').collect();
        use base64::Engine as _;
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(claims("org_victim", "owner").to_string());
        format!("{}.{}.{}", parts[0], evil, parts[2])
    };
    let unknown_kid = {
        let stranger = rsa_key("rsa-stranger");
        sign(&stranger, &claims(member_org, "owner"))
    };
    let key = g.key(member_org, &["read"]);
    let revoked = g.key(member_org, &["read"]);
    let revoked_id = g
        .admin_call("GET", "/admin/api-keys?organization=org_battery", None)
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"].as_str().is_some_and(|p| revoked.starts_with(p)))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        g.admin_call("DELETE", &format!("/admin/api-keys/{revoked_id}"), None)
            .status,
        204
    );

    let member = sign(&d.ec, &claims(member_org, "member"));
    let long = "A".repeat(7000);
    let huge = "A".repeat(40_000);
    let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];

    let cases = vec![
        Case {
            name: "RS256 token from the JWKS",
            headers: bearer(&owner),
            method: "GET",
            path: notes.clone(),
            status: 200,
            code: None,
        },
        Case {
            name: "ES256 token from the JWKS",
            headers: bearer(&sign(&d.ec, &claims(member_org, "owner"))),
            method: "GET",
            path: notes.clone(),
            status: 200,
            code: None,
        },
        Case {
            name: "EdDSA token from the JWKS",
            headers: bearer(&sign(&d.ed, &claims(member_org, "admin"))),
            method: "GET",
            path: notes.clone(),
            status: 200,
            code: None,
        },
        Case {
            name: "expired 5 s ago, within the leeway",
            headers: bearer(&sign(&d.rsa, &within_leeway)),
            method: "GET",
            path: notes.clone(),
            status: 200,
            code: None,
        },
        Case {
            name: "no credential",
            headers: vec![],
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "Bearer with garbage",
            headers: bearer("not-a-token"),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "Bearer with a garbage JWT shape",
            headers: bearer("eyJhbGciOi.eyJzdWIi.sig"),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "alg: none",
            headers: bearer(&none),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "HS256 signed with the RSA public key as secret",
            headers: bearer(&confusion),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "tampered payload",
            headers: bearer(&tampered),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "expired",
            headers: bearer(&sign(&d.rsa, &expired)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "not yet valid (nbf in an hour)",
            headers: bearer(&sign(&d.rsa, &future)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "wrong issuer",
            headers: bearer(&sign(&d.rsa, &wrong_iss)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "wrong audience",
            headers: bearer(&sign(&d.rsa, &wrong_aud)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "no issuer claim while an issuer is configured",
            headers: bearer(&sign(&d.rsa, &no_iss)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "no audience claim while an audience is configured",
            headers: bearer(&sign(&d.rsa, &no_aud)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "organization id with a NUL byte",
            headers: bearer(&sign(&d.rsa, &nul_org)),
            method: "GET",
            path: "/chaos/ok".into(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "organization id with a space",
            headers: bearer(&sign(&d.rsa, &spaced_org)),
            method: "GET",
            path: "/chaos/ok".into(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "no organization claim",
            headers: bearer(&sign(&d.rsa, &no_org)),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "unknown kid",
            headers: bearer(&unknown_kid),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "member role on a manage route",
            headers: bearer(&member),
            method: "GET",
            path: "/sessions".into(),
            status: 403,
            code: Some("forbidden"),
        },
        Case {
            name: "member role on a read route",
            headers: bearer(&member),
            method: "GET",
            path: notes.clone(),
            status: 200,
            code: None,
        },
        Case {
            name: "org role on an /admin route",
            headers: bearer(&owner),
            method: "GET",
            path: "/admin/sessions".into(),
            status: 403,
            code: Some("forbidden"),
        },
        Case {
            name: "API key on an /admin route",
            headers: bearer(&key),
            method: "GET",
            path: "/admin/sessions".into(),
            status: 403,
            code: Some("forbidden"),
        },
        Case {
            name: "revoked API key",
            headers: bearer(&revoked),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "API key without the Bearer scheme",
            headers: h("authorization", &key),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "API key under the Token scheme",
            headers: h("authorization", &format!("Token {key}")),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "x-api-key carrying 'Bearer wa_…'",
            headers: h("x-api-key", &format!("Bearer {key}")),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "x-api-key carrying a JWT",
            headers: h("x-api-key", &owner),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "API key in x-api-key",
            headers: h("x-api-key", &key),
            method: "GET",
            path: notes.clone(),
            status: 200,
            code: None,
        },
        Case {
            name: "very long bearer (7 KB)",
            headers: bearer(&format!("eyJ{long}.a.b")),
            method: "GET",
            path: notes.clone(),
            status: 401,
            code: Some("unauthorized"),
        },
        Case {
            name: "very long header (40 KB)",
            headers: bearer(&huge),
            method: "GET",
            path: notes.clone(),
            status: 431,
            code: Some("payload_too_large"),
        },
        Case {
            name: "another org's token on this org's session",
            headers: bearer(&sign(&d.rsa, &claims("org_other", "owner"))),
            method: "GET",
            path: notes.clone(),
            status: 404,
            code: Some("not_found"),
        },
    ];
    run(&g, &cases);
    assert!(!g.log().contains(&owner), "tokens must never be logged");
}

#[test]
fn unknown_kid_is_accepted_once_the_jwks_rotates_to_include_it() {
    let d = dashboard();
    let g = gateway_for(&d, 300, 1);
    let new_key = ec_key("ec-2");
    let token = sign(&new_key, &claims("org_rotate", "owner"));
    g.get("/sessions", &token).assert_error(401, "unauthorized");
    d.jwks.publish(&[&d.rsa, &d.ec, &d.ed, &new_key]);
    // The next refresh is allowed once the minimum interval has passed.
    std::thread::sleep(Duration::from_millis(1100));
    let r = g.get("/sessions", &token);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([]));
}

#[test]
fn a_key_removed_from_the_jwks_stops_working_after_the_ttl() {
    let d = dashboard();
    let g = gateway_for(&d, 1, 1);
    let token = sign(&d.ed, &claims("org_remove", "owner"));
    assert_eq!(g.get("/sessions", &token).status, 200);
    d.jwks.publish(&[&d.rsa, &d.ec]);
    std::thread::sleep(Duration::from_millis(1200));
    g.get("/sessions", &token).assert_error(401, "unauthorized");
    // The remaining keys still work.
    assert_eq!(
        g.get("/sessions", &sign(&d.rsa, &claims("org_remove", "owner")))
            .status,
        200
    );
}

#[test]
fn keys_are_not_trusted_forever_while_the_jwks_is_down() {
    let d = dashboard();
    let g = Gateway::with(Options {
        extra_toml: format!("{}jwks_max_stale_secs = 1\n", d.jwks.auth_toml(1, 1)),
        ..Options::default()
    });
    let token = sign(&d.rsa, &claims("org_stale", "owner"));
    assert_eq!(g.get("/chaos/ok", &token).status, 200);
    d.jwks.set_down(true);
    // Past the TTL and the grace period the keys could not be confirmed: refused.
    let refused = wait_for(Duration::from_secs(10), || {
        g.get("/chaos/ok", &token).status == 401
    });
    assert!(refused, "a key stayed trusted while its JWKS was down");
    g.get("/chaos/ok", &token).assert_error(401, "unauthorized");
    d.jwks.set_down(false);
    let back = wait_for(Duration::from_secs(10), || {
        g.get("/chaos/ok", &token).status == 200
    });
    assert!(
        back,
        "the key did not come back once the JWKS answered again"
    );
}

#[test]
fn nobody_mints_a_key_with_permissions_their_role_lacks() {
    let d = dashboard();
    let g = Gateway::with(Options {
        extra_toml: format!(
            "{}[auth.roles]\nlead = [\"read\", \"manage\"]\n",
            d.jwks.auth_toml(300, 1)
        ),
        ..Options::default()
    });
    let lead = sign(&d.rsa, &claims("org_roles", "lead"));
    let r = g.post(
        "/api-keys",
        &lead,
        json!({"name": "escalate", "permissions": ["read", "send"]}),
    );
    r.assert_error(403, "forbidden");
    assert_eq!(r.json()["error"]["details"]["field"], "permissions");
    let ok = g.post(
        "/api-keys",
        &lead,
        json!({"name": "fine", "permissions": ["read"]}),
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.json()["permissions"], json!(["read"]));
}

#[test]
fn a_flood_of_unknown_kids_does_not_hammer_the_jwks() {
    let d = dashboard();
    let interval = Duration::from_secs(2);
    let g = gateway_for(&d, 300, interval.as_secs());
    let stranger = rsa_key("unused");
    let tokens: Vec<String> = (0..200)
        .map(|i| {
            let mut k = stranger.clone();
            k.kid = format!("bogus-{i}");
            sign(&k, &claims("org_flood", "owner"))
        })
        .collect();
    // Let the start-up fetch age past the interval, so the flood may cause one refresh.
    std::thread::sleep(interval + Duration::from_millis(100));
    let before = d.jwks.hits();
    let started = std::time::Instant::now();
    for t in &tokens {
        g.get("/sessions", t).assert_error(401, "unauthorized");
    }
    let took = started.elapsed();
    let fetched = d.jwks.hits() - before;
    let allowed = 1 + (took.as_millis() / interval.as_millis()) as usize;
    println!(
        "JWKS fetches during {} unknown-kid tokens in {took:?}: {fetched} (at most {allowed} allowed)",
        tokens.len()
    );
    assert!(fetched >= 1, "an unknown kid should trigger a refresh");
    assert!(
        fetched <= allowed,
        "unknown kids caused {fetched} JWKS fetches"
    );
    // Known keys keep working throughout.
    assert_eq!(
        g.get("/sessions", &sign(&d.rsa, &claims("org_flood", "owner")))
            .status,
        200
    );
}

#[test]
fn super_admin_reaches_admin_routes_across_organizations() {
    let d = dashboard();
    let g = gateway_for(&d, 300, 1);
    let a = sign(&d.rsa, &claims("org_a", "owner"));
    let b = sign(&d.rsa, &claims("org_b", "admin"));
    let sa = g.create_session(&a, json!({"label": "a"}));
    let sb = g.create_session(&b, json!({"label": "b"}));
    let mut admin_claims = claims("", "member");
    admin_claims.as_object_mut().unwrap().remove("org");
    admin_claims["platform_role"] = json!("super_admin");
    let admin = sign(&d.ed, &admin_claims);
    let r = g.get("/admin/sessions", &admin);
    assert_eq!(r.status, 200, "{}", r.text());
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&sa) && ids.contains(&sb), "{ids:?}");
    // Org lists stay within their organization.
    let la = g.get("/sessions", &a).json();
    assert_eq!(la["data"].as_array().unwrap().len(), 1);
    assert_eq!(la["data"][0]["id"], sa);
    // A super_admin without an org holds no org capabilities.
    g.get("/sessions", &admin).assert_error(403, "forbidden");
    // The instance that served a cross-organization admin call is not kept for reuse;
    // an organization's ordinary call leaves one warm.
    let idle = |plugin: &str| {
        g.admin_call("GET", "/admin/plugins", None).json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == plugin)
            .unwrap()["idleInstances"]
            .as_u64()
            .unwrap()
    };
    let before = idle("admin");
    assert_eq!(g.get("/admin/sessions", &admin).status, 200);
    assert_eq!(idle("admin"), before, "an admin call's instance was kept");
    let before = idle("sessions");
    let c = sign(&d.rsa, &claims("org_c", "owner"));
    assert_eq!(g.get("/sessions", &c).status, 200);
    assert_eq!(idle("sessions"), before + 1);
}

#[test]
fn api_keys_over_rest() {
    let d = dashboard();
    let g = gateway_for(&d, 300, 1);
    let owner = sign(&d.rsa, &claims("org_keys_a", "owner"));
    let other_owner = sign(&d.rsa, &claims("org_keys_b", "owner"));
    let member = sign(&d.rsa, &claims("org_keys_a", "member"));

    let r = g.post(
        "/api-keys",
        &owner,
        json!({"name": "ci bot", "permissions": ["read", "send"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("wa_"));
    assert_eq!(created["name"], "ci bot");
    assert_eq!(created["permissions"], json!(["read", "send"]));
    assert!(created["createdAt"].as_u64().is_some());
    assert_eq!(created["lastUsedAt"], Value::Null);

    // The key works, and its use is recorded.
    assert_eq!(g.get("/chaos/ok", &secret).status, 200);
    let list = g.get("/api-keys", &owner);
    assert_eq!(list.status, 200);
    assert!(
        !list.text().contains(&secret),
        "the secret is shown once only"
    );
    let listed = &list.json()["data"][0];
    assert_eq!(listed["id"], id);
    assert_eq!(listed["name"], "ci bot");
    assert!(listed.get("key").is_none());
    assert!(listed["lastUsedAt"].as_u64().is_some());
    assert_eq!(list.json()["nextCursor"], Value::Null);

    // Another organization neither sees nor revokes it.
    assert_eq!(g.get("/api-keys", &other_owner).json()["data"], json!([]));
    g.delete(&format!("/api-keys/{id}"), &other_owner)
        .assert_error(404, "not_found");
    assert_eq!(g.get("/chaos/ok", &secret).status, 200);

    // Members and API keys cannot manage keys.
    g.post(
        "/api-keys",
        &member,
        json!({"name": "x", "permissions": ["read"]}),
    )
    .assert_error(403, "forbidden");
    let manage_key = g.key("org_keys_a", &["manage"]);
    g.get("/api-keys", &manage_key)
        .assert_error(403, "forbidden");

    // Bad input.
    g.post(
        "/api-keys",
        &owner,
        json!({"name": "x", "permissions": ["root"]}),
    )
    .assert_error(400, "validation_error");
    g.post("/api-keys", &owner, json!({"permissions": ["read"]}))
        .assert_error(400, "validation_error");
    g.post("/api-keys", &owner, json!({"name": "x", "permissions": []}))
        .assert_error(400, "validation_error");

    // Revoke.
    assert_eq!(g.delete(&format!("/api-keys/{id}"), &owner).status, 204);
    g.get("/chaos/ok", &secret)
        .assert_error(401, "unauthorized");
    g.delete(&format!("/api-keys/{id}"), &owner)
        .assert_error(404, "not_found");
}

#[test]
fn jwks_from_a_file_works_too() {
    let rsa = rsa_key("file-1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [rsa.jwk.clone()]}).to_string()).unwrap();
    let g = Gateway::with(Options {
        extra_toml: format!("[auth]\njwks_url = {:?}\n", path.display().to_string()),
        ..Options::default()
    });
    let mut c = claims("org_file", "owner");
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(g.get("/sessions", &sign(&rsa, &c)).status, 200);
}
