//! The gateway's configuration: defaults, then a TOML file, then `GATEWAY_*` environment
//! variables, then command-line flags — each layer overriding the one before.
//!
//! Every key is documented in README.md ("Configuration reference"); keep the two in step.

use crate::auth::Permission;
use crate::plugins::HostInterface;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub storage: StorageConfig,
    pub plugins: PluginsConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub engine: EngineConfig,
    pub events: EventsConfig,
    pub realtime: RealtimeConfig,
    pub messages: MessagesConfig,
    pub quotas: QuotasConfig,
    pub webhooks: WebhooksConfig,
    pub log: LogConfig,
}

/// The outbox (API.md §6.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MessagesConfig {
    /// How long a sync send waits for WhatsApp's acknowledgement before answering 202.
    pub sync_timeout_ms: u64,
    /// How long an item keeps being retried before it fails as `expired`.
    pub outbox_ttl_ms: u64,
    /// How long settled items stay readable (getOutboxItem, listOutbox).
    pub outbox_retention_ms: u64,
    /// How long an Idempotency-Key replays its first request.
    pub idempotency_ttl_ms: u64,
    /// Items one session may have waiting; more are refused with 429.
    pub max_pending_per_session: usize,
    /// `ratePerMin` of a new session (API.md §2: 20).
    pub default_rate_per_min: u32,
    /// `ratePerHour` of a new session (API.md §2: 600).
    pub default_rate_per_hour: u32,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            sync_timeout_ms: 20_000,
            outbox_ttl_ms: 24 * 3_600_000,
            outbox_retention_ms: 7 * 24 * 3_600_000,
            idempotency_ttl_ms: 24 * 3_600_000,
            max_pending_per_session: 10_000,
            default_rate_per_min: 20,
            default_rate_per_hour: 600,
        }
    }
}

/// Webhook delivery (API.md §7.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Accept `http://` target URLs (else `https` only).
    pub allow_http: bool,
    /// Deliver to loopback, private and link-local addresses (SSRF guard off).
    pub allow_private_targets: bool,
    /// One attempt's budget: connect, send, and the answer's status and excerpt.
    pub timeout_ms: u64,
    /// Attempts one webhook has under way at once.
    pub max_in_flight: usize,
    /// Webhooks one organization may have.
    pub max_per_org: usize,
    /// How long finished deliveries (succeeded and dead) are kept.
    pub retention_ms: u64,
    /// Dead deliveries kept per webhook; the oldest go first.
    pub max_dead_per_webhook: usize,
    /// A webhook whose deliveries have all gone dead for this long is disabled.
    pub disable_after_ms: u64,
    /// How long a rotated-out secret keeps signing.
    pub secret_overlap_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_http: false,
            allow_private_targets: false,
            timeout_ms: 10_000,
            max_in_flight: 16,
            max_per_org: 100,
            retention_ms: 7 * 24 * 3_600_000,
            max_dead_per_webhook: 10_000,
            disable_after_ms: 24 * 3_600_000,
            secret_overlap_ms: 24 * 3_600_000,
        }
    }
}

/// Per-organization caps; 0 means no cap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    pub max_sessions_per_org: usize,
    /// Live (unrevoked) API keys.
    pub max_api_keys_per_org: usize,
    /// Bytes of plugin data (keys and values) across the organization's sessions.
    pub max_stored_bytes_per_org: u64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        QuotasConfig {
            max_sessions_per_org: 100,
            max_api_keys_per_org: 100,
            max_stored_bytes_per_org: 1 << 30,
        }
    }
}

impl QuotasConfig {
    /// A cap, or `None` for 0 (no cap).
    pub fn cap<T: PartialEq + Default>(value: T) -> Option<T> {
        (value != T::default()).then_some(value)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Events one session may have waiting for delivery to plugins. The real engine then
    /// waits (WhatsApp holds the rest); injected sandbox events are refused with 503.
    pub max_queued_per_session: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_queued_per_session: 10_000,
        }
    }
}

