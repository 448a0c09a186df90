//! Unit tests of catalog assembly: route conflicts between plugins and with the built-in
//! routes, which side is refused, and the previous version restored.

use super::*;
use crate::hostapi::wit;

#[derive(Debug)]
struct Declared {
    manifest: PluginManifest,
}

impl Routable for Declared {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }
}

fn plugin(name: &str, version: &str, routes: &[(&str, &str, &str)]) -> Arc<Declared> {
    let manifest = PluginManifest::from_wit(wit::Manifest {
        name: name.into(),
        version: version.into(),
        routes: routes
            .iter()
            .map(|(method, path, op)| wit::Route {
                method: (*method).into(),
                path: (*path).into(),
                capability: wit::Capability::Read,
                operation_id: (*op).into(),
                summary: String::new(),
                description: None,
                request_schema: None,
                response_schema: None,
                success_status: None,
                query_params: Vec::new(),
            })
            .collect(),
        events: vec!["message".into()],
    })
    .expect("valid manifest");
    Arc::new(Declared { manifest })
}

fn set(plugins: &[&Arc<Declared>]) -> BTreeMap<String, Arc<Declared>> {
    plugins
        .iter()
        .map(|p| (p.name().to_owned(), (*p).clone()))
        .collect()
}

fn names(c: &Catalog<Declared>) -> Vec<(String, String)> {
    c.plugins
        .values()
        .map(|p| (p.name().to_owned(), p.manifest().version.clone()))
        .collect()
}

#[test]
fn disjoint_plugins_all_serve() {
    let a = plugin("alpha", "1.0.0", &[("GET", "/alpha", "getAlpha")]);
    let b = plugin("beta", "1.0.0", &[("GET", "/beta/{id}", "getBeta")]);
    let (c, refused) =
        Catalog::assemble(set(&[&a, &b]), &mut BTreeSet::new(), &BTreeMap::new(), 7).unwrap();
    assert!(refused.is_empty());
    assert_eq!(c.generation, 7);
    assert_eq!(c.plugins.len(), 2);
    assert_eq!(
        c.routes.find("GET", "/beta/x").unwrap().target.owner(),
        "beta"
    );
    assert_eq!(c.subscribers("message").count(), 2);
    assert_eq!(c.subscribers("other").count(), 0);
}

#[test]
fn the_newly_changed_side_of_a_conflict_is_refused_and_its_old_version_restored() {
    let a_old = plugin("alpha", "1.0.0", &[("GET", "/alpha", "getAlpha")]);
    let b = plugin("beta", "1.0.0", &[("GET", "/beta", "getBeta")]);
    // alpha 2 starts declaring beta's route.
    let a_new = plugin(
        "alpha",
        "2.0.0",
        &[("GET", "/alpha", "getAlpha"), ("GET", "/beta", "stealBeta")],
    );
    let previous = set(&[&a_old, &b]);
    let mut changed = BTreeSet::from(["alpha".to_owned()]);
    let (c, refused) = Catalog::assemble(set(&[&a_new, &b]), &mut changed, &previous, 2).unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, "alpha");
    assert!(refused[0].1.contains("/beta"), "{}", refused[0].1);
    assert_eq!(
        names(&c),
        vec![
            ("alpha".into(), "1.0.0".into()),
            ("beta".into(), "1.0.0".into())
        ]
    );
    assert!(changed.is_empty());
}

#[test]
fn a_new_plugin_conflicting_with_a_served_one_is_refused_without_a_previous_version() {
    let a = plugin("alpha", "1.0.0", &[("GET", "/alpha/{id}", "getAlpha")]);
    let imposter = plugin(
        "imposter",
        "1.0.0",
        &[("GET", "/alpha/{name}", "getAlpha2")],
    );
    let mut changed = BTreeSet::from(["imposter".to_owned()]);
    let (c, refused) =
        Catalog::assemble(set(&[&a, &imposter]), &mut changed, &set(&[&a]), 3).unwrap();
    assert_eq!(refused[0].0, "imposter");
    assert_eq!(names(&c), vec![("alpha".into(), "1.0.0".into())]);
}

#[test]
fn two_new_plugins_conflicting_refuse_the_later_one() {
    let a = plugin("alpha", "1.0.0", &[("POST", "/x", "x1")]);
    let b = plugin("beta", "1.0.0", &[("POST", "/x", "x2")]);
    let mut changed = BTreeSet::from(["alpha".to_owned(), "beta".to_owned()]);
    let (c, refused) =
        Catalog::assemble(set(&[&a, &b]), &mut changed, &BTreeMap::new(), 1).unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(c.plugins.len(), 1);
    assert!(!c.plugins.contains_key(&refused[0].0));
}

#[test]
fn a_plugin_claiming_a_built_in_route_is_refused() {
    let keys = plugin("keys", "1.0.0", &[("GET", "/api-keys", "listKeys")]);
    let mut changed = BTreeSet::from(["keys".to_owned()]);
    let (c, refused) = Catalog::assemble(set(&[&keys]), &mut changed, &BTreeMap::new(), 1).unwrap();
    assert_eq!(refused[0].0, "keys");
    assert!(c.plugins.is_empty());
    assert_eq!(
        c.routes.find("GET", "/api-keys").unwrap().target.owner(),
        "host"
    );
}
