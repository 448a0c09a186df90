//! Loading one component file: compile (or reuse the cached artifact), check its imports
//! against the operator's grants, pre-link it, and read and validate its manifest.

use super::instance::EndpointPre;
use super::instance::{LoadedPlugin, PluginFault};
use super::runtime::PluginRuntime;
use super::{Grants, HostInterface, is_ungated_import};
use crate::hostapi::PluginPre;
use crate::hostapi::incoming::LazyPluginPre;
use std::path::Path;
use std::sync::Arc;

/// Why a component was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("not a valid component: {0}")]
    Compile(String),
    #[error("imports {import}, which it was not granted (granted: {granted})")]
    NotGranted { import: String, granted: String },
    #[error("imports {0}, which this gateway does not provide")]
    UnknownImport(String),
    #[error("does not fit the wa:gateway/plugin or lazy-plugin world: {0}")]
    Link(String),
    #[error("{0}")]
    Fault(#[from] PluginFault),
    #[error("manifest is invalid: {0}")]
    Manifest(String),
    #[error("file is named {file} but the plugin calls itself {name}; name the file {name}.wasm")]
    NameMismatch { file: String, name: String },
    #[error("{0}")]
    Routes(String),
}

/// Loads `path`, allowing the imports named in `grants` (plus WASI and shared types).
pub(super) async fn load_file(
    runtime: &Arc<PluginRuntime>,
    path: &Path,
    grants: &Grants,
) -> Result<LoadedPlugin, LoadError> {
    let bytes = tokio::fs::read(path).await.map_err(|e| LoadError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let rt = runtime.clone();
    let (component, hash) = tokio::task::spawn_blocking(move || rt.compile(&bytes))
        .await
        .map_err(|e| LoadError::Compile(e.to_string()))??;
    // The file stem names the plugin for grant purposes; the manifest must agree.
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let granted = grants(&stem);
    let mut imports = Vec::new();
    let ty = component.component_type();
    for (name, _) in ty.imports(&runtime.engine) {
        if is_ungated_import(name) {
            continue;
        }
        let Some(iface) = HostInterface::from_import(name) else {
            return Err(LoadError::UnknownImport(name.to_owned()));
        };
        if !granted.contains(&iface) {
            return Err(LoadError::NotGranted {
                import: format!("{name} ('{iface}')"),
                granted: if granted.is_empty() {
                    "nothing".into()
                } else {
                    granted
                        .iter()
                        .map(|g| g.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        imports.push(iface);
    }
    imports.sort();
    let instance_pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    // A component exporting `handler` targets `lazy-plugin`; one exporting `endpoint`,
    // `plugin`. Either fits only if its export has the world's exact shape.
    let lazy = ty
        .exports(&runtime.engine)
        .any(|(name, _)| name.starts_with("wa:gateway/handler@"));
    let link = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
    let pre = if lazy {
        EndpointPre::Lazy(LazyPluginPre::new(instance_pre).map_err(link)?)
    } else {
        EndpointPre::Record(PluginPre::new(instance_pre).map_err(link)?)
    };
    let plugin = LoadedPlugin::new(runtime.clone(), pre, path.to_owned(), hash, imports).await?;
    if plugin.name() != stem {
        return Err(LoadError::NameMismatch {
            file: format!("{stem}.wasm"),
            name: plugin.name().to_owned(),
        });
    }
    Ok(plugin)
}
