//! Unit tests of the routing table: parameters, custom methods, precedence, conflicts.

use super::*;

fn table(routes: &[(&str, &str, &str)]) -> Result<RouteTable<String>, RouteConflict> {
    let mut b = RouteTableBuilder::default();
    for (m, p, owner) in routes {
        b.add(Method::parse(m).unwrap(), p, format!("{m} {p}"), owner)?;
    }
    b.build()
}

fn contacts() -> RouteTable<String> {
    table(&[
        ("GET", "/sessions", "sessions"),
        ("POST", "/sessions", "sessions"),
        ("GET", "/sessions/{session}", "sessions"),
        ("DELETE", "/sessions/{session}", "sessions"),
        ("POST", "/sessions/{session}:start", "sessions"),
        ("POST", "/sessions/{session}:stop", "sessions"),
        ("GET", "/sessions/{session}/contacts", "contacts"),
        ("GET", "/sessions/{session}/contacts/check", "contacts"),
        ("GET", "/sessions/{session}/contacts/blocked", "contacts"),
        ("GET", "/sessions/{session}/contacts/{lid}", "contacts"),
        (
            "GET",
            "/sessions/{session}/contacts/{jid}/picture",
            "contacts",
        ),
        (
            "POST",
            "/sessions/{session}/contacts/{jid}/block",
            "contacts",
        ),
        ("POST", "/groups:join", "groups"),
    ])
    .unwrap()
}

#[test]
fn params_are_named_per_route_and_decoded() {
    let t = contacts();
    let m = t
        .find("GET", "/sessions/S1/contacts/205227043110953%40lid")
        .unwrap();
    assert_eq!(m.target, "GET /sessions/{session}/contacts/{lid}");
    assert_eq!(
        m.params,
        vec![
            ("session".to_owned(), "S1".to_owned()),
            ("lid".to_owned(), "205227043110953@lid".to_owned())
        ]
    );
    let m = t
        .find(
            "GET",
            "/sessions/S1/contacts/14155550123@s.whatsapp.net/picture",
        )
        .unwrap();
    assert_eq!(
        m.params[1],
        ("jid".to_owned(), "14155550123@s.whatsapp.net".to_owned())
    );
}

#[test]
fn static_beats_param_and_verbs_beat_bare_params() {
    let t = contacts();
    assert_eq!(
        t.find("GET", "/sessions/S/contacts/check").unwrap().target,
        "GET /sessions/{session}/contacts/check"
    );
    let m = t.find("POST", "/sessions/01ABC:start").unwrap();
    assert_eq!(m.target, "POST /sessions/{session}:start");
    assert_eq!(m.params[0].1, "01ABC");
    let m = t.find("GET", "/sessions/01ABC").unwrap();
    assert_eq!(m.target, "GET /sessions/{session}");
    // An unknown custom method does not fall back to the bare parameter...
    assert!(matches!(
        t.find("POST", "/sessions/01ABC:explode"),
        Err(RouteError::NotFound(_))
    ));
    // ...but a JID's device part is not a custom method.
    let m = t
        .find("GET", "/sessions/S/contacts/14155550123:12@s.whatsapp.net")
        .unwrap();
    assert_eq!(m.params[1].1, "14155550123:12@s.whatsapp.net");
    assert!(t.find("POST", "/groups:join").is_ok());
}

#[test]
fn not_found_and_method_not_allowed() {
    let t = contacts();
    assert!(matches!(
        t.find("GET", "/nope"),
        Err(RouteError::NotFound(_))
    ));
    assert!(matches!(
        t.find("GET", "/sessions/"),
        Err(RouteError::NotFound(_))
    ));
    match t.find("PUT", "/sessions/S") {
        Err(RouteError::MethodNotAllowed { allow, .. }) => {
            assert_eq!(allow, vec![Method::Get, Method::Delete])
        }
        other => panic!("{other:?}"),
    }
    // Unknown methods are 405 too when the path exists.
    assert!(matches!(
        t.find("BREW", "/sessions"),
        Err(RouteError::MethodNotAllowed { .. })
    ));
}

#[test]
fn bad_percent_encoding_is_reported() {
    let t = contacts();
    assert!(matches!(
        t.find("GET", "/sessions/%FF%FE/contacts"),
        Err(RouteError::BadEncoding(p)) if p == "session"
    ));
}

#[test]
fn duplicate_routes_name_both_owners() {
    let err = table(&[
        ("GET", "/notes/{id}", "alpha"),
        ("GET", "/notes/{note}", "beta"),
    ])
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("alpha") && msg.contains("beta"), "{msg}");
    // Same path, other method: fine.
    assert!(table(&[("GET", "/n/{id}", "a"), ("DELETE", "/n/{x}", "b")]).is_ok());
}

#[test]
fn templates_are_validated() {
    for bad in [
        "", "/", "nope", "/a//b", "/a/", "/a:x/b", "/{a}/{a}", "/{1a}", "/{a", "/a b", "/{*rest}",
        "/x/{a}:",
    ] {
        assert!(
            RouteTemplate::parse(bad).is_err(),
            "{bad:?} should be refused"
        );
    }
    assert!(RouteTemplate::parse("/sessions/{session}:logout").is_ok());
    assert!(RouteTemplate::parse("/groups:join").is_ok());
}
