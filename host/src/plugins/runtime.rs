//! The wasmtime engine every plugin runs on, the linker with the host interfaces, and the
//! on-disk cache of precompiled components.

use super::loader::LoadError;
use super::watchdog::Watchdog;
use crate::config::{LimitsConfig, PluginLimits};
use crate::hostapi::{self, InstanceState, PluginServices};
use crate::storage::Database;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances. A runaway plugin is interrupted within one tick of its
/// deadline, and a busy plugin yields its thread once per tick so others get served.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances per component: a Rust `wasm32-wasip2` component has its main module plus
/// a few small shim modules.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;

pub struct PluginRuntime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<InstanceState>,
    pub(crate) services: Arc<PluginServices>,
    pub(crate) db: Database,
    pub(crate) limits: LimitsConfig,
    /// Per-plugin limits that differ from `limits` (`plugins.limits`).
    plugin_limits: BTreeMap<String, PluginLimits>,
    cache_dir: PathBuf,
    /// Distinguishes artifacts of another wasmtime build or configuration.
    engine_fingerprint: String,
    /// Ends calls that wait in a host call past their deadline.
    pub(crate) watchdog: Arc<Watchdog>,
}

impl PluginRuntime {
    pub fn new(
        limits: &LimitsConfig,
        plugin_limits: &BTreeMap<String, PluginLimits>,
        cache_dir: PathBuf,
        services: Arc<PluginServices>,
        db: Database,
    ) -> anyhow::Result<Arc<PluginRuntime>> {
        // A pool slot must hold the largest memory any plugin may grow to; each store's
        // limiter then holds every instance to its own plugin's limit.
        let largest_memory = plugin_limits
            .values()
            .filter_map(|l| l.memory_bytes)
            .fold(limits.plugin_memory_bytes, u64::max);
        let mut pool = PoolingAllocationConfig::new();
        let n = limits.max_instances;
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            // Stacks are held only while a call runs, never by idle instances.
            .total_stacks(n)
            .max_memory_size(largest_memory as usize)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT * 2)
            .max_memories_per_component(4)
            .max_tables_per_component(CORE_INSTANCES_PER_COMPONENT * 2);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .parallel_compilation(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        hostapi::add_to_linker(&mut linker)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_fingerprint = format!("{:016x}", h.finish());
        let watchdog = Arc::new(Watchdog::default());
        spawn_epoch_ticker(&engine, watchdog.clone());
        crate::storage::create_private_dir(&cache_dir)?;
        Ok(Arc::new(PluginRuntime {
            engine,
            linker,
            services,
            db,
            limits: limits.clone(),
            plugin_limits: plugin_limits.clone(),
            cache_dir,
            engine_fingerprint,
            watchdog,
        }))
    }

    /// The linear memory one instance of `plugin` may grow to.
    pub(crate) fn memory_bytes(&self, plugin: &str) -> u64 {
        self.plugin_limits
            .get(plugin)
            .and_then(|l| l.memory_bytes)
            .unwrap_or(self.limits.plugin_memory_bytes)
    }

    /// Idle instances of `plugin` kept for reuse across organizations.
    pub(crate) fn idle_instances(&self, plugin: &str) -> usize {
        self.plugin_limits
            .get(plugin)
            .and_then(|l| l.idle_instances)
            .unwrap_or(self.limits.idle_instances_per_plugin)
    }

    /// Compiles a component, or loads the precompiled artifact cached for these exact
    /// bytes and this engine. Returns the component and the bytes' SHA-256.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, String), LoadError> {
        let hash = content_hash(bytes);
        let cached = self
            .cache_dir
            .join(format!("{hash}-{}.cwasm", self.engine_fingerprint));
        if cached.exists() {
            match self.load_cached(&cached) {
                Ok(c) => return Ok((c, hash)),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), error = %e, "dropping unusable cached plugin artifact");
                    let _ = std::fs::remove_file(&cached);
                }
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        tracing::info!(
            hash = &hash[..12],
            ms = started.elapsed().as_millis() as u64,
            "compiled plugin component"
        );
        match component.serialize() {
            Ok(artifact) => {
                // Write then rename, so a concurrent reader never sees half a file.
                let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
                if let Err(e) =
                    std::fs::write(&tmp, artifact).and_then(|_| std::fs::rename(&tmp, &cached))
                {
                    tracing::warn!(error = %e, "cannot cache compiled plugin");
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize compiled plugin"),
        }
        Ok((component, hash))
    }

    #[allow(unsafe_code)]
    fn load_cached(&self, path: &Path) -> wasmtime::Result<Component> {
        // SAFETY: the file was written by `compile` above with `Component::serialize` from
        // this same engine configuration (the file name carries the engine's compatibility
        // fingerprint), into the gateway's own cache directory, via write-then-rename so it
        // is never read half-written. wasmtime additionally checks the artifact's header
        // against this engine and refuses mismatches.
        unsafe { Component::deserialize_file(&self.engine, path) }
    }
}

/// The SHA-256 of a component's bytes, hex: its identity in the cache and in reloads.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Advances the engine's epoch every tick for as long as the engine lives, and wakes calls
/// waiting in host calls past their deadline.
fn spawn_epoch_ticker(engine: &Engine, watchdog: Arc<Watchdog>) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                watchdog.tick();
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch thread");
}
