//! A loaded plugin and its instances. Instances are reused across calls, but only within
//! one organization, so no plugin memory ever carries one tenant's data into another's
//! request. A call that traps, overruns its deadline or exhausts its memory loses only
//! its own instance.

use super::HostInterface;
use super::loader::LoadError;
use super::manifest::PluginManifest;
use super::runtime::PluginRuntime;
use crate::engines::MediaBlob;
use crate::hostapi::incoming::{LazyPlugin, LazyPluginPre, ServedRequest};
use crate::hostapi::{CallContext, InstanceState, Plugin, PluginPre, wit};
use crate::storage::{PLUGIN_KV, ScopedKv};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};

/// The response header naming media the host streams in place of a body (API.md §W).
pub const BLOB_HEADER: &str = "x-gateway-blob";

/// A plugin's answer to a request, with the media it names (if any).
#[derive(Debug)]
pub struct PluginAnswer {
    pub response: wit::Response,
    pub blob: Option<MediaBlob>,
}

/// Calls served by one instance before it is replaced, bounding heap fragmentation.
const MAX_USES_PER_INSTANCE: u64 = 10_000;

/// Why a plugin call produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginFault {
    #[error("plugin trapped: {0}")]
    Trap(String),
    #[error("plugin exceeded its time limit")]
    Timeout,
    #[error("plugin exceeded its memory limit")]
    OutOfMemory,
    #[error("plugin capacity exhausted: {0}")]
    Capacity(String),
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
}

impl PluginFault {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginFault::Trap(_) => "trap",
            PluginFault::Timeout => "timeout",
            PluginFault::OutOfMemory => "out_of_memory",
            PluginFault::Capacity(_) => "capacity",
            PluginFault::Instantiate(_) => "instantiate",
        }
    }

    fn from_wasmtime(e: wasmtime::Error) -> PluginFault {
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return PluginFault::Timeout;
        }
        let text = format!("{e:?}");
        if text.contains("forcing trap when growing memory") {
            return PluginFault::OutOfMemory;
        }
        PluginFault::Trap(format!("{e:#}"))
    }
}

/// A component pre-linked against the world it targets. The host serves both.
pub(super) enum EndpointPre {
    /// `plugin`: every field of the request is copied into each call.
    Record(PluginPre<InstanceState>),
    /// `lazy-plugin` (WIT 0.1.5): the request is passed by handle and read on demand.
    Lazy(LazyPluginPre<InstanceState>),
}

/// An instance's exports, by world.
enum Endpoint {
    Record(Plugin),
    Lazy(LazyPlugin),
}

struct Instance {
    store: Store<InstanceState>,
    endpoint: Endpoint,
    uses: u64,
}

/// Idle instances by organization.
#[derive(Default)]
struct Pool {
    idle: HashMap<Arc<str>, Vec<Instance>>,
    total: usize,
}

pub struct LoadedPlugin {
    pub manifest: PluginManifest,
    pub path: PathBuf,
    /// SHA-256 of the component bytes.
    pub hash: String,
    /// The host interfaces the component imports (all within its grants).
    pub imports: Vec<HostInterface>,
    pub loaded_at: u64,
    name: Arc<str>,
    pre: EndpointPre,
    runtime: Arc<PluginRuntime>,
    kv: ScopedKv,
    pool: Mutex<Pool>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("version", &self.manifest.version)
            .finish()
    }
}

/// One call into a plugin.
#[expect(
    clippy::large_enum_variant,
    reason = "one lives on the stack per call; boxing the request would allocate per call"
)]
enum Call<'a> {
    Describe,
    /// A request for the route at this index of the manifest.
    Handle(usize, ServedRequest),
    Event(&'a wit::Event),
}

enum Answer {
    Manifest(wit::Manifest),
    Handled(Result<wit::Response, wit::Error>, Option<MediaBlob>),
    Event(Result<(), wit::Error>),
}