/// Realtime event streams over WebSocket (API.md §7.4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Streams one organization may have open at once; one more is refused with 429.
    pub max_streams_per_org: usize,
    /// How long a ticket may wait before it is used.
    pub ticket_ttl_ms: u64,
    /// Events each organization's resume buffer keeps (the newest); 0 turns resume off.
    pub buffer_events: usize,
    /// How long an event stays in the resume buffer.
    pub buffer_ms: u64,
    /// How often the gateway pings each stream.
    pub ping_interval_ms: u64,
    /// A stream whose client sends nothing (not even a pong) for this long is closed.
    pub pong_timeout_ms: u64,
    /// How often each stream's credential is checked: a revoked API key or an expired
    /// JWT closes its streams with 4001.
    pub auth_check_ms: u64,
    /// Frames waiting for a slow client; one more closes its stream with 4008.
    pub max_unsent_frames: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            max_streams_per_org: 50,
            ticket_ttl_ms: 30_000,
            buffer_events: 50_000,
            buffer_ms: 15 * 60_000,
            ping_interval_ms: 30_000,
            pong_timeout_ms: 60_000,
            auth_check_ms: 60_000,
            max_unsent_frames: 1_000,
        }
    }
}

impl RealtimeConfig {
    fn validate(&self, idle_timeout_ms: u64) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("realtime.{m}")));
        if self.max_streams_per_org == 0 || self.max_unsent_frames == 0 {
            return invalid("max_streams_per_org and max_unsent_frames must be at least 1");
        }
        if self.ticket_ttl_ms == 0 || self.auth_check_ms == 0 || self.ping_interval_ms == 0 {
            return invalid("ticket_ttl_ms, auth_check_ms and ping_interval_ms must be at least 1");
        }
        // A client answers pings, so it is never silent longer than one ping interval: the
        // connection's idle timeout would otherwise cut healthy streams.
        if self.ping_interval_ms >= idle_timeout_ms {
            return invalid("ping_interval_ms must be shorter than limits.idle_timeout_ms");
        }
        if self.pong_timeout_ms <= self.ping_interval_ms {
            return invalid("pong_timeout_ms must be longer than ping_interval_ms");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the public REST API listens.
    pub listen: SocketAddr,
    /// Names this node in `gatewayId`; defaults to the host name.
    pub gateway_id: Option<String>,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_ms: u64,
    /// Threads serving API requests (each with its own listening socket and runtime, the
    /// request's plugin call included), and the threads of the runtime for background
    /// work and the admin listener; one per CPU core when unset.
    pub worker_threads: Option<usize>,
    /// The gateway's address as clients reach it (`https://wa.example.com`), when a proxy
    /// stands in front; realtime stream URLs are built from it (`wss://…`).
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The operator listener (health, metrics, plugin and key management, sandbox control).
    /// Loopback by default; any other address requires `token`.
    pub listen: SocketAddr,
    /// Bearer token required on the admin listener. Mandatory when it is not on loopback;
    /// at least 16 characters whenever it is set.
    pub token: Option<String>,
    /// Connections the admin listener holds at once.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Holds `gateway.redb` and the compiled-plugin cache.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Every `*.wasm` component here is loaded.
    pub dir: PathBuf,
    /// Precompiled components, keyed by content hash and wasmtime version. Defaults to
    /// `<data_dir>/plugin-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Reload when files in `dir` change.
    pub watch: bool,
    /// Quiet period after a file change before reloading, so a copy in progress is not read.
    pub watch_debounce_ms: u64,
    /// Host interfaces each plugin may import, by plugin name; `"*"` is the default for
    /// plugins not listed. Names: `storage`, `whatsapp-read`, `whatsapp-send`,
    /// `whatsapp-groups`, `session-control`, `whatsapp-chats`, `outbox`, `media`,
    /// `event-bus`, `webhook-delivery`, `platform-admin`, `log`.
    pub grants: BTreeMap<String, Vec<HostInterface>>,
    /// Event names each plugin may publish through `event-bus`, by plugin name: exact
    /// names or `prefix.*`. A plugin not listed may emit `<its name>.*`.
    pub emits: BTreeMap<String, Vec<String>>,
    /// Limits of one plugin that differ from `[limits]`, by plugin name: a JavaScript
    /// component carries its JS engine and needs more linear memory than a Rust one.
    pub limits: BTreeMap<String, PluginLimits>,
}

