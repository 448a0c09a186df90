//! The plugin runtime: components compiled once and cached on disk, pre-linked with
//! `InstancePre`, instantiated from a pooling allocator, reused per organization, and bound
//! by an epoch deadline and memory limits on every call. The [`Catalog`] is the set of
//! loaded plugins and the routes they serve, swapped atomically on reload.

mod catalog;
mod instance;
mod loader;
mod manifest;
mod runtime;

pub use catalog::{
    Catalog, Grants, HostRoute, PluginHost, PluginStatus, ReloadReport, RouteTarget,
};
pub use instance::{LoadedPlugin, PluginFault};
pub use loader::LoadError;
pub use manifest::{PluginManifest, RouteSpec};
pub use runtime::PluginRuntime;

/// A host interface a plugin may import, granted per plugin by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostInterface {
    Storage,
    WhatsappRead,
    WhatsappSend,
    SessionControl,
    Log,
}

impl HostInterface {
    pub const ALL: [HostInterface; 5] = [
        HostInterface::Storage,
        HostInterface::WhatsappRead,
        HostInterface::WhatsappSend,
        HostInterface::SessionControl,
        HostInterface::Log,
    ];

    pub const GRANT_NAMES: [&'static str; 5] = [
        "storage",
        "whatsapp-read",
        "whatsapp-send",
        "session-control",
        "log",
    ];

    /// The name used in `plugins.grants`.
    pub fn grant_name(self) -> &'static str {
        match self {
            HostInterface::Storage => "storage",
            HostInterface::WhatsappRead => "whatsapp-read",
            HostInterface::WhatsappSend => "whatsapp-send",
            HostInterface::SessionControl => "session-control",
            HostInterface::Log => "log",
        }
    }

    pub fn from_grant(name: &str) -> Option<HostInterface> {
        Self::ALL.into_iter().find(|i| i.grant_name() == name)
    }

    /// Recognises a component import (`wa:gateway/storage@0.1.0`) as one of ours.
    pub fn from_import(import: &str) -> Option<HostInterface> {
        let rest = import.strip_prefix("wa:gateway/")?;
        let name = rest.split('@').next()?;
        Self::from_grant(name)
    }
}

/// Imports every plugin gets without a grant: shared types and a WASI with no filesystem,
/// network, environment or clock beyond wall/monotonic time.
fn is_ungated_import(import: &str) -> bool {
    import.starts_with("wa:gateway/types@")
        || import.starts_with("wa:gateway/whatsapp-types@")
        || import.starts_with("wasi:")
}
