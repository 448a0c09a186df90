//! The sandbox engine: a deterministic simulated WhatsApp for development, demos, plugin
//! authors and tests. A session pairs when a simulated phone scans its QR code or enters
//! its pair code (control calls on the admin listener), or at once with `auto_pair`; live
//! calls act on the world file; the control API can drop and restore a connection, unlink
//! the device from the "phone", inject inbound events and make another admin change a
//! group.

mod chats;
mod control;
mod engine;
mod groups;
mod messaging;
mod sim;
mod world;

pub use engine::Sandbox;
pub use groups::GroupChange;
pub use messaging::{SendFailure, WireMessage};
pub use world::{IndexedWorld, World};

use sim::Sim;

use super::{
    Account, BlockedContact, Engine, EngineError, EngineEvent, EngineSink, OnWhatsapp, PairingCode,
    Picture,
};
use crate::clock::now_ms;
use crate::config::SandboxConfig;
use crate::storage::{Database, ENGINE_KV, Scope, ScopedKv};
use async_trait::async_trait;
use gateway_sdk::Jid;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sync events carry at most this many items, as WhatsApp's own syncs come in chunks.
const SYNC_CHUNK: usize = 200;

const ACCOUNT_KEY: &[u8] = b"account";
const BLOCKED_PREFIX: &[u8] = b"blocked/";
const BLOCKED_INIT_KEY: &[u8] = b"blocked-init";

pub struct SandboxEngine {
    world: Arc<IndexedWorld>,
    sink: EngineSink,
    kv: ScopedKv,
    config: SandboxConfig,
    sims: Mutex<HashMap<String, Sim>>,
    /// How the simulated server treats each session's sends (control API).
    send_failures: Mutex<HashMap<String, SendFailure>>,
    /// Order of arrival on the simulated server; starts at the clock in nanoseconds so it
    /// keeps growing across restarts.
    wire_seq: std::sync::atomic::AtomicU64,
}

/// A control call that could not apply.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The session cannot take more right now.
    #[error("{0}")]
    Busy(String),
}

fn digest_number(parts: &[&str], digits: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let bytes = h.finalize();
    let mut n = u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes"));
    let mut s = String::with_capacity(digits);
    for _ in 0..digits {
        s.push(char::from(b'0' + (n % 10) as u8));
        n /= 10;
    }
    s
}

impl SandboxEngine {
    pub fn new(
        world: IndexedWorld,
        sink: EngineSink,
        db: Database,
        config: SandboxConfig,
    ) -> Arc<SandboxEngine> {
        Arc::new(SandboxEngine {
            world: Arc::new(world),
            sink,
            kv: ScopedKv::new(db, ENGINE_KV, "sandbox"),
            config,
            sims: Mutex::new(HashMap::new()),
            send_failures: Mutex::new(HashMap::new()),
            wire_seq: std::sync::atomic::AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            ),
        })
    }

    fn scope(session: &str) -> Scope {
        Scope::Session(session.to_owned())
    }

    fn account(&self, session: &str) -> Result<Option<Account>, EngineError> {
        let raw = self
            .kv
            .get(&Self::scope(session), ACCOUNT_KEY)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(raw.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    fn save_account(&self, session: &str, account: &Account) -> Result<(), EngineError> {
        let scope = Self::scope(session);
        let mut ops = vec![(
            ACCOUNT_KEY.to_vec(),
            Some(serde_json::to_vec(account).expect("account serialises")),
        )];
        // A fresh pairing starts from the world's block list.
        let initialised = self
            .kv
            .get(&scope, BLOCKED_INIT_KEY)
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .is_some();
        if !initialised {
            ops.push((BLOCKED_INIT_KEY.to_vec(), Some(b"1".to_vec())));
            for b in &self.world.world.blocked {
                if let Ok(j) = gateway_sdk::jid::parse_person(b) {
                    ops.push((blocked_key(&j), Some(now_ms().to_string().into_bytes())));
                }
            }
        }
        self.kv
            .write(&scope, &ops)
            .map(|_| ())
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    /// A durable write, off the async workers (a commit waits on the disk).
    async fn write(
        &self,
        scope: Scope,
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), EngineError> {
        let kv = self.kv.clone();
        tokio::task::spawn_blocking(move || kv.write(&scope, &ops))
            .await
            .map_err(|e| EngineError::Failed(e.to_string()))?
            .map(|_| ())
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    /// Forgets everything the engine stored for a session (its pairing, its block list).
    fn forget(&self, session: &str) -> Result<(), EngineError> {
        self.kv
            .purge(&Self::scope(session))
            .map(|_| ())
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    /// The account a simulated phone pairs as: the given phone, or one derived from the
    /// session id so runs are repeatable.
    fn make_account(&self, session: &str, phone: Option<&str>, push_name: Option<&str>) -> Account {
        let phone = phone
            .map(str::to_owned)
            .unwrap_or_else(|| format!("1555{}", digest_number(&["phone", session], 7)));
        let lid = format!(
            "{}@lid",
            digest_number(&["lid", &phone], 15).trim_start_matches('0')
        );
        Account {
            jid: format!("{phone}@s.whatsapp.net"),
            lid: Some(lid),
            push_name: Some(
                push_name
                    .map(str::to_owned)
                    .or_else(|| self.world.world.push_name.clone())
                    .unwrap_or_else(|| "Sandbox".into()),
            ),
            phone_number: phone,
        }
    }

    fn blocked(&self, session: &str) -> Result<Vec<(String, u64)>, EngineError> {
        let rows = self
            .kv
            .scan_all(&Self::scope(session), BLOCKED_PREFIX)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| {
                let jid = String::from_utf8_lossy(&k[BLOCKED_PREFIX.len()..]).into_owned();
                let at = String::from_utf8_lossy(&v).parse().unwrap_or(0);
                (jid, at)
            })
            .collect())
    }

    /// The world's contact for a JID, or not found.
    fn known(&self, jid: &Jid) -> Result<&world::WorldContact, EngineError> {
        self.world
            .contact(jid)
            .ok_or_else(|| EngineError::NotFound(format!("{jid} is not on WhatsApp")))
    }

    /// Block entries are keyed by LID when the world knows the person.
    fn block_key(&self, jid: &Jid) -> Jid {
        match self.world.contact(jid) {
            Some(c) => Jid::parse(&c.lid).unwrap_or_else(|_| jid.clone()),
            None => jid.to_non_device(),
        }
    }
}

fn blocked_key(jid: &Jid) -> Vec<u8> {
    let mut k = BLOCKED_PREFIX.to_vec();
    k.extend_from_slice(jid.to_non_device().to_string().as_bytes());
    k
}

#[cfg(test)]
mod tests;