/// One plugin's own limits (`[plugins.limits.<name>]`); each unset key follows `[limits]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Linear memory one instance of this plugin may grow to (`limits.plugin_memory_bytes`).
    pub memory_bytes: Option<u64>,
    /// Idle instances of this plugin kept for reuse, across organizations
    /// (`limits.idle_instances_per_plugin`).
    pub idle_instances: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: u64,
    /// Largest accepted request head (request line and headers).
    pub max_header_bytes: usize,
    /// Time allowed for a request head to arrive.
    pub header_read_timeout_ms: u64,
    /// Time allowed for a request body to arrive.
    pub body_read_timeout_ms: u64,
    /// A connection that sends nothing for this long is closed (idle keep-alive, or a peer
    /// gone silent); longer than any request may take to answer.
    pub idle_timeout_ms: u64,
    /// A write to a client that stopped reading is given up after this long, and the
    /// connection closed.
    pub write_timeout_ms: u64,
    /// Connections the API listener holds at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Wall-clock budget of one plugin call (request or event).
    pub plugin_timeout_ms: u64,
    /// Linear memory one plugin instance may grow to.
    pub plugin_memory_bytes: u64,
    /// Plugin instances alive at once across all plugins (the pooling allocator's size).
    pub max_instances: u32,
    /// Idle instances kept per plugin and organization for reuse.
    pub idle_instances_per_org: usize,
    /// Idle instances kept per plugin across organizations.
    pub idle_instances_per_plugin: usize,
    /// Largest value a plugin may store under one key.
    pub max_value_bytes: usize,
    /// Most bytes (keys and values) one atomic plugin write may carry, however many
    /// operations it holds.
    pub max_write_bytes: usize,
    /// Largest media file `POST /sessions/{session}/media` takes (413 beyond).
    pub max_media_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// JWKS of the dashboard that mints person logins: `https://…`, `http://…` or a file path.
    /// Without it only API keys authenticate.
    pub jwks_url: Option<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim (any of), when set.
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// How long fetched keys are trusted before a background refresh.
    pub jwks_ttl_secs: u64,
    /// How long past the TTL keys stay trusted while the JWKS cannot be fetched; after
    /// that, tokens are refused until a refresh succeeds.
    pub jwks_max_stale_secs: u64,
    /// An unknown `kid` triggers at most one JWKS refresh per this interval.
    pub jwks_min_refresh_secs: u64,
    /// Timeout of one JWKS fetch.
    pub jwks_fetch_timeout_ms: u64,
    /// Claim carrying the organization id.
    pub org_claim: String,
    /// Claim carrying the organization role.
    pub role_claim: String,
    /// Claim carrying the platform role (`super_admin`).
    pub platform_role_claim: String,
    /// Org role → permissions (`read`, `send`, `manage`).
    pub roles: BTreeMap<String, Vec<Permission>>,
    /// How often API keys' last-used times are written to disk.
    pub last_used_flush_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// The simulated WhatsApp (no phone needed).
    Sandbox,
    /// The real WhatsApp Web multi-device protocol.
    WhatsappRust,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub kind: EngineKind,
    /// How long one engine lifecycle call (start, stop, logout, pair code) may take
    /// before it fails; a session's slow call never holds up another session's.
    pub call_timeout_ms: u64,
    pub sandbox: SandboxConfig,
    pub whatsapp_rust: WhatsappRustConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// The simulated world (contacts, groups, chats). Without it the world is empty.
    pub world: Option<PathBuf>,
    /// Complete pairing as soon as a session starts, without a simulated scan.
    pub auto_pair: bool,
    /// Lifetime of a QR code or pair code.
    pub code_ttl_ms: u64,
    /// Time from `start` to the first QR code (or to `working` for a paired session).
    pub connect_delay_ms: u64,
    /// Time from a send's acknowledgement to the recipient's delivered receipt.
    pub delivered_after_ms: u64,
    /// Time from the delivered receipt to the read receipt; 0 = never read.
    pub read_after_ms: u64,
    /// Time each scope of an admin backfill takes to re-read (a WhatsApp round trip).
    pub backfill_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappRustConfig {
    /// Failed connection attempts in a row before the session is marked `failed` (the
    /// library retries with a Fibonacci backoff capped at 15 minutes); 0 retries forever.
    pub max_attempts: u32,
    /// Another WhatsApp server (`ws://…`): the wire-level stand-in the tests run. Only
    /// builds made for tests accept it — they skip the check that the server's
    /// certificate chain is WhatsApp's; a release build refuses the key.
    pub server_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `gateway=debug,wasmtime=warn`); `RUST_LOG` wins.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            gateway_id: None,
            shutdown_grace_ms: 30_000,
            worker_threads: None,
            public_url: None,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:8081".parse().expect("valid literal"),
            token: None,
            max_connections: 64,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        use HostInterface::*;
        PluginsConfig {
            dir: PathBuf::from("target/plugins"),
            cache_dir: None,
            watch: true,
            watch_debounce_ms: 300,
            emits: BTreeMap::from([
                ("chats".to_owned(), vec!["chats.*".to_owned()]),
                (
                    "groups".to_owned(),
                    vec!["groups.*".to_owned(), "group.*".to_owned()],
                ),
            ]),
            limits: BTreeMap::from([(
                "labels".to_owned(),
                PluginLimits {
                    // Measured (README.md, "Writing a plugin in JavaScript"): an instance of
                    // the JS engine holds ~9 MiB of linear memory once it has served (a Rust
                    // plugin ~1 MiB), and its GC heap grows in 1 MiB chunks under load: its
                    // own ceiling, whatever `limits.plugin_memory_bytes` says, and fewer
                    // idle instances, since each keeps those 9 MiB resident.
                    memory_bytes: Some(96 << 20),
                    idle_instances: Some(16),
                },
            )]),
            grants: BTreeMap::from([
                ("*".to_owned(), vec![Storage, Log]),
                ("labels".to_owned(), vec![Storage, SessionControl]),
                ("sessions".to_owned(), vec![SessionControl, Log]),
                (
                    "contacts".to_owned(),
                    vec![Storage, WhatsappRead, WhatsappSend, Log],
                ),
                (
                    "chats".to_owned(),
                    vec![Storage, WhatsappChats, EventBus, Log],
                ),
                (
                    "groups".to_owned(),
                    vec![Storage, WhatsappRead, WhatsappGroups, EventBus, Log],
                ),
                ("messages".to_owned(), vec![Storage, Outbox, Media, Log]),
                ("webhooks".to_owned(), vec![WebhookDelivery, Log]),
                ("admin".to_owned(), vec![SessionControl, PlatformAdmin, Log]),
            ]),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            write_timeout_ms: 30_000,
            max_connections: 10_000,
            plugin_timeout_ms: 5_000,
            plugin_memory_bytes: 64 << 20,
            max_instances: 1_000,
            idle_instances_per_org: 4,
            idle_instances_per_plugin: 64,
            max_value_bytes: gateway_sdk::limits::DEFAULT_MAX_VALUE_BYTES,
            max_write_bytes: gateway_sdk::limits::DEFAULT_MAX_WRITE_BYTES,
            max_media_bytes: 16 << 20,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        use Permission::*;
        AuthConfig {
            jwks_url: None,
            issuer: None,
            audience: Vec::new(),
            leeway_secs: 30,
            jwks_ttl_secs: 300,
            jwks_max_stale_secs: 3_600,
            jwks_min_refresh_secs: 30,
            jwks_fetch_timeout_ms: 5_000,
            org_claim: "org".into(),
            role_claim: "role".into(),
            platform_role_claim: "platform_role".into(),
            roles: BTreeMap::from([
                ("owner".to_owned(), vec![Read, Send, Manage]),
                ("admin".to_owned(), vec![Read, Send, Manage]),
                ("member".to_owned(), vec![Read, Send]),
            ]),
            last_used_flush_ms: 30_000,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Sandbox,
            call_timeout_ms: 15_000,
            sandbox: SandboxConfig::default(),
            whatsapp_rust: WhatsappRustConfig::default(),
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            world: None,
            auto_pair: false,
            code_ttl_ms: 60_000,
            connect_delay_ms: 50,
            delivered_after_ms: 300,
            read_after_ms: 1_500,
            backfill_delay_ms: 100,
        }
    }
}

