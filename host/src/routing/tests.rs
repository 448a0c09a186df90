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

/// Property tests: random templates, values and paths. The router never panics, a path
/// built from a template and values matches it back with exactly those values decoded,
/// and no value (`/`, `%2F`, `:`, `?`, `#`, non-ASCII…) escapes its parameter.
mod props {
    use super::*;
    use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
    use proptest::prelude::*;

    /// What a path segment cannot carry raw (RFC 3986), plus `/` and `%`: `:` `@` `!`
    /// `$` `&` `'` `(` `)` `*` `+` `,` `;` `=` stay raw, as clients send them.
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'/')
        .add(b'%')
        .add(b'\\')
        .add(b'^')
        .add(b'|')
        .add(b'[')
        .add(b']');

    #[derive(Debug, Clone)]
    enum Seg {
        Static(String),
        Param(String),
    }

    /// A valid template: segments, and an optional custom method on the last one.
    #[derive(Debug, Clone)]
    struct Tpl {
        segs: Vec<Seg>,
        verb: Option<String>,
    }

    impl Tpl {
        fn text(&self) -> String {
            let mut s = String::new();
            for seg in &self.segs {
                s.push('/');
                match seg {
                    Seg::Static(x) => s.push_str(x),
                    Seg::Param(n) => {
                        s.push('{');
                        s.push_str(n);
                        s.push('}');
                    }
                }
            }
            if let Some(v) = &self.verb {
                s.push(':');
                s.push_str(v);
            }
            s
        }

        fn param_names(&self) -> Vec<String> {
            self.segs
                .iter()
                .filter_map(|s| match s {
                    Seg::Param(n) => Some(n.clone()),
                    Seg::Static(_) => None,
                })
                .collect()
        }

        /// The path for `values` (one per parameter), each encoded with `set`.
        fn path(&self, values: &[String], set: &'static AsciiSet) -> String {
            let mut values = values.iter();
            let mut s = String::new();
            for seg in &self.segs {
                s.push('/');
                match seg {
                    Seg::Static(x) => s.push_str(x),
                    Seg::Param(_) => {
                        let v = values.next().expect("one value per parameter");
                        s.extend(utf8_percent_encode(v, set));
                    }
                }
            }
            if let Some(v) = &self.verb {
                s.push(':');
                s.push_str(v);
            }
            s
        }

        fn ends_with_bare_param(&self) -> bool {
            self.verb.is_none() && matches!(self.segs.last(), Some(Seg::Param(_)))
        }
    }

    fn static_segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._~-]{1,8}"
    }

    fn template() -> impl Strategy<Value = Tpl> {
        (
            prop::collection::vec(prop::option::of(static_segment()), 1..6),
            prop::option::of("[A-Za-z0-9._~-]{1,8}"),
            "[A-Za-z_][A-Za-z0-9_]{0,5}",
        )
            .prop_map(|(segs, verb, base)| {
                // Parameter names are unique: a random stem and the position.
                let segs = segs
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| match s {
                        Some(x) => Seg::Static(x),
                        None => Seg::Param(format!("{base}{i}")),
                    })
                    .collect();
                Tpl { segs, verb }
            })
    }

    /// Non-empty values biased towards what could break out of a segment.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{1,12}",
            "[a-z0-9/:%?#@.+ ]{1,12}",
            Just("%2F".to_owned()),
            Just("a/b".to_owned()),
            Just("..".to_owned()),
            Just("x:start".to_owned()),
            Just("14155550123:12@s.whatsapp.net".to_owned()),
            Just("205227043110953@lid".to_owned()),
            ".{1,6}",
        ]
    }

    fn template_and_values() -> impl Strategy<Value = (Tpl, Vec<String>)> {
        template().prop_flat_map(|t| {
            let n = t.param_names().len();
            (Just(t), prop::collection::vec(value(), n))
        })
    }

    fn single(t: &Tpl) -> RouteTable<()> {
        let mut b = RouteTableBuilder::default();
        b.add(Method::Get, &t.text(), (), "prop")
            .unwrap_or_else(|e| panic!("generated template {:?} refused: {e}", t.text()));
        b.build()
            .unwrap_or_else(|e| panic!("one template {:?} conflicts: {e}", t.text()))
    }

    fn named(t: &Tpl, values: &[String]) -> Vec<(String, String)> {
        t.param_names()
            .into_iter()
            .zip(values.iter().cloned())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any string: parsing never panics, and what parses is stable.
        #[test]
        fn template_parsing_never_panics(s in "\\PC{0,40}|/[a-z{}:/_*.-]{0,30}") {
            if let Ok(t) = RouteTemplate::parse(&s) {
                prop_assert_eq!(t.as_str(), s.as_str());
                let again = RouteTemplate::parse(t.as_str()).unwrap();
                prop_assert_eq!(again.params(), t.params());
            }
        }

        /// Every generated (valid) template is accepted and names its parameters in order.
        #[test]
        fn valid_templates_parse(t in template()) {
            let parsed = RouteTemplate::parse(&t.text());
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", t.text(), parsed);
            let (parsed, names) = (parsed.unwrap(), t.param_names());
            prop_assert_eq!(parsed.params(), names.as_slice());
        }

        /// Values fully percent-encoded always come back exactly, each in its own parameter.
        #[test]
        fn encoded_values_round_trip((t, values) in template_and_values()) {
            let table = single(&t);
            let path = t.path(&values, NON_ALPHANUMERIC);
            let m = table.find("GET", &path);
            prop_assert!(m.is_ok(), "{} did not match {}: {:?}", path, t.text(), m.err());
            let m = m.unwrap();
            prop_assert_eq!(m.template.as_str(), t.text());
            prop_assert_eq!(m.params, named(&t, &values));
        }

        /// Values encoded the way clients do (`:` and `@` raw, `/` `%` `?` `#` encoded) come
        /// back exactly too, except the one documented case: a last segment ending in
        /// `:verb` on a route whose last segment is a bare parameter is an unknown custom
        /// method (404), never that parameter with the suffix.
        #[test]
        fn client_encoded_values_round_trip((t, values) in template_and_values()) {
            let table = single(&t);
            let path = t.path(&values, SEGMENT);
            let last = path.rsplit('/').next().unwrap_or_default();
            let unknown_verb = t.ends_with_bare_param()
                && last.rsplit_once(':').is_some_and(|(_, v)| looks_like_verb(v));
            match table.find("GET", &path) {
                Ok(m) => {
                    prop_assert!(!unknown_verb, "{} matched although it ends in a verb", path);
                    prop_assert_eq!(m.template.as_str(), t.text());
                    prop_assert_eq!(m.params, named(&t, &values));
                }
                Err(RouteError::NotFound(_)) => {
                    prop_assert!(unknown_verb, "{} did not match {}", path, t.text());
                }
                Err(e) => prop_assert!(false, "{} against {}: {:?}", path, t.text(), e),
            }
        }

        /// Several random templates: building never panics (a conflict is an error), finding
        /// any path never panics, and a path built from values matches a fixpoint: rebuilding
        /// it from the matched route's template and decoded parameters finds the same route
        /// with the same parameters (no value leaked into a neighbour or another route).
        #[test]
        fn tables_of_random_routes_never_panic_and_matches_are_fixpoints(
            routes in prop::collection::vec((template(), 0..5usize), 1..8),
            probes in prop::collection::vec("/\\PC{0,30}|(/[a-z0-9.~:%]{0,6}){1,6}", 0..8),
            values in prop::collection::vec(value(), 6),
        ) {
            let methods = [Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete];
            let mut b = RouteTableBuilder::default();
            for (i, (t, m)) in routes.iter().enumerate() {
                prop_assert!(b.add(methods[*m], &t.text(), i, "prop").is_ok());
            }
            let Ok(table) = b.build() else { return Ok(()) };
            let verbs = ["GET", "POST", "PUT", "PATCH", "DELETE", "BREW"];
            for path in &probes {
                for method in verbs {
                    let _ = table.find(method, path);
                }
            }
            for (t, _) in &routes {
                let n = t.param_names().len();
                for set in [NON_ALPHANUMERIC, SEGMENT] {
                    let path = t.path(&values[..n], set);
                    for method in verbs {
                        let Ok(m) = table.find(method, &path) else { continue };
                        let matched = &routes[*m.target].0;
                        prop_assert_eq!(m.template.as_str(), matched.text());
                        prop_assert_eq!(m.params.len(), matched.param_names().len());
                        let decoded: Vec<String> = m.params.iter().map(|(_, v)| v.clone()).collect();
                        let again_path = matched.path(&decoded, NON_ALPHANUMERIC);
                        let again = table.find(method, &again_path);
                        prop_assert!(again.is_ok(), "{} → {} no longer matches", path, again_path);
                        let again = again.unwrap();
                        prop_assert_eq!(*again.target, *m.target, "{} → {} moved to another route", path, again_path);
                        prop_assert_eq!(again.params, m.params);
                    }
                }
            }
        }

        /// Arbitrary raw paths against the product's routes never panic.
        #[test]
        fn finding_any_path_never_panics(path in "\\PC{0,60}|/sessions/[^/]{0,20}(/contacts(/[^/]{0,20}(/[a-z]{0,8})?)?)?") {
            let t = contacts();
            for method in ["GET", "POST", "DELETE", "PUT", ""] {
                let _ = t.find(method, &path);
            }
        }
    }
}
