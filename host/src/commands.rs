//! What each CLI command does.

use crate::app::App;
use crate::auth::{ApiKey, ApiKeyStore, Capability, Permission};
use crate::cli::{ApikeyCommand, Cli, Command, PluginsCommand};
use crate::config::Config;
use crate::storage::{Database, StorageError};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::Duration;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.load()?;
    match cli.command {
        Command::Serve => serve(config),
        Command::Apikey(cmd) => apikey(&config, cmd),
        Command::Plugins(cmd) => plugins(config, cmd),
    }
}

/// The multi-threaded runtime the gateway's background work and the admin listener run
/// on (API requests have threads of their own, `http::per_core`); `workers` caps its
/// threads (the default is one per core).
fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    Ok(builder.enable_all().thread_name("gateway").build()?)
}

fn serve(config: Config) -> anyhow::Result<()> {
    let _logs = crate::logs::init(&config);
    let app_runtime = runtime(config.server.worker_threads)?;
    crate::background::set_app_runtime(app_runtime.handle().clone());
    app_runtime.block_on(async move {
        let app = App::build(config).await?;
        app.run().await
    })
}

/// Talks to a running gateway's admin listener.
struct AdminClient {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl AdminClient {
    fn new(config: &Config) -> AdminClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        // A running gateway records where it actually listens (the port may be 0 in config).
        let recorded = std::fs::read_to_string(config.runtime_file())
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["admin"].as_str().map(str::to_owned));
        AdminClient {
            base: recorded.unwrap_or_else(|| format!("http://{}", config.admin.listen)),
            token: config.admin.token.clone(),
            agent,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                match body {
                    Some(b) => r.send_json(b),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = result.with_context(|| {
            format!(
                "cannot reach the gateway's admin listener at {} (is it running?)",
                self.base
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            let msg = value["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            bail!("{msg} (HTTP {status})");
        }
        Ok((status, value))
    }
}

/// Where API key commands act: the database itself, or the gateway that holds it open.
enum KeyBackend {
    Direct(ApiKeyStore),
    Running(AdminClient),
}

fn key_backend(config: &Config) -> anyhow::Result<KeyBackend> {
    match Database::open(&config.database_path()) {
        Ok(db) => Ok(KeyBackend::Direct(ApiKeyStore::load(db)?)),
        Err(StorageError::Locked(_)) => Ok(KeyBackend::Running(AdminClient::new(config))),
        Err(e) => Err(e.into()),
    }
}

fn apikey(config: &Config, cmd: ApikeyCommand) -> anyhow::Result<()> {
    let backend = key_backend(config)?;
    match cmd {
        ApikeyCommand::Create {
            org,
            name,
            permissions,
            json: as_json,
        } => {
            let (key, secret): (ApiKey, String) = match &backend {
                KeyBackend::Direct(store) => {
                    let k = store.create(&org, &name, &permissions, "cli")?;
                    (k.key, k.secret)
                }
                KeyBackend::Running(admin) => {
                    let (_, v) = admin.call(
                        "POST",
                        "/admin/api-keys",
                        Some(
                            json!({"organization": org, "name": name, "permissions": permissions}),
                        ),
                    )?;
                    (
                        serde_json::from_value(v["key"].clone())?,
                        v["secret"].as_str().unwrap_or_default().to_owned(),
                    )
                }
            };
            if as_json {
                println!(
                    "{}",
                    json!({"id": key.id, "organization": key.organization_id, "permissions": key.permissions, "key": secret})
                );
            } else {
                println!(
                    "Created API key {} for {} ({}).",
                    key.id,
                    key.organization_id,
                    perms_text(&key.permissions)
                );
                println!("Secret (shown once, store it now):\n{secret}");
            }
        }
        ApikeyCommand::List { org, json: as_json } => {
            let keys: Vec<ApiKey> = match &backend {
                KeyBackend::Direct(store) => store.list(org.as_deref()),
                KeyBackend::Running(admin) => {
                    let path = match &org {
                        Some(o) => format!("/admin/api-keys?organization={o}"),
                        None => "/admin/api-keys".into(),
                    };
                    serde_json::from_value(admin.call("GET", &path, None)?.1["data"].clone())?
                }
            };
            if as_json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                println!("No API keys.");
            } else {
                for k in keys {
                    println!(
                        "{}  {:<16} {:<20} {:<18} {}",
                        k.id,
                        k.organization_id,
                        k.name,
                        perms_text(&k.permissions),
                        k.prefix
                    );
                }
            }
        }
        ApikeyCommand::Revoke { id } => {
            let revoked = match &backend {
                KeyBackend::Direct(store) => store.revoke(&id, None)?,
                KeyBackend::Running(admin) => admin
                    .call("DELETE", &format!("/admin/api-keys/{id}"), None)
                    .is_ok(),
            };
            if !revoked {
                bail!("no live API key {id}");
            }
            println!("Revoked {id}.");
        }
    }
    Ok(())
}

fn perms_text(perms: &[Permission]) -> String {
    perms
        .iter()
        .map(|p| Capability::from(*p).as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn plugins(config: Config, cmd: PluginsCommand) -> anyhow::Result<()> {
    match cmd {
        PluginsCommand::List => {
            let (_, v) = AdminClient::new(&config).call("GET", "/admin/plugins", None)?;
            for p in v["data"].as_array().cloned().unwrap_or_default() {
                let name = p["name"].as_str().unwrap_or("?");
                match p["version"].as_str() {
                    Some(ver) => println!(
                        "{name} {ver}  {} routes  {}",
                        p["routes"].as_array().map_or(0, Vec::len),
                        p["hash"].as_str().unwrap_or("").get(..12).unwrap_or("")
                    ),
                    None => println!("{name} (not loaded)"),
                }
                if let Some(err) = p["lastError"].as_str() {
                    println!("  last error: {err}");
                }
            }
        }
        PluginsCommand::Reload => {
            let (_, v) = AdminClient::new(&config).call("POST", "/admin/plugins:reload", None)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            if v["refused"].as_object().is_some_and(|r| !r.is_empty()) {
                bail!("some plugins were refused; the previous versions keep serving");
            }
        }
        PluginsCommand::Check { file } => check(config, &file)?,
    }
    Ok(())
}

/// Validates a component offline against a scratch database and the plugin directory.
fn check(mut config: Config, file: &std::path::Path) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    let scratch = std::env::temp_dir().join(format!("gateway-check-{}", ulid::Ulid::generate()));
    let cache = config.plugin_cache_dir();
    config.storage.data_dir = scratch.clone();
    config.plugins.cache_dir = Some(cache);
    config.plugins.watch = false;
    config.engine.kind = crate::config::EngineKind::Sandbox;
    config.engine.sandbox.world = None;
    let result = runtime(None)?.block_on(async {
        let app = App::build(config).await?;
        if app.plugins.dir().is_dir() {
            app.plugins.reload().await;
        }
        let plugin = app
            .plugins
            .check(file)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        println!("{} {} — OK", plugin.name(), plugin.manifest.version);
        println!(
            "imports: {}",
            if plugin.imports.is_empty() {
                "none".to_owned()
            } else {
                plugin
                    .imports
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        for r in &plugin.manifest.routes {
            let path = format!("/api/v1{}", r.template);
            println!(
                "  {:<6} {path:<56} {:<8} {}",
                r.method.as_str(),
                r.capability.as_str(),
                r.operation_id
            );
        }
        if !plugin.manifest.events.is_empty() {
            println!("events: {}", plugin.manifest.events.join(", "));
        }
        anyhow::Ok(())
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