impl Default for WhatsappRustConfig {
    fn default() -> Self {
        WhatsappRustConfig {
            max_attempts: 20,
            server_url: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Command-line values that override the file and environment (only those given).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineKind>,
}

/// A configuration that could not be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The shortest admin token accepted: a token is the only thing between the network
/// and minting keys for every organization.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

impl Config {
    /// Reads defaults ← `file` (when given) ← `GATEWAY_*` env ← `overrides`.
    ///
    /// Environment keys use `__` between levels: `GATEWAY_LIMITS__MAX_BODY_BYTES=2048`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("GATEWAY_").split("__").ignore(&["config"]));
        let mut config: Config = figment.extract().map_err(Box::new)?;
        if let Some(v) = overrides.listen {
            config.server.listen = v;
        }
        if let Some(v) = overrides.admin_listen {
            config.admin.listen = v;
        }
        if let Some(v) = &overrides.data_dir {
            config.storage.data_dir = v.clone();
        }
        if let Some(v) = &overrides.plugin_dir {
            config.plugins.dir = v.clone();
        }
        if let Some(v) = overrides.engine {
            config.engine.kind = v;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Some(token) = &self.admin.token
            && token.trim().chars().count() < MIN_ADMIN_TOKEN_CHARS
        {
            return invalid(format!(
                "admin.token must be at least {MIN_ADMIN_TOKEN_CHARS} characters (an empty or short token would leave the operator API guessable)"
            ));
        }
        if !self.admin.listen.ip().is_loopback() && self.admin.token.is_none() {
            return invalid(format!(
                "admin.listen {} is not loopback: set admin.token so the operator API is not open",
                self.admin.listen
            ));
        }
        if let Some(url) = &self.engine.whatsapp_rust.server_url {
            if !cfg!(feature = "test-server") {
                return invalid(format!(
                    "engine.whatsapp_rust.server_url ({url}) is accepted only by builds made for tests: \
                     they skip the check that the server's certificate chain is WhatsApp's, which this build never does"
                ));
            }
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return invalid(
                    "engine.whatsapp_rust.server_url must be a ws:// or wss:// URL".into(),
                );
            }
        }
        if self.server.worker_threads == Some(0) {
            return invalid("server.worker_threads must be at least 1".into());
        }
        if self.limits.max_instances == 0 {
            return invalid("limits.max_instances must be at least 1".into());
        }
        if self.limits.plugin_timeout_ms == 0 {
            return invalid("limits.plugin_timeout_ms must be at least 1".into());
        }
        if self.limits.idle_timeout_ms < 1_000 || self.limits.write_timeout_ms < 1_000 {
            return invalid(
                "limits.idle_timeout_ms and limits.write_timeout_ms must be at least 1000".into(),
            );
        }
        if self.limits.max_connections == 0 || self.admin.max_connections == 0 {
            return invalid(
                "limits.max_connections and admin.max_connections must be at least 1".into(),
            );
        }
        if self.limits.max_write_bytes < self.limits.max_value_bytes {
            return invalid(
                "limits.max_write_bytes must be at least limits.max_value_bytes".into(),
            );
        }
        if self.limits.plugin_memory_bytes < (1 << 20) {
            return invalid("limits.plugin_memory_bytes must be at least 1 MiB".into());
        }
        for (name, l) in &self.plugins.limits {
            if l.memory_bytes
                .is_some_and(|m| !((1 << 20)..=(4 << 30)).contains(&m))
            {
                return invalid(format!(
                    "plugins.limits.{name}.memory_bytes must be 1 MiB to 4 GiB"
                ));
            }
        }
        if self.messages.default_rate_per_min == 0 || self.messages.default_rate_per_hour == 0 {
            return invalid(
                "messages.default_rate_per_min and default_rate_per_hour must be at least 1".into(),
            );
        }
        if self.messages.max_pending_per_session == 0 || self.messages.sync_timeout_ms == 0 {
            return invalid(
                "messages.max_pending_per_session and sync_timeout_ms must be at least 1".into(),
            );
        }
        if let Some(url) = &self.server.public_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.contains(['?', '#']) || url.len() > 2048 {
                return invalid(format!(
                    "server.public_url ({url}) must be an http:// or https:// URL without query or fragment"
                ));
            }
        }
        self.realtime.validate(self.limits.idle_timeout_ms)?;
        Ok(())
    }

