//! Wiring: builds every part of the gateway from the configuration, runs the listeners,
//! and shuts down gracefully on SIGTERM/SIGINT.

use crate::auth::{ApiKeyStore, Authenticator};
use crate::backfill::Backfills;
use crate::config::{Config, EngineKind, QuotasConfig};
use crate::engines::sandbox::{IndexedWorld, Sandbox, SandboxEngine};
use crate::engines::{Engine, EngineSink};
use crate::events::EventBus;
use crate::events::inbox::Inbox;
use crate::hostapi::PluginServices;
use crate::http::{Listener, ServerLimits, ServingThreads};
use crate::media::MediaStore;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::plugins::{PluginRegistry, PluginRuntime};
use crate::realtime::Realtime;
use crate::sessions::{SessionManager, SessionPolicy, SessionRegistry};
use crate::signals::{Signals, wait_for_shutdown};
use crate::storage::Database;
use crate::webhooks::Webhooks;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Everything a request handler may need.
pub struct App {
    pub config: Config,
    pub db: Database,
    pub auth: Arc<Authenticator>,
    pub sessions: Arc<SessionManager>,
    pub plugins: Arc<PluginRegistry>,
    pub metrics: Arc<Metrics>,
    pub outbox: Outbox,
    pub media: MediaStore,
    /// `/openapi.json`, rebuilt when the plugin catalog changes.
    pub openapi: crate::openapi::OpenApiCache,
    /// The sandbox's control surface, when the sandbox engine runs.
    pub sandbox: Option<Arc<SandboxEngine>>,
    /// Inbound WhatsApp events committed before they are acknowledged.
    pub inbox: Inbox,
    /// Webhook targets and their durable deliveries.
    pub webhooks: Webhooks,
    /// Realtime event streams (WebSocket) and their tickets.
    pub realtime: Realtime,
    /// Admin backfill jobs.
    pub backfills: Backfills,
    ready: AtomicBool,
    shutdown: watch::Sender<bool>,
}

