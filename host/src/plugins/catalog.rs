//! The catalog: the loaded plugins and the routing table built from their manifests and
//! the host's own routes. A request takes the current catalog once and finishes on it; a
//! reload builds a new catalog off the request path and swaps it in atomically.

use super::instance::LoadedPlugin;
use super::loader::{LoadError, load_file};
use super::manifest::RouteSpec;
use super::runtime::PluginRuntime;
use crate::auth::Capability;
use crate::routing::{Method, RouteConflict, RouteTable, RouteTableBuilder};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Routes the host serves itself under `/api/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRoute {
    ListApiKeys,
    CreateApiKey,
    RevokeApiKey,
}

impl HostRoute {
    const ALL: [(HostRoute, Method, &'static str); 3] = [
        (HostRoute::ListApiKeys, Method::Get, "/api-keys"),
        (HostRoute::CreateApiKey, Method::Post, "/api-keys"),
        (HostRoute::RevokeApiKey, Method::Delete, "/api-keys/{id}"),
    ];

    pub fn capability(self) -> Capability {
        Capability::Manage
    }

    pub fn operation_id(self) -> &'static str {
        match self {
            HostRoute::ListApiKeys => "listApiKeys",
            HostRoute::CreateApiKey => "createApiKey",
            HostRoute::RevokeApiKey => "revokeApiKey",
        }
    }

    pub fn all() -> impl Iterator<Item = (HostRoute, Method, &'static str)> {
        Self::ALL.into_iter()
    }
}

/// What a route leads to.
#[derive(Debug, Clone)]
pub enum RouteTarget {
    Host(HostRoute),
    Plugin {
        plugin: Arc<LoadedPlugin>,
        route: usize,
    },
}

impl RouteTarget {
    pub fn capability(&self) -> Capability {
        match self {
            RouteTarget::Host(h) => h.capability(),
            RouteTarget::Plugin { plugin, route } => plugin.manifest.routes[*route].capability,
        }
    }

    pub fn spec(&self) -> Option<&RouteSpec> {
        match self {
            RouteTarget::Host(_) => None,
            RouteTarget::Plugin { plugin, route } => Some(&plugin.manifest.routes[*route]),
        }
    }

    pub fn operation_id(&self) -> &str {
        match self {
            RouteTarget::Host(h) => h.operation_id(),
            RouteTarget::Plugin { plugin, route } => &plugin.manifest.routes[*route].operation_id,
        }
    }

    /// `host` or the plugin's name, for logs and metrics.
    pub fn owner(&self) -> &str {
        match self {
            RouteTarget::Host(_) => "host",
            RouteTarget::Plugin { plugin, .. } => plugin.name(),
        }
    }
}

/// One consistent set of plugins and their routes.
pub struct Catalog {
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    pub routes: RouteTable<RouteTarget>,
    /// Bumped on every swap.
    pub generation: u64,
}

impl Catalog {
    fn build(
        plugins: BTreeMap<String, Arc<LoadedPlugin>>,
        generation: u64,
    ) -> Result<Catalog, RouteConflict> {
        let mut b = RouteTableBuilder::default();
        for (h, method, path) in HostRoute::all() {
            b.add(method, path, RouteTarget::Host(h), "the host")?;
        }
        for p in plugins.values() {
            for (i, r) in p.manifest.routes.iter().enumerate() {
                b.add(
                    r.method,
                    r.template.as_str(),
                    RouteTarget::Plugin {
                        plugin: p.clone(),
                        route: i,
                    },
                    p.name(),
                )?;
            }
        }
        Ok(Catalog {
            routes: b.build()?,
            plugins,
            generation,
        })
    }

    pub fn empty() -> Catalog {
        Catalog::build(BTreeMap::new(), 0).expect("host routes do not conflict")
    }

    /// Plugins subscribed to an event name.
    pub fn subscribers(&self, event: &str) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins
            .values()
            .filter(move |p| p.manifest.subscribes_to(event))
    }
}

/// The state of one plugin file, for the operator's list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    pub name: String,
    pub version: Option<String>,
    pub file: String,
    pub hash: Option<String>,
    pub routes: Vec<String>,
    pub events: Vec<String>,
    pub grants: Vec<String>,
    pub imports: Vec<String>,
    pub loaded_at: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
}

/// The outcome of one reload.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    pub generation: u64,
    pub loaded: Vec<String>,
    pub unchanged: Vec<String>,
    pub unloaded: Vec<String>,
    pub refused: BTreeMap<String, String>,
}

/// The operator's grants: plugin name → host interfaces it may import.
pub type Grants = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// Owns the current catalog and reloads it from the plugin directory.
pub struct PluginHost {
    runtime: Arc<PluginRuntime>,
    dir: PathBuf,
    grants: Grants,
    current: ArcSwap<Catalog>,
    /// Last refusal per file stem, cleared when that file loads.
    errors: Mutex<BTreeMap<String, (String, u64)>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl PluginHost {
    pub fn new(runtime: Arc<PluginRuntime>, dir: PathBuf, grants: Grants) -> Arc<PluginHost> {
        Arc::new(PluginHost {
            runtime,
            dir,
            grants,
            current: ArcSwap::from_pointee(Catalog::empty()),
            errors: Mutex::new(BTreeMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The catalog to serve one request with.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.current.load_full()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn runtime(&self) -> &Arc<PluginRuntime> {
        &self.runtime
    }

    /// Loads what changed in the plugin directory and swaps in the new catalog. A file
    /// that fails to load or conflicts keeps its previous version serving (if any).
    pub async fn reload(&self) -> ReloadReport {
        let _guard = self.reload_lock.lock().await;
        let old = self.catalog();
        let mut report = ReloadReport::default();
        let files = match plugin_files(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read plugin directory; keeping current plugins");
                report.generation = old.generation;
                return report;
            }
        };
        let by_path: BTreeMap<&Path, &Arc<LoadedPlugin>> = old
            .plugins
            .values()
            .map(|p| (p.path.as_path(), p))
            .collect();
        let mut next: BTreeMap<String, Arc<LoadedPlugin>> = BTreeMap::new();
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for path in &files {
            let stem = stem(path);
            let previous = by_path.get(path.as_path()).copied();
            let unchanged = match (previous, std::fs::read(path)) {
                (Some(p), Ok(bytes)) => {
                    p.hash == hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
                }
                _ => false,
            };
            if let (true, Some(p)) = (unchanged, previous) {
                next.insert(p.name().to_owned(), p.clone());
                report.unchanged.push(p.name().to_owned());
                continue;
            }
            let grants = self.grants.clone();
            match load_file(&self.runtime, path, &*grants).await {
                Ok(p) => {
                    let name = p.name().to_owned();
                    next.insert(name.clone(), Arc::new(p));
                    changed.insert(name);
                }
                Err(e) => {
                    self.refuse(&stem, &e.to_string(), &mut report);
                    if let Some(p) = previous {
                        next.insert(p.name().to_owned(), p.clone());
                    }
                }
            }
        }
        // Resolve route conflicts by refusing the newly loaded side, restoring its old
        // version when there was one.
        let generation = old.generation + 1;
        let catalog = loop {
            match Catalog::build(next.clone(), generation) {
                Ok(c) => break c,
                Err(conflict) => {
                    let owners = conflict_owners(&conflict);
                    let culprit = owners
                        .iter()
                        .rev()
                        .find(|o| changed.contains(*o))
                        .or_else(|| owners.iter().rev().find(|o| next.contains_key(*o)))
                        .cloned();
                    let Some(culprit) = culprit else {
                        tracing::error!(error = %conflict, "route conflict with the host's own routes");
                        report.generation = old.generation;
                        return report;
                    };
                    self.refuse(&culprit, &conflict.to_string(), &mut report);
                    changed.remove(&culprit);
                    next.remove(&culprit);
                    if let Some(p) = old.plugins.get(&culprit) {
                        next.insert(culprit.clone(), p.clone());
                    }
                }
            }
        };
        for name in &changed {
            self.errors.lock().expect("lock").remove(name);
            report.loaded.push(name.clone());
        }
        for name in old.plugins.keys() {
            if !catalog.plugins.contains_key(name) {
                report.unloaded.push(name.clone());
            }
        }
        for p in catalog.plugins.values() {
            tracing::info!(
                plugin = p.name(),
                version = %p.manifest.version,
                routes = p.manifest.routes.len(),
                hash = &p.hash[..12],
                "plugin serving"
            );
        }
        for name in &report.unloaded {
            tracing::info!(plugin = %name, "plugin unloaded");
        }
        report.generation = catalog.generation;
        self.current.store(Arc::new(catalog));
        // Old instances finish their calls on the old catalog; idle ones can go now.
        for (name, p) in &old.plugins {
            if self
                .current
                .load()
                .plugins
                .get(name)
                .is_none_or(|n| !Arc::ptr_eq(n, p))
            {
                p.evict_all();
            }
        }
        report
    }

    fn refuse(&self, name: &str, reason: &str, report: &mut ReloadReport) {
        tracing::error!(
            plugin = name,
            reason,
            "plugin refused; previous version (if any) keeps serving"
        );
        self.errors
            .lock()
            .expect("lock")
            .insert(name.to_owned(), (reason.to_owned(), crate::clock::now_ms()));
        report.refused.insert(name.to_owned(), reason.to_owned());
    }

    /// Every loaded plugin and every file that failed, for the operator.
    pub fn status(&self) -> Vec<PluginStatus> {
        let catalog = self.catalog();
        let errors = self.errors.lock().expect("lock").clone();
        let mut out: BTreeMap<String, PluginStatus> = BTreeMap::new();
        for p in catalog.plugins.values() {
            out.insert(
                p.name().to_owned(),
                PluginStatus {
                    name: p.name().to_owned(),
                    version: Some(p.manifest.version.clone()),
                    file: p.path.display().to_string(),
                    hash: Some(p.hash.clone()),
                    routes: p
                        .manifest
                        .routes
                        .iter()
                        .map(|r| format!("{} {}", r.method.as_str(), r.template))
                        .collect(),
                    events: p.manifest.events.clone(),
                    grants: (self.grants)(p.name()),
                    imports: p
                        .imports
                        .iter()
                        .map(|i| i.grant_name().to_owned())
                        .collect(),
                    loaded_at: Some(p.loaded_at),
                    last_error: None,
                    last_error_at: None,
                },
            );
        }
        for (name, (err, at)) in errors {
            let entry = out.entry(name.clone()).or_insert_with(|| PluginStatus {
                name: name.clone(),
                version: None,
                file: self.dir.join(format!("{name}.wasm")).display().to_string(),
                hash: None,
                routes: Vec::new(),
                events: Vec::new(),
                grants: (self.grants)(&name),
                imports: Vec::new(),
                loaded_at: None,
                last_error: None,
                last_error_at: None,
            });
            entry.last_error = Some(err);
            entry.last_error_at = Some(at);
        }
        out.into_values().collect()
    }

    /// Validates a component without serving it (`gateway plugins check`): compiles it,
    /// checks its imports against its grants, reads its manifest and checks its routes
    /// against the host's and every other currently loaded plugin's.
    pub async fn check(&self, path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let grants = self.grants.clone();
        let plugin = Arc::new(load_file(&self.runtime, path, &*grants).await?);
        let mut set = self.catalog().plugins.clone();
        set.insert(plugin.name().to_owned(), plugin.clone());
        Catalog::build(set, 0).map_err(|e| LoadError::Routes(e.to_string()))?;
        Ok(plugin)
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `*.wasm` files in the directory, sorted.
pub(crate) fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn conflict_owners(c: &RouteConflict) -> Vec<String> {
    match c {
        RouteConflict::Duplicate { first, second, .. } => vec![first.clone(), second.clone()],
        RouteConflict::Ambiguous { owner, other, .. } => {
            let mut v: Vec<String> = other.split(", ").map(str::to_owned).collect();
            v.push(owner.clone());
            v
        }
        RouteConflict::Template { owner, .. } => vec![owner.clone()],
    }
}
