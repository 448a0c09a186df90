//! The `gateway` command line: `serve`, `apikey create|list|revoke`,
//! `plugins list|reload|check`. Commands that change a running gateway talk to its admin
//! listener; `apikey` opens the database directly when no gateway holds it.

use crate::config::{Config, EngineKind, Overrides};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "gateway",
    version,
    about = "Multi-tenant WhatsApp API gateway with WebAssembly endpoint plugins"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from; flags override the file and `GATEWAY_*` variables.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', global = true, env = "GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Public API listen address (server.listen).
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// Admin listener address (admin.listen).
    #[arg(long, global = true)]
    pub admin_listen: Option<SocketAddr>,
    /// Data directory (storage.data_dir).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Plugin directory (plugins.dir).
    #[arg(long, global = true)]
    pub plugin_dir: Option<PathBuf>,
    /// WhatsApp engine (engine.kind).
    #[arg(long, global = true, value_parser = parse_engine)]
    pub engine: Option<EngineKind>,
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    match s {
        "sandbox" => Ok(EngineKind::Sandbox),
        "whatsapp-rust" => Ok(EngineKind::WhatsappRust),
        _ => Err("expected sandbox or whatsapp-rust".into()),
    }
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        Config::load(
            self.config.as_deref(),
            &Overrides {
                listen: self.listen,
                admin_listen: self.admin_listen,
                data_dir: self.data_dir.clone(),
                plugin_dir: self.plugin_dir.clone(),
                engine: self.engine,
            },
        )
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve,
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Inspect and reload plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Subcommand, Debug)]
pub enum ApikeyCommand {
    /// Mint a key; prints the secret once.
    Create {
        /// Organization the key belongs to.
        #[arg(long)]
        org: String,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Comma-separated permissions: read, send, manage.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        permissions: Vec<crate::auth::Permission>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List live keys (never their secrets).
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// List the plugins a running gateway has loaded.
    List,
    /// Ask a running gateway to reload its plugin directory.
    Reload,
    /// Validate a component offline: compiles, imports within grants, routes well-formed
    /// and free of conflicts with the plugin directory; prints its routes.
    Check { file: PathBuf },
}
