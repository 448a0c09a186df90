//! The WIT contract grows additively: a plugin built against the first published
//! version (`wa:gateway@0.1.0`, frozen in tests/plugins/legacy/wit) is still loaded,
//! linked and served by this host (0.1.x), its storage calls and all.

use crate::support::*;

#[test]
fn a_plugin_built_against_0_1_0_is_served() {
    let g = Gateway::with(Options {
        plugins: vec!["sessions".into(), "legacy".into()],
        ..Options::default()
    });
    let key = g.key("org_legacy", &["read"]);
    for expected in 1..=3 {
        let r = g.get("/legacy/counter", &key);
        assert_eq!(r.status, 200, "{}\n{}", r.text(), g.log());
        assert_eq!(r.json()["count"], expected);
        assert_eq!(r.json()["contract"], "0.1.0");
    }
    let plugins = g.admin_call("GET", "/admin/plugins", None).json();
    let legacy = plugins["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "legacy")
        .unwrap()
        .clone();
    assert_eq!(legacy["imports"], serde_json::json!(["storage"]));
    assert!(legacy["lastError"].is_null());
}
