//! Unit tests of manifest validation: every rule a plugin's `describe` answer must meet.

use super::*;
use crate::hostapi::wit;

fn route(method: &str, path: &str, op: &str) -> wit::Route {
    wit::Route {
        method: method.into(),
        path: path.into(),
        capability: wit::Capability::Read,
        operation_id: op.into(),
        summary: "s".into(),
        description: None,
        request_schema: None,
        response_schema: Some(r#"{"type":"object"}"#.into()),
        success_status: None,
        query_params: Vec::new(),
    }
}

fn manifest(routes: Vec<wit::Route>) -> wit::Manifest {
    wit::Manifest {
        name: "notes".into(),
        version: "1.2.3".into(),
        routes,
        events: vec!["message".into(), "*".into()],
    }
}

fn refused(m: wit::Manifest) -> String {
    PluginManifest::from_wit(m).unwrap_err()
}

#[test]
fn a_good_manifest_is_read_whole() {
    let mut r = route("POST", "/sessions/{session}/notes", "createNote");
    r.success_status = Some(201);
    r.capability = wit::Capability::Send;
    r.query_params.push(wit::QueryParam {
        name: "async".into(),
        description: "d".into(),
        required: false,
    });
    let m = PluginManifest::from_wit(manifest(vec![r])).unwrap();
    let spec = &m.routes[0];
    assert_eq!(spec.method, Method::Post);
    assert_eq!(spec.capability, Capability::Send);
    assert_eq!(spec.success_status, 201);
    assert_eq!(spec.response_schema.as_ref().unwrap()["type"], "object");
    assert_eq!(spec.query_params[0].0, "async");
    assert!(m.subscribes_to("anything"));
}

#[test]
fn names_versions_and_events_are_checked() {
    let mut m = manifest(vec![]);
    m.name = "Notes!".into();
    assert!(refused(m).contains("plugin name"));
    let mut m = manifest(vec![]);
    m.version = "1.2".into();
    assert!(refused(m).contains("semver"));
    let mut m = manifest(vec![]);
    m.events.push("Bad Event".into());
    assert!(refused(m).contains("event name"));
}

#[test]
fn routes_are_checked_one_by_one() {
    let cases = [
        (route("GET", "/a", "bad op!"), "operation id"),
        (route("TRACE", "/a", "op"), "not routable"),
        (route("GET", "no-slash", "op"), "must start with '/'"),
        (route("GET", "/admin/x", "op"), "platform-admin"),
        (
            route("GET", "/sessions/{id}/notes", "op"),
            "must be {session}",
        ),
        (
            route("POST", "/sessions/{sid}:start", "op"),
            "must be {session}",
        ),
    ];
    for (r, why) in cases {
        let e = refused(manifest(vec![r]));
        assert!(e.contains(why), "expected '{why}' in: {e}");
    }
    let mut r = route("GET", "/a", "op");
    r.success_status = Some(302);
    assert!(refused(manifest(vec![r])).contains("not 2xx"));
    let mut r = route("GET", "/a", "op");
    r.request_schema = Some("{not json".into());
    assert!(refused(manifest(vec![r])).contains("not JSON"));
    let mut r = route("GET", "/a", "op");
    r.response_schema = Some("[1]".into());
    assert!(refused(manifest(vec![r])).contains("JSON Schema object"));
    let twice = manifest(vec![route("GET", "/a", "op"), route("GET", "/b", "op")]);
    assert!(refused(twice).contains("declared twice"));
    let mut admin = route("GET", "/admin/sessions/{session}", "adminGet");
    admin.capability = wit::Capability::PlatformAdmin;
    assert!(PluginManifest::from_wit(manifest(vec![admin])).is_ok());
}
