//! The plugin runtime: components compiled once and cached on disk, pre-linked with
//! `InstancePre`, instantiated from a pooling allocator, reused per organization, and bound
//! by an epoch deadline and memory limits on every call. The [`Catalog`] is the set of
//! loaded plugins and the routes they serve; the [`PluginRegistry`] reloads it.

mod catalog;
mod instance;
mod loader;
mod manifest;
mod registry;
mod runtime;
mod watchdog;

pub use catalog::{BuiltinRoute, Catalog, HOST_OWNER, Refusal, Routable, RouteTarget};
pub use instance::{BLOB_HEADER, LoadedPlugin, PluginAnswer, PluginFault};
pub use loader::LoadError;
pub use manifest::{PluginManifest, RouteSpec};
pub use registry::{PluginRegistry, PluginStatus, ReloadReport};
pub use runtime::PluginRuntime;
pub use watchdog::CallDeadline;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A host interface a plugin may import, granted per plugin by the operator
/// (`plugins.grants`). Parsed once from the configuration: an unknown name is refused at
/// load with the list of known ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostInterface {
    Storage,
    WhatsappRead,
    WhatsappSend,
    WhatsappGroups,
    SessionControl,
    WhatsappChats,
    Outbox,
    Media,
    EventBus,
    WebhookDelivery,
    PlatformAdmin,
    Log,
}

impl HostInterface {
    pub const ALL: [HostInterface; 12] = [
        HostInterface::Storage,
        HostInterface::WhatsappRead,
        HostInterface::WhatsappSend,
        HostInterface::WhatsappGroups,
        HostInterface::SessionControl,
        HostInterface::WhatsappChats,
        HostInterface::Outbox,
        HostInterface::Media,
        HostInterface::EventBus,
        HostInterface::WebhookDelivery,
        HostInterface::PlatformAdmin,
        HostInterface::Log,
    ];

    /// The name used in `plugins.grants` and in the WIT package (`wa:gateway/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            HostInterface::Storage => "storage",
            HostInterface::WhatsappRead => "whatsapp-read",
            HostInterface::WhatsappSend => "whatsapp-send",
            HostInterface::WhatsappGroups => "whatsapp-groups",
            HostInterface::SessionControl => "session-control",
            HostInterface::WhatsappChats => "whatsapp-chats",
            HostInterface::Outbox => "outbox",
            HostInterface::Media => "media",
            HostInterface::EventBus => "event-bus",
            HostInterface::WebhookDelivery => "webhook-delivery",
            HostInterface::PlatformAdmin => "platform-admin",
            HostInterface::Log => "log",
        }
    }

    /// Recognises a component import (`wa:gateway/storage@0.1.0`) as one of ours.
    pub fn from_import(import: &str) -> Option<HostInterface> {
        let rest = import.strip_prefix("wa:gateway/")?;
        let name = rest.split('@').next()?;
        Self::ALL.into_iter().find(|i| i.name() == name)
    }
}

impl std::fmt::Display for HostInterface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The operator's grants: plugin name → host interfaces it may import.
pub type Grants = Arc<dyn Fn(&str) -> Vec<HostInterface> + Send + Sync>;

/// Imports every plugin gets without a grant: shared types and a WASI with no filesystem,
/// network, environment or clock beyond wall/monotonic time.
fn is_ungated_import(import: &str) -> bool {
    import.starts_with("wa:gateway/types@")
        || import.starts_with("wa:gateway/whatsapp-types@")
        // The request a lazy plugin is serving: its own, so nothing to grant.
        || import.starts_with("wa:gateway/incoming@")
        || import.starts_with("wasi:")
}