impl LoadedPlugin {
    /// Instantiates once to read the manifest; the instance is then discarded because it
    /// belongs to no organization.
    pub(super) async fn new(
        runtime: Arc<PluginRuntime>,
        pre: EndpointPre,
        path: PathBuf,
        hash: String,
        imports: Vec<HostInterface>,
    ) -> Result<LoadedPlugin, LoadError> {
        let provisional: Arc<str> = Arc::from(
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plugin".into()),
        );
        let kv = ScopedKv::new(runtime.db.clone(), PLUGIN_KV, &provisional);
        let mut plugin = LoadedPlugin {
            manifest: PluginManifest {
                name: provisional.to_string(),
                version: "0.0.0".into(),
                routes: Vec::new(),
                events: Vec::new(),
            },
            path,
            hash,
            imports,
            loaded_at: crate::clock::now_ms(),
            name: provisional,
            pre,
            runtime,
            kv,
            pool: Mutex::new(Pool::default()),
        };
        let ctx = CallContext {
            organization: Arc::from(""),
            principal: "host".into(),
            created_by: "host".into(),
            capabilities: Default::default(),
            session: None,
            request_id: "load".into(),
            event_depth: 0,
        };
        let mut inst = plugin.instantiate().await?;
        let answer = plugin.run(&mut inst, ctx, Call::Describe).await?;
        let Answer::Manifest(m) = answer else {
            unreachable!("describe answers a manifest")
        };
        let manifest = PluginManifest::from_wit(m).map_err(LoadError::Manifest)?;
        plugin.name = Arc::from(manifest.name.as_str());
        plugin.kv = ScopedKv::new(plugin.runtime.db.clone(), PLUGIN_KV, &manifest.name);
        plugin.manifest = manifest;
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's name, shared (for labels kept per request).
    pub fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// Serves one request for `ctx.organization` on the route at index `route` of the
    /// manifest.
    pub async fn handle(
        &self,
        ctx: CallContext,
        route: usize,
        request: ServedRequest,
    ) -> Result<Result<PluginAnswer, wit::Error>, PluginFault> {
        match self.call(ctx, Call::Handle(route, request)).await? {
            Answer::Handled(r, blob) => Ok(r.map(|response| PluginAnswer { response, blob })),
            _ => unreachable!("handle answers a response"),
        }
    }

    /// Delivers one event of a session of `ctx.organization`.
    pub async fn on_event(
        &self,
        ctx: CallContext,
        event: &wit::Event,
    ) -> Result<Result<(), wit::Error>, PluginFault> {
        match self.call(ctx, Call::Event(event)).await? {
            Answer::Event(r) => Ok(r),
            _ => unreachable!("on-event answers a result"),
        }
    }

    /// The linear memory the largest idle instance holds (all its memories), if any is
    /// idle: what one instance of this plugin costs once it has served.
    pub fn idle_instance_memory_bytes(&self) -> Option<usize> {
        let pool = self.pool.lock().expect("lock");
        pool.idle
            .values()
            .flatten()
            .map(|i| i.store.data().limits.memory_bytes)
            .max()
    }

    /// Idle instances held right now (for metrics and tests).
    pub fn idle_instances(&self) -> usize {
        self.pool.lock().expect("lock").total
    }

    async fn call(&self, ctx: CallContext, call: Call<'_>) -> Result<Answer, PluginFault> {
        let org = ctx.organization.clone();
        // A platform admin's call may read across organizations: its instance could hold
        // other tenants' data in memory, so it serves no one after it.
        let reusable = !ctx
            .capabilities
            .contains(crate::auth::Capability::PlatformAdmin);
        let mut inst = match self.checkout(&org) {
            Some(i) => i,
            None => self.instantiate().await?,
        };
        let answer = self.run(&mut inst, ctx, call).await;
        if answer.is_ok() && reusable {
            self.checkin(org, inst);
        }
        answer
    }

    async fn run(
        &self,
        inst: &mut Instance,
        ctx: CallContext,
        call: Call<'_>,
    ) -> Result<Answer, PluginFault> {
        let timeout = Duration::from_millis(self.runtime.limits.plugin_timeout_ms);
        let deadline = super::CallDeadline::new(Instant::now() + timeout);
        inst.uses += 1;
        inst.store.data_mut().begin_call(ctx, deadline.clone());
        inst.store.set_epoch_deadline(1);
        let store = &mut inst.store;
        let endpoint = &inst.endpoint;
        let fut = async {
            match (endpoint, call) {
                (Endpoint::Record(p), Call::Describe) => p
                    .wa_gateway_endpoint()
                    .call_describe(&mut *store)
                    .await
                    .map(Answer::Manifest),
                (Endpoint::Lazy(p), Call::Describe) => p
                    .wa_gateway_handler()
                    .call_describe(&mut *store)
                    .await
                    .map(Answer::Manifest),
                (Endpoint::Record(p), Call::Handle(_, r)) => {
                    // The `plugin` world takes the request whole, lowered in one go.
                    store.data_mut().serve(r);
                    let request = store.data().served_record()?;
                    p.wa_gateway_endpoint()
                        .call_handle(&mut *store, &request)
                        .await
                        .map(|answer| Answer::Handled(answer, None))
                }
                (Endpoint::Lazy(p), Call::Handle(route, r)) => {
                    // The store holds the request; the plugin reads what it needs of it.
                    store.data_mut().serve(r);
                    let route = u32::try_from(route).unwrap_or(u32::MAX);
                    p.wa_gateway_handler()
                        .call_handle(&mut *store, route, crate::hostapi::incoming::handle())
                        .await
                        .map(|answer| Answer::Handled(answer, None))
                }
                (Endpoint::Record(p), Call::Event(e)) => p
                    .wa_gateway_endpoint()
                    .call_on_event(&mut *store, e)
                    .await
                    .map(Answer::Event),
                (Endpoint::Lazy(p), Call::Event(e)) => p
                    .wa_gateway_handler()
                    .call_on_event(&mut *store, e)
                    .await
                    .map(Answer::Event),
            }
        };
        // Wasm time is bounded by the epoch deadline; host calls that can wait on the
        // network bound themselves by the same deadline (`hostapi::within`), and the
        // watchdog ends a call still waiting at its deadline anyway (a WASI sleep). No
        // timer per call: arming one on every request wakes the timer driver and costs
        // more than the call itself.
        let mut result = match self.runtime.watchdog.bound(deadline, fut).await {
            Ok(r) => r.map_err(PluginFault::from_wasmtime),
            Err(_overdue) => Err(PluginFault::Timeout),
        };
        // Media the answer names stays in the host: taken from the call before it ends.
        if let Ok(Answer::Handled(Ok(response), blob)) = &mut result
            && let Some((_, handle)) = response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(BLOB_HEADER))
        {
            *blob = inst.store.data_mut().take_blob(handle);
        }
        inst.store.data_mut().end_call();
        result
    }

