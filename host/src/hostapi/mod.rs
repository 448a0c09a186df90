//! The host interfaces a plugin may import (`wa:gateway/*`), each one unit: its bindings
//! are added to the linker once, grants are checked at load, and every call is scoped by
//! the per-call [`CallContext`] held in the store.

mod chats;
pub(crate) mod convert;
mod event_bus;
mod groups;
pub mod incoming;
mod log;
mod media;
mod outbox;
mod platform_admin;
mod session_control;
mod stderr;
mod storage;
mod webhooks;
mod whatsapp;

pub use stderr::PluginStderr;

use crate::auth::CapabilitySet;
use crate::sessions::SessionManager;
use crate::storage::{Scope, ScopedKv};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::StoreLimits;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wa:gateway/plugin",
    imports: {
        // Reads answer from the call's snapshot without waiting on anything: plain calls,
        // so a read costs no boxed future and no poll (`hostapi::storage`).
        "wa:gateway/storage.get": trappable,
        "wa:gateway/storage.scan": trappable,
        "wa:gateway/storage.scan-packed": trappable,
        default: async,
    },
    exports: { default: async },
});

pub use wa::gateway::types as wit;

/// The event names a plugin may emit, by plugin name.
pub type EmitsFor = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// The services every plugin instance calls into, shared by all of them.
pub struct PluginServices {
    pub sessions: Arc<SessionManager>,
    /// Set once the outbox runs (it is built after the plugin runtime).
    pub outbox: std::sync::OnceLock<crate::outbox::Outbox>,
    /// The webhook engine (`webhook-delivery`).
    pub webhooks: crate::webhooks::Webhooks,
    /// Admin backfill jobs (`platform-admin`).
    pub backfills: crate::backfill::Backfills,
    pub bus: crate::events::EventBus,
    /// The event names each plugin may emit (`plugins.emits`).
    pub emits: EmitsFor,
    /// A plugin call's budget (`limits.plugin_timeout_ms`).
    pub plugin_timeout: std::time::Duration,
    /// How long a sync send may wait (`messages.sync_timeout_ms`).
    pub sync_timeout: std::time::Duration,
    /// The largest value one key may hold (`limits.max_value_bytes`).
    pub max_value_bytes: usize,
    /// The most one atomic write may carry (`limits.max_write_bytes`).
    pub max_write_bytes: usize,
    /// The most plugin data one organization may store (`quotas.max_stored_bytes_per_org`).
    pub max_stored_bytes_per_org: Option<u64>,
}

/// Who a call is for; set before each call, cleared after.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub organization: Arc<str>,
    /// `user:<sub>`, `apikey:<id>`, or `event` for event delivery.
    pub principal: Arc<str>,
    /// The `createdByUserId` of things created in this call.
    pub created_by: Arc<str>,
    pub capabilities: CapabilitySet,
    pub session: Option<String>,
    pub request_id: String,
    /// For event deliveries, the depth of the event delivered (emits it causes are one
    /// deeper); 0 for requests.
    pub event_depth: u8,
}

impl CallContext {
    /// The storage scope: the session's, else the organization's.
    fn scope(&self) -> Scope {
        match &self.session {
            Some(s) => Scope::Session(s.clone()),
            None => Scope::Organization(self.organization.to_string()),
        }
    }
}

/// A store's [`StoreLimits`], remembering how much linear memory the instance holds (all
/// its memories), so an operator can size `plugins.limits.<name>.memory_bytes`.
pub struct MemoryLimits {
    limits: StoreLimits,
    /// Bytes of linear memory the instance's memories have grown to.
    pub memory_bytes: usize,
}

impl MemoryLimits {
    fn new(limits: StoreLimits) -> Self {
        MemoryLimits {
            limits,
            memory_bytes: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = self.limits.memory_growing(current, desired, maximum)?;
        if grown {
            self.memory_bytes += desired.saturating_sub(current);
        }
        Ok(grown)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The host-side data of one plugin instance (its wasmtime store's data).
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryLimits,
    plugin: Arc<str>,
    kv: ScopedKv,
    services: Arc<PluginServices>,
    call: Option<CallContext>,
    /// The current call's storage scope, worked out once per call.
    scope: Option<Scope>,
    /// The request being served (`incoming`).
    request: Option<incoming::ServedRequest>,
    /// The read snapshot of the current call, dropped on its first write and at its end.
    reader: Option<crate::storage::KvReader>,
    /// When the current call must stop; checked on every epoch tick.
    pub(crate) deadline: crate::plugins::CallDeadline,
    /// Media made downloadable in this call, by handle (taken with the answer).
    pub(crate) blobs: std::collections::HashMap<String, crate::engines::MediaBlob>,
}

impl InstanceState {
    pub fn new(
        plugin: Arc<str>,
        kv: ScopedKv,
        services: Arc<PluginServices>,
        limits: StoreLimits,
    ) -> InstanceState {
        // No filesystem, network, environment or arguments: a plugin reaches the world only
        // through the interfaces it was granted. Its stderr (panic messages) goes to our log.
        let wasi = WasiCtx::builder()
            .stderr(PluginStderr::new(plugin.clone()))
            .stdout(PluginStderr::new(plugin.clone()))
            .build();
        InstanceState {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryLimits::new(limits),
            plugin,
            kv,
            services,
            call: None,
            scope: None,
            request: None,
            reader: None,
            deadline: crate::plugins::CallDeadline::new(Instant::now()),
            blobs: std::collections::HashMap::new(),
        }
    }

    pub fn begin_call(&mut self, ctx: CallContext, deadline: crate::plugins::CallDeadline) {
        self.scope = Some(ctx.scope());
        self.call = Some(ctx);
        self.deadline = deadline;
    }

    /// Holds the request the plugin reads during this call.
    pub fn serve(&mut self, request: incoming::ServedRequest) {
        self.request = Some(request);
    }

    pub fn end_call(&mut self) {
        self.call = None;
        self.scope = None;
        self.request = None;
        self.reader = None;
        self.blobs.clear();
    }

    /// The media a call's answer named in `x-gateway-blob`.
    pub fn take_blob(&mut self, handle: &str) -> Option<crate::engines::MediaBlob> {
        self.blobs.remove(handle)
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    fn call(&self) -> Option<&CallContext> {
        self.call.as_ref()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Time kept back from a plugin's deadline so it can still answer after a slow host call.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs a host call that may wait on the network within the time the plugin has left;
/// `late` is the error when it does not finish.
pub(crate) async fn within<T, E>(
    deadline: Instant,
    call: impl std::future::Future<Output = Result<T, E>>,
    late: impl FnOnce() -> E,
) -> Result<T, E> {
    let until = deadline.checked_sub(ANSWER_MARGIN).unwrap_or(deadline);
    match tokio::time::timeout_at(until.into(), call).await {
        Ok(r) => r,
        Err(_) => Err(late()),
    }
}

/// Adds WASI (sandboxed) and every `wa:gateway` interface to a linker. Which of them a
/// component may actually import is decided per plugin at load, from its grants.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    Plugin::add_to_linker::<InstanceState, HasSelf<InstanceState>>(linker, |s| s)?;
    incoming::add_to_linker(linker)
}

impl wa::gateway::types::Host for InstanceState {}

impl wa::gateway::whatsapp_types::Host for InstanceState {}