impl App {
    /// Builds the gateway: opens the database, the engine, the session manager and the
    /// plugin runtime, and loads the plugins.
    pub async fn build(config: Config) -> anyhow::Result<Arc<App>> {
        let db = Database::open(&config.database_path())?;
        let keys = Arc::new(
            ApiKeyStore::load(db.clone())?
                .with_quota(QuotasConfig::cap(config.quotas.max_api_keys_per_org)),
        );
        let registry = SessionRegistry::load(db.clone())?;
        let metrics = Arc::new(Metrics::new());
        let bus = EventBus::new(config.events.max_queued_per_session);
        let sink = EngineSink::new(bus.clone(), metrics.clone());
        let inbox = Inbox::open(db.clone(), bus.clone())?;

        let (engine, sandbox): (Arc<dyn Engine>, Option<Arc<SandboxEngine>>) =
            match config.engine.kind {
                EngineKind::Sandbox => {
                    let world = match &config.engine.sandbox.world {
                        Some(path) => IndexedWorld::load(path)?,
                        None => IndexedWorld::default(),
                    };
                    let engine = SandboxEngine::new(
                        world,
                        sink.clone(),
                        db.clone(),
                        config.engine.sandbox.clone(),
                    );
                    (Arc::new(Sandbox(engine.clone())), Some(engine))
                }
                EngineKind::WhatsappRust => (
                    crate::engines::whatsapp_web::WhatsappWeb::engine_with_journal(
                        sink.clone(),
                        db.clone(),
                        config.engine.whatsapp_rust.clone(),
                        inbox.journal(sink.clone()),
                    ),
                    None,
                ),
            };
        tracing::info!(engine = engine.name(), "engine ready");
        if let (EngineKind::WhatsappRust, Some(url)) =
            (config.engine.kind, &config.engine.whatsapp_rust.server_url)
        {
            tracing::warn!(
                server = %url,
                "test build: the whatsapp-rust engine talks to a server that is not WhatsApp, without checking its certificate chain"
            );
        }

        let sessions = SessionManager::new(
            registry,
            engine,
            bus.clone(),
            config.gateway_id(),
            SessionPolicy {
                engine_timeout: Duration::from_millis(config.engine.call_timeout_ms),
                max_per_org: QuotasConfig::cap(config.quotas.max_sessions_per_org),
                rate_per_min: config.messages.default_rate_per_min,
                rate_per_hour: config.messages.default_rate_per_hour,
            },
        );
        sink.attach(&sessions);
        crate::sessions::auto_read::spawn(sessions.clone());
        let media = MediaStore::new(config.media_dir(), config.limits.max_media_bytes);
        let outbox = Outbox::new(
            db.clone(),
            sessions.clone(),
            bus.clone(),
            media.clone(),
            config.messages.clone(),
        )?;
        sink.attach_outbox(&outbox);
        {
            // A deleted session's queue, files and inbound journal go with it.
            let (outbox, inbox) = (outbox.clone(), inbox.clone());
            sessions.on_delete(Arc::new(move |id: String| {
                let (outbox, inbox) = (outbox.clone(), inbox.clone());
                Box::pin(async move {
                    if let Err(e) = outbox.purge_session(&id).await {
                        tracing::error!(session = %id, error = %e, "cannot remove the session's outbox");
                    }
                    if let Err(e) = inbox.purge_session(&id).await {
                        tracing::error!(session = %id, error = %e, "cannot remove the session's inbound journal");
                    }
                })
            }));
        }

        let webhooks = Webhooks::start(
            db.clone(),
            config.webhooks.clone(),
            sessions.clone(),
            bus.clone(),
            metrics.clone(),
            config.emitted_patterns(),
        )?;
        let backfills = Backfills::open(db.clone(), sessions.clone(), sink.clone())?;
        {
            // A deleted session's backfill records go with it.
            let backfills = backfills.clone();
            sessions.on_delete(Arc::new(move |id: String| {
                let backfills = backfills.clone();
                Box::pin(async move {
                    if let Err(e) = backfills.purge_session(&id) {
                        tracing::error!(session = %id, error = %e, "cannot remove the session's backfills");
                    }
                })
            }));
        }
        let emits_config = config.clone();
        let services = Arc::new(PluginServices {
            sessions: sessions.clone(),
            outbox: std::sync::OnceLock::from(outbox.clone()),
            webhooks: webhooks.clone(),
            backfills: backfills.clone(),
            bus: bus.clone(),
            emits: Arc::new(move |name: &str| emits_config.emits_for(name)),
            plugin_timeout: Duration::from_millis(config.limits.plugin_timeout_ms),
            sync_timeout: Duration::from_millis(config.messages.sync_timeout_ms),
            max_value_bytes: config.limits.max_value_bytes,
            max_write_bytes: config.limits.max_write_bytes,
            max_stored_bytes_per_org: QuotasConfig::cap(config.quotas.max_stored_bytes_per_org),
        });
        let runtime = PluginRuntime::new(
            &config.limits,
            &config.plugins.limits,
            config.plugin_cache_dir(),
            services,
            db.clone(),
        )?;
        let grants_config = config.clone();
        let plugins = PluginRegistry::new(
            runtime,
            config.plugins.dir.clone(),
            Arc::new(move |name: &str| grants_config.grants_for(name)),
        );
        let jwt = crate::auth::jwt::JwtVerifier::from_config(&config.auth)?.map(Arc::new);
        if let Some(v) = &jwt
            && let Err(e) = v.refresh().await
        {
            // Start anyway: the keys are fetched again when a token needs them.
            tracing::warn!(error = %e, "JWKS not available at start-up");
        }
        let auth = Arc::new(Authenticator::new(keys.clone(), jwt));
        let (shutdown, _) = watch::channel(false);
        let realtime = Realtime::new(
            config.realtime.clone(),
            keys,
            config.server.public_url.clone(),
            shutdown.subscribe(),
        );
        realtime.spawn_feed(bus.subscribe());
        let app = Arc::new(App {
            config,
            db,
            auth,
            sessions,
            plugins,
            metrics,
            outbox,
            media,
            openapi: Default::default(),
            sandbox,
            inbox: inbox.clone(),
            webhooks: webhooks.clone(),
            realtime,
            backfills,
            ready: AtomicBool::new(false),
            shutdown,
        });
        crate::events::delivery::spawn(
            app.plugins.clone(),
            app.metrics.clone(),
            bus,
            inbox,
            webhooks,
        );
        Ok(app)
    }