    async fn instantiate(&self) -> Result<Instance, PluginFault> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.runtime.memory_bytes(&self.name) as usize)
            .trap_on_grow_failure(true)
            .build();
        let state = InstanceState::new(
            self.name.clone(),
            self.kv.clone(),
            self.runtime.services.clone(),
            limits,
        );
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline.get() {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        // Instantiation runs the component's start code, so it gets a deadline too.
        store.data_mut().deadline = super::CallDeadline::new(
            Instant::now() + Duration::from_millis(self.runtime.limits.plugin_timeout_ms),
        );
        store.set_epoch_deadline(1);
        let endpoint = match &self.pre {
            EndpointPre::Record(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Endpoint::Record),
            EndpointPre::Lazy(pre) => pre.instantiate_async(&mut store).await.map(Endpoint::Lazy),
        };
        match endpoint {
            Ok(endpoint) => Ok(Instance {
                store,
                endpoint,
                uses: 0,
            }),
            Err(e) => {
                let text = format!("{e:#}");
                if text.contains("maximum concurrent") || text.contains("limit of") {
                    // The pooling allocator is full: drop idle instances and report.
                    self.evict_all();
                    Err(PluginFault::Capacity(text))
                } else {
                    Err(PluginFault::Instantiate(text))
                }
            }
        }
    }

    fn checkout(&self, org: &Arc<str>) -> Option<Instance> {
        let mut pool = self.pool.lock().expect("lock");
        let inst = pool.idle.get_mut(org)?.pop()?;
        pool.total -= 1;
        Some(inst)
    }

    fn checkin(&self, org: Arc<str>, inst: Instance) {
        if inst.uses >= MAX_USES_PER_INSTANCE {
            return;
        }
        let limits = &self.runtime.limits;
        let mut pool = self.pool.lock().expect("lock");
        if pool.total >= self.runtime.idle_instances(&self.name) {
            return;
        }
        let list = pool.idle.entry(org).or_default();
        if list.len() >= limits.idle_instances_per_org {
            return;
        }
        list.push(inst);
        pool.total += 1;
    }

    /// Drops every idle instance (capacity pressure, or the plugin being unloaded).
    pub fn evict_all(&self) {
        let mut pool = self.pool.lock().expect("lock");
        pool.idle.clear();
        pool.total = 0;
    }
}
