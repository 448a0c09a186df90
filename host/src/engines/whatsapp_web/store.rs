//! whatsapp-rust's storage `Backend` on redb: device keys, Signal sessions and keys,
//! app-state sync, LID↔phone mappings and the protocol's bookkeeping, all in the engine
//! table under the session's scope — so a paired session survives a restart of the
//! gateway, and deleting or logging out a session removes it in one range delete.
//!
//! Each logical table is a key prefix (`ns/`); composite keys join their parts with a NUL
//! byte, which no JID, address or message id contains. Semantics follow the library's
//! reference `InMemoryBackend`.

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

    /// Removes every row of the session (logout, delete).
    pub fn wipe(
        db: &Database,
        session: &str,
    ) -> std::result::Result<(), crate::storage::StorageError> {
        let this = RedbBackend::new(db.clone(), session);
        loop {
            let rows = this.kv.scan(
                &this.scope,
                &ScanRange {
                    limit: 1000,
                    ..Default::default()
                },
            )?;
            if rows.is_empty() {
                return Ok(());
            }
            let ops: Vec<_> = rows.into_iter().map(|(k, _)| (k, None)).collect();
            this.kv.write(&this.scope, &ops)?;
        }
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
        let mut out = Vec::new();
        let mut start: Option<std::ops::Bound<Vec<u8>>> = None;
        loop {
            let rows = self
                .kv
                .scan(
                    &self.scope,
                    &ScanRange {
                        prefix: prefix.to_vec(),
                        start: start.clone(),
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .map_err(db_err)?;
            let done = rows.len() < 1000;
            if let Some((k, _)) = rows.last() {
                start = Some(std::ops::Bound::Excluded(k.clone()));
            }
            out.extend(
                rows.into_iter()
                    .map(|(k, v)| (k[prefix.len()..].to_vec(), v)),
            );
            if done {
                return Ok(out);
            }
        }
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

#[async_trait]
impl SignalStore for RedbBackend {
    async fn put_identity(&self, address: &str, key_bytes: [u8; 32]) -> Result<()> {
        self.put(key(IDENTITY, &[address.as_bytes()]), key_bytes.to_vec())
            .await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        self.put_rows(
            IDENTITY,
            identities.iter().map(|(a, k)| (a.as_bytes(), k.to_vec())),
        )
        .await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        Ok(self
            .get(&key(IDENTITY, &[address.as_bytes()]))?
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()))
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.del(key(IDENTITY, &[address.as_bytes()])).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self
            .get(&key(SESSION, &[address.as_bytes()]))?
            .map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put(key(SESSION, &[address.as_bytes()]), session.to_vec())
            .await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_rows(
            SESSION,
            sessions.iter().map(|(a, s)| (a.as_bytes(), s.to_vec())),
        )
        .await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.del(key(SESSION, &[address.as_bytes()])).await
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        Ok(self.get(&key(SESSION, &[address.as_bytes()]))?.is_some())
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` or `user:device@server`.
        for ns in [SESSION, IDENTITY] {
            for sep in [b'@', b':'] {
                let mut p = prefix(ns);
                p.extend_from_slice(user.as_bytes());
                p.push(sep);
                let hit = self
                    .kv
                    .scan(
                        &self.scope,
                        &ScanRange {
                            prefix: p,
                            limit: 1,
                            ..Default::default()
                        },
                    )
                    .map_err(db_err)?;
                if !hit.is_empty() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn store_prekey(&self, id: u32, record: &[u8], _uploaded: bool) -> Result<()> {
        self.put(key(PREKEY, &[&be32(id)]), record.to_vec()).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], _uploaded: bool) -> Result<()> {
        self.write(
            keys.iter()
                .map(|(id, r)| (key(PREKEY, &[&be32(*id)]), Some(r.to_vec())))
                .collect(),
        )
        .await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self.get(&key(PREKEY, &[&be32(id)]))?.map(Bytes::from))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(v) = self.get(&key(PREKEY, &[&be32(id)]))? {
                out.push((id, Bytes::from(v)));
            }
        }
        Ok(out)
    }

    async fn mark_prekeys_uploaded(&self, _ids: &[u32]) -> Result<()> {
        // Like the reference backend, the uploaded flag is not tracked; what matters is not
        // resurrecting removed keys, which a no-op guarantees.
        Ok(())
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.del(key(PREKEY, &[&be32(id)])).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let rows = self
            .kv
            .scan(
                &self.scope,
                &ScanRange {
                    prefix: prefix(PREKEY),
                    limit: 1,
                    reverse: true,
                    ..Default::default()
                },
            )
            .map_err(db_err)?;
        Ok(rows
            .first()
            .and_then(|(k, _)| k.get(k.len().saturating_sub(4)..))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .unwrap_or(0))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.put(key(SIGNED_PREKEY, &[&be32(id)]), record.to_vec())
            .await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get(&key(SIGNED_PREKEY, &[&be32(id)]))
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        Ok(self
            .scan(&prefix(SIGNED_PREKEY))?
            .into_iter()
            .filter_map(|(k, v)| Some((u32::from_be_bytes(k.try_into().ok()?), v)))
            .collect())
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.del(key(SIGNED_PREKEY, &[&be32(id)])).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put(key(SENDER_KEY, &[address.as_bytes()]), record.to_vec())
            .await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_rows(
            SENDER_KEY,
            sender_keys.iter().map(|(a, r)| (a.as_bytes(), r.to_vec())),
        )
        .await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get(&key(SENDER_KEY, &[address.as_bytes()]))
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.del(key(SENDER_KEY, &[address.as_bytes()])).await
    }
}

#[async_trait]
impl AppSyncStore for RedbBackend {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.get_json(&key(SYNC_KEY, &[key_id]))
    }

    async fn set_sync_key(&self, key_id: &[u8], sync_key: AppStateSyncKey) -> Result<()> {
        self.write(vec![
            (key(SYNC_KEY, &[key_id]), Some(json(&sync_key)?)),
            (prefix(LATEST_SYNC_KEY), Some(key_id.to_vec())),
        ])
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        Ok(self
            .get_json(&key(VERSION, &[name.as_bytes()]))?
            .unwrap_or_default())
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.put(key(VERSION, &[name.as_bytes()]), json(&state)?)
            .await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        _version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        self.write(
            mutations
                .iter()
                .map(|m| {
                    (
                        key(MUTATION_MAC, &[name.as_bytes(), &m.index_mac]),
                        Some(m.value_mac.clone()),
                    )
                })
                .collect(),
        )
        .await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(&key(MUTATION_MAC, &[name.as_bytes(), index_mac]))
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        self.write(
            index_macs
                .iter()
                .map(|im| (key(MUTATION_MAC, &[name.as_bytes(), im]), None))
                .collect(),
        )
        .await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.delete_prefix(&prefix_of(MUTATION_MAC, name.as_bytes()))
            .await
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.get(&prefix(LATEST_SYNC_KEY))
    }
}

#[async_trait]
impl ProtocolStore for RedbBackend {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        Ok(self
            .scan(&prefix_of(SKD, group_jid.as_bytes()))?
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    v.first() == Some(&1),
                )
            })
            .collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        self.write(
            entries
                .iter()
                .map(|(d, has)| {
                    (
                        key(SKD, &[group_jid.as_bytes(), d.as_bytes()]),
                        Some(vec![u8::from(*has)]),
                    )
                })
                .collect(),
        )
        .await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete_prefix(&prefix_of(SKD, group_jid.as_bytes()))
            .await
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        let p = prefix(SKD);
        let ops = self
            .scan(&p)?
            .into_iter()
            .filter(|(k, _)| {
                k.split(|b| *b == 0)
                    .nth(1)
                    .is_some_and(|d| device_jids.iter().any(|j| j.as_bytes() == d))
            })
            .map(|(k, _)| ([p.as_slice(), &k].concat(), None))
            .collect();
        self.write(ops).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.delete_prefix(&prefix(SKD)).await
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get_json(&key(LID, &[lid.as_bytes()]))
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        match self.get(&key(PN, &[phone.as_bytes()]))? {
            Some(lid) => self.get_json(&key(LID, &[&lid])),
            None => Ok(None),
        }
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let mut ops = Vec::with_capacity(entries.len() * 3);
        for e in entries {
            // Drop the stale reverse entry when the LID moved to another number.
            if let Some(old) = self.get_json::<LidPnMappingEntry>(&key(LID, &[e.lid.as_bytes()]))?
                && old.phone_number != e.phone_number
            {
                ops.push((key(PN, &[old.phone_number.as_bytes()]), None));
            }
            ops.push((
                key(PN, &[e.phone_number.as_bytes()]),
                Some(e.lid.as_bytes().to_vec()),
            ));
            ops.push((key(LID, &[e.lid.as_bytes()]), Some(json(e)?)));
        }
        self.write(ops).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.scan(&prefix(LID))?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(ser_err))
            .collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.put(
            key(BASE_KEY, &[address.as_bytes(), message_id.as_bytes()]),
            base_key.to_vec(),
        )
        .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(&key(BASE_KEY, &[address.as_bytes(), message_id.as_bytes()]))?
            .is_some_and(|stored| stored == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.del(key(BASE_KEY, &[address.as_bytes(), message_id.as_bytes()]))
            .await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.put(key(DEVICES, &[record.user.as_bytes()]), json(&record)?)
            .await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get_json(&key(DEVICES, &[user.as_bytes()]))
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.del(key(DEVICES, &[user.as_bytes()])).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(&key(GROUP_META, &[group_jid.as_bytes()]))
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.put(key(GROUP_META, &[group_jid.as_bytes()]), blob.to_vec())
            .await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.del(key(GROUP_META, &[group_jid.as_bytes()])).await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get_json(&key(TC_TOKEN, &[jid.as_bytes()]))
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.put(key(TC_TOKEN, &[jid.as_bytes()]), json(entry)?)
            .await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.del(key(TC_TOKEN, &[jid.as_bytes()])).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self
            .scan(&prefix(TC_TOKEN))?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        let p = prefix(TC_TOKEN);
        let mut ops = Vec::new();
        for (k, v) in self.scan(&p)? {
            let entry: TcTokenEntry = serde_json::from_slice(&v).map_err(ser_err)?;
            let token_live = !entry.token.is_empty() && entry.token_timestamp >= token_cutoff;
            let sender_live = entry.sender_timestamp.is_some_and(|ts| ts >= sender_cutoff);
            if !(token_live || sender_live) {
                ops.push(([p.as_slice(), &k].concat(), None));
            }
        }
        let n = ops.len() as u32;
        self.write(ops).await?;
        Ok(n)
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        let entry = match self.get_tc_token(jid).await? {
            Some(mut e) => {
                e.sender_timestamp = Some(
                    e.sender_timestamp
                        .map_or(sender_timestamp, |t| t.max(sender_timestamp)),
                );
                e
            }
            None => TcTokenEntry {
                token: Vec::new(),
                token_timestamp: sender_timestamp,
                sender_timestamp: Some(sender_timestamp),
            },
        };
        self.put_tc_token(jid, &entry).await
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        let entry = match self.get_tc_token(jid).await? {
            Some(mut e) => {
                // Newer wins: a stale write must not clobber a fresher token.
                if e.token.is_empty() || token_timestamp >= e.token_timestamp {
                    e.token = token.to_vec();
                    e.token_timestamp = token_timestamp;
                }
                e
            }
            None => TcTokenEntry {
                token: token.to_vec(),
                token_timestamp,
                sender_timestamp: None,
            },
        };
        self.put_tc_token(jid, &entry).await
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        let row = Stamped {
            at: now(),
            data: payload.to_vec(),
        };
        self.put(
            key(SENT, &[chat_jid.as_bytes(), message_id.as_bytes()]),
            json(&row)?,
        )
        .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let k = key(SENT, &[chat_jid.as_bytes(), message_id.as_bytes()]);
        let Some(row) = self.get_json::<Stamped>(&k)? else {
            return Ok(None);
        };
        self.del(k).await?;
        Ok(Some(row.data))
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.sweep::<Stamped>(SENT, |r| r.at < cutoff_timestamp)
            .await
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        let row = Stamped {
            at: now(),
            data: message.to_vec(),
        };
        self.put(
            key(
                PENDING,
                &[chat.as_bytes(), sender.as_bytes(), id.as_bytes()],
            ),
            json(&row)?,
        )
        .await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_json::<Stamped>(&key(
                PENDING,
                &[chat.as_bytes(), sender.as_bytes(), id.as_bytes()],
            ))?
            .map(|r| r.data))
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.del(key(
            PENDING,
            &[chat.as_bytes(), sender.as_bytes(), id.as_bytes()],
        ))
        .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.sweep::<Stamped>(PENDING, |r| r.at < cutoff_timestamp)
            .await
    }
}

impl RedbBackend {
    /// Deletes the rows of a namespace whose decoded value matches `expired`.
    async fn sweep<T: serde::de::DeserializeOwned>(
        &self,
        ns: &str,
        expired: impl Fn(&T) -> bool,
    ) -> Result<u32> {
        let p = prefix(ns);
        let mut ops = Vec::new();
        for (k, v) in self.scan(&p)? {
            let row: T = serde_json::from_slice(&v).map_err(ser_err)?;
            if expired(&row) {
                ops.push(([p.as_slice(), &k].concat(), None));
            }
        }
        let n = ops.len() as u32;
        self.write(ops).await?;
        Ok(n)
    }
}

#[async_trait]
impl MsgSecretStore for RedbBackend {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let stored = entries.len();
        let mut ops = Vec::with_capacity(stored);
        for e in entries {
            let k = key(
                MSG_SECRET,
                &[e.chat.as_bytes(), e.sender.as_bytes(), e.msg_id.as_bytes()],
            );
            let row = match self.get_json::<SecretRow>(&k)? {
                Some(old) => SecretRow {
                    secret: e.secret.to_vec(),
                    expires_at: merge_msg_secret_expiry(old.expires_at, e.expires_at),
                    message_ts: merge_msg_secret_message_ts(old.message_ts, e.message_ts),
                },
                None => SecretRow {
                    secret: e.secret.to_vec(),
                    expires_at: e.expires_at,
                    message_ts: e.message_ts,
                },
            };
            ops.push((k, Some(json(&row)?)));
        }
        self.write(ops).await?;
        Ok(stored)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(s, _)| s))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(self
            .get_json::<SecretRow>(&key(
                MSG_SECRET,
                &[chat.as_bytes(), sender.as_bytes(), msg_id.as_bytes()],
            ))?
            .map(|r| (r.secret, r.message_ts)))
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.sweep::<SecretRow>(MSG_SECRET, |r| {
            r.expires_at != 0 && r.expires_at <= cutoff_timestamp
        })
        .await
    }
}

#[async_trait]
impl DeviceStore for RedbBackend {
    async fn save(&self, device: &Device) -> Result<()> {
        self.put(prefix(DEVICE), json(device)?).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.get_json(&prefix(DEVICE))
    }

    async fn exists(&self) -> Result<bool> {
        Ok(self.get(&prefix(DEVICE))?.is_some())
    }

    async fn create(&self) -> Result<i32> {
        // One device per session scope.
        if !self.exists().await? {
            self.save(&Device::new()).await?;
        }
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> (tempfile::TempDir, Database, RedbBackend) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("s.redb")).unwrap();
        let b = RedbBackend::new(db.clone(), "S1");
        (dir, db, b)
    }

    #[tokio::test]
    async fn signal_rows_round_trip_and_are_scoped() {
        let (_d, db, b) = backend();
        b.put_identity("1@s.whatsapp.net", [7; 32]).await.unwrap();
        b.put_session("1:2@s.whatsapp.net", b"sess").await.unwrap();
        assert_eq!(
            b.load_identity("1@s.whatsapp.net").await.unwrap(),
            Some([7; 32])
        );
        assert!(b.has_session("1:2@s.whatsapp.net").await.unwrap());
        assert!(b.has_signal_state_for_user("1").await.unwrap());
        assert!(!b.has_signal_state_for_user("12").await.unwrap());
        let other = RedbBackend::new(db.clone(), "S2");
        assert_eq!(other.load_identity("1@s.whatsapp.net").await.unwrap(), None);

        b.store_prekeys_batch(
            &[
                (3, Bytes::from_static(b"a")),
                (300, Bytes::from_static(b"b")),
            ],
            false,
        )
        .await
        .unwrap();
        assert_eq!(b.get_max_prekey_id().await.unwrap(), 300);
        assert_eq!(b.load_prekeys_batch(&[3, 4, 300]).await.unwrap().len(), 2);
        b.remove_prekey(300).await.unwrap();
        assert_eq!(b.get_max_prekey_id().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn lid_mappings_keep_the_reverse_index_consistent() {
        let (_d, _db, b) = backend();
        let e = |lid: &str, pn: &str| LidPnMappingEntry {
            lid: lid.into(),
            phone_number: pn.into(),
            created_at: 1,
            updated_at: 1,
            learning_source: "test".into(),
        };
        b.put_lid_mapping(&e("100", "555")).await.unwrap();
        b.put_lid_mapping(&e("100", "777")).await.unwrap();
        assert!(b.get_pn_mapping("555").await.unwrap().is_none());
        assert_eq!(b.get_pn_mapping("777").await.unwrap().unwrap().lid, "100");
        assert_eq!(b.get_all_lid_mappings().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn device_survives_reopen_and_wipe_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let db = Database::open(&path).unwrap();
            let b = RedbBackend::new(db, "S1");
            assert!(!b.exists().await.unwrap());
            b.create().await.unwrap();
            assert!(b.exists().await.unwrap());
            b.set_sender_key_status("g@g.us", &[("a:1@lid", true), ("b:2@lid", false)])
                .await
                .unwrap();
        }
        let db = Database::open(&path).unwrap();
        let b = RedbBackend::new(db.clone(), "S1");
        assert!(b.load().await.unwrap().is_some());
        let mut devs = b.get_sender_key_devices("g@g.us").await.unwrap();
        devs.sort();
        assert_eq!(
            devs,
            vec![("a:1@lid".to_owned(), true), ("b:2@lid".to_owned(), false)]
        );
        b.delete_sender_key_device_rows(&["a:1@lid"]).await.unwrap();
        assert_eq!(b.get_sender_key_devices("g@g.us").await.unwrap().len(), 1);
        RedbBackend::wipe(&db, "S1").unwrap();
        assert!(!b.exists().await.unwrap());
    }
}