    /// Whether plugins are loaded and the database answers.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.db.is_healthy()
    }

    /// Asks the listeners to stop (as SIGTERM does).
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Reloads plugins and counts the outcome.
    pub async fn reload_plugins(&self) -> crate::plugins::ReloadReport {
        let report = self.plugins.reload().await;
        let result = if report.refused.is_empty() {
            "ok"
        } else {
            "refused"
        };
        self.metrics
            .reloads
            .get_or_create(&crate::metrics::ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        report
    }

    /// Loads plugins, binds both listeners, resumes sessions and serves until shutdown.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        // Signal handlers and the plugin-directory watcher go in before anything is loaded
        // or announced: a SIGTERM, SIGHUP or file change that comes right after the
        // `listening` lines must drain or reload, not kill or go unnoticed.
        let signals = Signals::install()?;
        crate::reload::spawn_triggers(self.clone(), signals.hangup);
        let report = self.reload_plugins().await;
        tracing::info!(
            loaded = report.loaded.len(),
            refused = report.refused.len(),
            dir = %self.plugins.dir().display(),
            "plugins loaded"
        );
        self.sessions.settle_after_restart();
        let admin = Listener::bind("admin", self.config.admin.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.config.admin.listen))?;
        let admin_addr = admin.local_addr()?;

        let l = &self.config.limits;
        let limits = ServerLimits {
            read_buffer_bytes: (l.max_header_bytes * 4).max(64 * 1024),
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(l.idle_timeout_ms),
            write_timeout: Duration::from_millis(l.write_timeout_ms),
            max_connections: l.max_connections,
            shutdown_grace: Duration::from_millis(self.config.server.shutdown_grace_ms),
        };
        let admin_limits = ServerLimits {
            max_connections: self.config.admin.max_connections,
            ..limits
        };
        let app = self.clone();
        let api_service = Arc::new(move |req, _peer| crate::http::api::handle(app.clone(), req));
        let app = self.clone();
        let admin_service = Arc::new(move |req, _peer| crate::admin::handle(app.clone(), req));
        // The API on its own threads, one per core (`http::per_core`); the admin listener
        // and all background work on this runtime.
        let serving_threads = self
            .config
            .server
            .worker_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut api = ServingThreads::start(
            "api",
            self.config.server.listen,
            serving_threads,
            limits,
            api_service,
            self.shutdown.subscribe(),
        )
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.config.server.listen))?;
        let api_addr = api.local_addr();
        self.realtime.set_listen_addr(api_addr);
        let admin_task = tokio::spawn(crate::http::serve(
            admin,
            admin_limits,
            crate::http::connection_slots(&admin_limits),
            admin_service,
            self.shutdown.subscribe(),
        ));

        self.ready.store(true, Ordering::Release);
        // Announced only once both listeners serve and /readyz says ready. Machine-readable
        // lines on stdout (logs go to stderr): tests and scripts use them to find the ports
        // when listening on port 0.
        println!("listening api http://{api_addr}");
        println!("listening admin http://{admin_addr}");
        let runtime_file = self.config.runtime_file();
        let runtime = serde_json::json!({
            "pid": std::process::id(),
            "api": format!("http://{api_addr}"),
            "admin": format!("http://{admin_addr}"),
        });
        if let Err(e) = std::fs::write(&runtime_file, runtime.to_string()) {
            tracing::warn!(path = %runtime_file.display(), error = %e, "cannot write runtime file");
        }
        tracing::info!(%api_addr, %admin_addr, "gateway listening");
        // What the last run took in but did not deliver comes before anything new.
        if let Err(e) = self.inbox.replay() {
            tracing::error!(error = %e, "cannot replay the inbound journal");
        }
        self.inbox.spawn_pruner();
        self.sessions.resume_all().await;
        match self.outbox.start() {
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot resume the outbox"),
        }
        self.clone().spawn_key_use_flusher();

        wait_for_shutdown(
            self.shutdown.subscribe(),
            signals.terminate,
            signals.interrupt,
        )
        .await;
        tracing::info!("shutting down");
        self.ready.store(false, Ordering::Release);
        self.request_shutdown();
        api.drained().await;
        let _ = admin_task.await;
        // Realtime streams were told to close (1001); let their closing handshakes finish.
        self.realtime.closed(Duration::from_secs(5)).await;
        match self.backfills.shut_down() {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "backfills still running marked interrupted"),
            Err(e) => tracing::error!(error = %e, "cannot mark running backfills interrupted"),
        }
        self.sessions.engine().shutdown().await;
        if let Err(e) = self.auth.api_keys().flush_last_used() {
            tracing::warn!(error = %e, "cannot record API key use");
        }
        let _ = std::fs::remove_file(self.config.runtime_file());
        api.finish().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Records API-key `lastUsedAt` in batches instead of one write per request.
    fn spawn_key_use_flusher(self: Arc<Self>) {
        let app = self.clone();
        let every = Duration::from_millis(self.config.auth.last_used_flush_ms.max(100));
        crate::background::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let keys = app.auth.api_keys().clone();
                match tokio::task::spawn_blocking(move || keys.flush_last_used()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot record API key use"),
                    Err(e) => tracing::warn!(error = %e, "API key flush task failed"),
                    Ok(Ok(_)) => {}
                }
            }
        });
    }
}