    pub fn gateway_id(&self) -> String {
        self.server
            .gateway_id
            .clone()
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
    }

    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugins
            .cache_dir
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("plugin-cache"))
    }

    /// Where a running gateway records its pid and actual listen addresses, so the CLI
    /// finds the admin listener even when it was configured on port 0.
    pub fn runtime_file(&self) -> PathBuf {
        self.storage.data_dir.join("gateway.runtime.json")
    }

    /// Where uploaded media files are kept.
    pub fn media_dir(&self) -> PathBuf {
        self.storage.data_dir.join("media")
    }

    pub fn database_path(&self) -> PathBuf {
        self.storage.data_dir.join("gateway.redb")
    }

    /// The event names a plugin may emit: its own entry, else `<name>.*`.
    pub fn emits_for(&self, plugin: &str) -> Vec<String> {
        self.plugins
            .emits
            .get(plugin)
            .cloned()
            .unwrap_or_else(|| vec![format!("{plugin}.*")])
    }

    /// Every event-name pattern some plugin may emit: the `plugins.emits` entries and
    /// `<plugin>.*` for each plugin the configuration names (webhook and stream filters
    /// may subscribe to them).
    pub fn emitted_patterns(&self) -> Vec<String> {
        let mut out: Vec<String> = self.plugins.emits.values().flatten().cloned().collect();
        out.extend(
            self.plugins
                .grants
                .keys()
                .chain(self.plugins.emits.keys())
                .filter(|p| *p != "*")
                .map(|p| format!("{p}.*")),
        );
        out.sort();
        out.dedup();
        out
    }

    /// The grants for a plugin: its own entry, else the `"*"` default, else nothing.
    pub fn grants_for(&self, plugin: &str) -> Vec<HostInterface> {
        self.plugins
            .grants
            .get(plugin)
            .or_else(|| self.plugins.grants.get("*"))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    //! Loading and validation of the configuration file, as the binary does it.

    use super::*;

    fn load_toml(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), overrides)
    }

    #[test]
    fn the_embedded_default_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gateway.toml");
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.engine.kind, EngineKind::Sandbox);
        assert_eq!(config.server.worker_threads, None);
    }

    #[test]
    fn worker_threads_are_read_and_zero_is_refused() {
        let config = load_toml("[server]\nworker_threads = 3\n", &Overrides::default()).unwrap();
        assert_eq!(config.server.worker_threads, Some(3));
        let err = load_toml("[server]\nworker_threads = 0\n", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.worker_threads must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn flags_win_over_the_file_and_unknown_keys_are_errors() {
        let overrides = Overrides {
            listen: Some("127.0.0.1:9999".parse().unwrap()),
            ..Overrides::default()
        };
        let config = load_toml("[server]\nlisten = \"127.0.0.1:7000\"\n", &overrides).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9999".parse().unwrap());
        let err = load_toml("[server]\nworkers = 2\n", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("workers"), "{err}");
    }

    #[test]
    fn grants_and_role_permissions_are_typed_and_unknown_names_refused() {
        let config = load_toml(
            "[plugins.grants]\nnotes = [\"storage\", \"whatsapp-read\"]\n[auth.roles]\nviewer = [\"read\"]\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            config.grants_for("notes"),
            vec![HostInterface::Storage, HostInterface::WhatsappRead]
        );
        assert_eq!(config.grants_for("other"), config.grants_for("*"));
        assert_eq!(config.auth.roles["viewer"], vec![Permission::Read]);
        let err = load_toml(
            "[plugins.grants]\nnotes = [\"storage\", \"filesystem\"]\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("filesystem"), "{err}");
        assert!(err.contains("whatsapp-read"), "names the known ones: {err}");
        let err = load_toml("[auth.roles]\nviewer = [\"raed\"]\n", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("raed") && err.contains("manage"), "{err}");
    }

    #[test]
    fn per_plugin_limits_merge_with_the_defaults_and_are_checked() {
        let config = load_toml(
            "[plugins.limits.chaos-js]\nmemory_bytes = 33554432\n[plugins.grants]\nlabels = [\"storage\"]\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            config.plugins.limits["chaos-js"].memory_bytes,
            Some(32 << 20)
        );
        assert_eq!(config.plugins.limits["chaos-js"].idle_instances, None);
        // The JavaScript plugin's own defaults stay unless the file sets them.
        assert_eq!(config.plugins.limits["labels"].memory_bytes, Some(96 << 20));
        assert_eq!(config.grants_for("labels"), vec![HostInterface::Storage]);
        let err = load_toml(
            "[plugins.limits.labels]\nmemory_bytes = 1000\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("plugins.limits.labels.memory_bytes"), "{err}");
        let err = load_toml(
            "[plugins.limits.labels]\nmemory = 1\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn realtime_keys_are_read_and_their_intervals_checked() {
        let config = load_toml(
            "[server]\npublic_url = \"https://wa.example.com\"\n[realtime]\nmax_streams_per_org = 1\nping_interval_ms = 200\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.realtime.max_streams_per_org, 1);
        assert_eq!(config.realtime.ping_interval_ms, 200);
        assert_eq!(config.realtime.buffer_events, 50_000);
        assert_eq!(
            config.server.public_url.as_deref(),
            Some("https://wa.example.com")
        );
        for (text, needle) in [
            ("[realtime]\nping_interval_ms = 60000\n", "idle_timeout_ms"),
            (
                "[realtime]\nping_interval_ms = 2000\npong_timeout_ms = 1000\n",
                "pong_timeout_ms",
            ),
            (
                "[realtime]\nmax_streams_per_org = 0\n",
                "max_streams_per_org",
            ),
            ("[realtime]\nauth_check_ms = 0\n", "auth_check_ms"),
            ("[realtime]\nmax_streams = 3\n", "max_streams"),
            ("[server]\npublic_url = \"wa.example.com\"\n", "public_url"),
            (
                "[server]\npublic_url = \"https://wa.example.com/?x=1\"\n",
                "public_url",
            ),
        ] {
            let err = load_toml(text, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn an_open_admin_listener_needs_a_token() {
        let err = load_toml(
            "[admin]\nlisten = \"0.0.0.0:8081\"\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("admin.token"), "{err}");
        load_toml(
            "[admin]\nlisten = \"0.0.0.0:8081\"\ntoken = \"s3cret-operator-token\"\n",
            &Overrides::default(),
        )
        .unwrap();
        for short in ["", "   ", "short-token"] {
            let err = load_toml(
                &format!("[admin]\nlisten = \"0.0.0.0:8081\"\ntoken = {short:?}\n"),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("at least 16 characters"), "{short:?}: {err}");
        }
    }
}
