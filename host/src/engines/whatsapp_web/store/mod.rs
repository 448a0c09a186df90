//! whatsapp-rust's storage `Backend` on redb: device keys, Signal sessions and keys,
//! app-state sync, LID↔phone mappings and the protocol's bookkeeping, all in the engine
//! table under the session's scope — so a paired session survives a restart of the
//! gateway, and deleting or logging out a session removes it in one range delete.
//!
//! Each logical table is a key prefix (`ns/`); composite keys join their parts with a NUL
//! byte, which no JID, address or message id contains. Semantics follow the library's
//! reference `InMemoryBackend`. One file per store trait the `Backend` is made of.

mod app_sync;
mod device;
mod msg_secret;
mod protocol;
mod signal;

use crate::storage::{Database, ENGINE_KV, ScanRange, Scope, ScopedKv};
use std::sync::Arc;
use whatsapp_rust::async_trait;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::*;

/// The owner name of the real engine's rows in the engine table.
pub(super) const OWNER: &str = "whatsapp";

pub struct RedbBackend {
    kv: ScopedKv,
    scope: Scope,
}

impl RedbBackend {
    pub fn new(db: Database, session: &str) -> RedbBackend {
        RedbBackend {
            kv: ScopedKv::new(db, ENGINE_KV, OWNER),
            scope: Scope::Session(session.to_owned()),
        }
    }

    /// Removes every row of the session (logout, delete), in one transaction.
    pub fn wipe(
        db: &Database,
        session: &str,
    ) -> std::result::Result<u64, crate::storage::StorageError> {
        let this = RedbBackend::new(db.clone(), session);
        this.kv.purge(&this.scope)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.kv.get(&self.scope, key).map_err(db_err)
    }

    async fn write(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let (kv, scope) = (self.kv.clone(), self.scope.clone());
        // A durable commit waits on the disk: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            for chunk in ops.chunks(1000) {
                kv.write(&scope, chunk)?;
            }
            Ok::<_, crate::storage::StorageError>(())
        })
        .await
        .map_err(|e| StoreError::Database(Box::new(e)))?
        .map_err(db_err)
    }

    /// Writes `(key part, value)` rows of one namespace in one transaction.
    async fn put_rows<'a>(
        &self,
        ns: &str,
        rows: impl Iterator<Item = (&'a [u8], Vec<u8>)>,
    ) -> Result<()> {
        self.write(rows.map(|(k, v)| (key(ns, &[k]), Some(v))).collect())
            .await
    }

    /// Deletes every row under a prefix.
    async fn delete_prefix(&self, p: &[u8]) -> Result<()> {
        let ops = self
            .scan(p)?
            .into_iter()
            .map(|(k, _)| ([p, &k].concat(), None))
            .collect();
        self.write(ops).await
    }

    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.write(vec![(key, Some(value))]).await
    }

    async fn del(&self, key: Vec<u8>) -> Result<()> {
        self.write(vec![(key, None)]).await
    }

    /// Every row under a prefix, keys without the prefix.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .kv
            .scan_all(&self.scope, prefix)
            .map_err(db_err)?
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_vec(), v))
            .collect())
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.get(key)? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(ser_err),
            None => Ok(None),
        }
    }
}

fn db_err(e: crate::storage::StorageError) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn ser_err(e: serde_json::Error) -> StoreError {
    StoreError::Serialization(Box::new(e))
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(ser_err)
}

/// `ns/` + parts joined by NUL.
fn key(ns: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.extend_from_slice(ns.as_bytes());
    k.push(b'/');
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

fn prefix(ns: &str) -> Vec<u8> {
    key(ns, &[])
}

/// Prefix of composite keys whose first part is `first`.
fn prefix_of(ns: &str, first: &[u8]) -> Vec<u8> {
    let mut k = key(ns, &[first]);
    k.push(0);
    k
}

const IDENTITY: &str = "identity";
const SESSION: &str = "session";
const PREKEY: &str = "prekey";
const SIGNED_PREKEY: &str = "signed-prekey";
const SENDER_KEY: &str = "sender-key";
const SYNC_KEY: &str = "sync-key";
const LATEST_SYNC_KEY: &str = "latest-sync-key";
const VERSION: &str = "appstate-version";
const MUTATION_MAC: &str = "mutation-mac";
const SKD: &str = "sender-key-device";
const LID: &str = "lid";
const PN: &str = "pn";
const BASE_KEY: &str = "base-key";
const DEVICES: &str = "devices";
const GROUP_META: &str = "group-meta";
const TC_TOKEN: &str = "tc-token";
const SENT: &str = "sent";
const PENDING: &str = "pending-inbound";
const MSG_SECRET: &str = "msg-secret";
const DEVICE: &str = "device";

fn be32(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

/// A value with the time it was stored, for the time-based sweeps.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stamped {
    at: i64,
    data: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SecretRow {
    secret: Vec<u8>,
    expires_at: i64,
    message_ts: i64,
}

fn now() -> i64 {
    whatsapp_rust::wacore::time::now_secs()
}

#[cfg(test)]
mod tests;
