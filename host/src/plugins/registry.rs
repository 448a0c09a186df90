//! The plugin registry: owns the current [`Catalog`], reloads it from the plugin
//! directory (loading only files that changed, off the request path) and swaps the new
//! one in atomically; remembers why files were refused, for the operator.

use super::catalog::Catalog;
use super::instance::LoadedPlugin;
use super::loader::{LoadError, load_file};
use super::runtime::PluginRuntime;
use super::{Grants, HostInterface};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    pub grants: Vec<HostInterface>,
    pub imports: Vec<HostInterface>,
    pub loaded_at: Option<u64>,
    /// Instances kept warm for reuse right now.
    pub idle_instances: usize,
    /// Linear memory the largest idle instance holds, in bytes: what one instance of the
    /// plugin costs once it has served (size `plugins.limits.<name>.memory_bytes` by it).
    pub instance_memory_bytes: Option<usize>,
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

/// Owns the current catalog and reloads it from the plugin directory.
pub struct PluginRegistry {
    runtime: Arc<PluginRuntime>,
    dir: PathBuf,
    grants: Grants,
    current: ArcSwap<Catalog>,
    /// Last refusal per file stem, cleared when that file loads.
    errors: Mutex<BTreeMap<String, (String, u64)>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl PluginRegistry {
    pub fn new(runtime: Arc<PluginRuntime>, dir: PathBuf, grants: Grants) -> Arc<PluginRegistry> {
        Arc::new(PluginRegistry {
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
            let previous = by_path.get(path.as_path()).copied();
            let unchanged = match (previous, std::fs::read(path)) {
                (Some(p), Ok(bytes)) => p.hash == super::runtime::content_hash(&bytes),
                _ => false,
            };
            if let (true, Some(p)) = (unchanged, previous) {
                next.insert(p.name().to_owned(), p.clone());
                report.unchanged.push(p.name().to_owned());
                continue;
            }
            match load_file(&self.runtime, path, &self.grants).await {
                Ok(p) => {
                    let name = p.name().to_owned();
                    next.insert(name.clone(), Arc::new(p));
                    changed.insert(name);
                }
                Err(e) => {
                    self.refuse(&stem(path), &e.to_string(), &mut report);
                    if let Some(p) = previous {
                        next.insert(p.name().to_owned(), p.clone());
                    }
                }
            }
        }
        let generation = old.generation + 1;
        let catalog = match Catalog::assemble(next, &mut changed, &old.plugins, generation) {
            Ok((catalog, refused)) => {
                for (name, reason) in refused {
                    self.refuse(&name, &reason, &mut report);
                }
                catalog
            }
            Err(conflict) => {
                tracing::error!(error = %conflict, "route conflict with the gateway's own routes");
                report.generation = old.generation;
                return report;
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
        let catalog = Arc::new(catalog);
        self.current.store(catalog.clone());
        // Old instances finish their calls on the old catalog; idle ones can go now.
        for (name, p) in &old.plugins {
            if catalog.plugins.get(name).is_none_or(|n| !Arc::ptr_eq(n, p)) {
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
                    imports: p.imports.clone(),
                    loaded_at: Some(p.loaded_at),
                    idle_instances: p.idle_instances(),
                    instance_memory_bytes: p.idle_instance_memory_bytes(),
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
                idle_instances: 0,
                instance_memory_bytes: None,
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
    /// against the built-in ones and every other currently loaded plugin's.
    pub async fn check(&self, path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let plugin = Arc::new(load_file(&self.runtime, path, &self.grants).await?);
        let mut set = self.catalog().plugins.clone();
        set.insert(plugin.name().to_owned(), plugin.clone());
        let mut changed = BTreeSet::from([plugin.name().to_owned()]);
        match Catalog::assemble(set, &mut changed, &BTreeMap::new(), 0) {
            Ok((_, refused)) if refused.is_empty() => Ok(plugin),
            Ok((_, refused)) => Err(LoadError::Routes(
                refused
                    .into_iter()
                    .map(|(_, r)| r)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Err(e) => Err(LoadError::Routes(e.to_string())),
        }
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
