//! API keys: opaque `wa_…` secrets for scripts and services. Only a SHA-256 hash is stored
//! (the secret has 256 bits of entropy, so a fast hash is enough); the secret is shown once.

use super::{AuthError, Caller, CapabilitySet, Permission, Principal};
use crate::clock::now_ms;
use crate::storage::{API_KEYS, Database, StorageError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub(super) const KEY_PREFIX: &str = "wa_";

/// A stored key, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub permissions: Vec<Permission>,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The first characters of the secret, to tell keys apart in lists.
    pub prefix: String,
    pub created_at: u64,
    pub created_by: String,
    pub last_used_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// A key just created: the record and the secret, which is never available again.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: String,
}

struct Entry {
    key: RwLock<ApiKey>,
    /// Who the key stands for: its organization, id and permissions never change, so the
    /// caller is built once and shared by every request the key makes.
    caller: Arc<Caller>,
    /// Updated on every use, written to disk by [`ApiKeyStore::flush_last_used`].
    last_used: AtomicU64,
    flushed: AtomicU64,
}

/// Every key, in memory for verification and on disk for durability.
pub struct ApiKeyStore {
    db: Database,
    /// Live keys one organization may hold (`quotas.max_api_keys_per_org`).
    max_per_org: Option<usize>,
    /// Serialises creation, so the quota check and the insert are one step.
    creating: std::sync::Mutex<()>,
    by_hash: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
    by_id: RwLock<HashMap<String, Arc<Entry>>>,
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl ApiKeyStore {
    pub fn load(db: Database) -> Result<ApiKeyStore, StorageError> {
        let keys: Vec<ApiKey> = db.load_all(API_KEYS)?;
        let store = ApiKeyStore {
            db,
            max_per_org: None,
            creating: std::sync::Mutex::new(()),
            by_hash: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
        };
        for k in keys {
            store.index(k);
        }
        Ok(store)
    }

    /// Caps the live keys one organization may hold.
    pub fn with_quota(mut self, max_per_org: Option<usize>) -> Self {
        self.max_per_org = max_per_org;
        self
    }

    fn index(&self, key: ApiKey) -> Arc<Entry> {
        let used = key.last_used_at.unwrap_or(0);
        let hash_bytes = hex::decode(&key.secret_hash)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok());
        let revoked = key.revoked_at.is_some();
        let id = key.id.clone();
        let caller = Arc::new(Caller::new(
            &key.organization_id,
            Principal::ApiKey(key.id.clone()),
            key.permissions.iter().collect::<CapabilitySet>(),
        ));
        let entry = Arc::new(Entry {
            key: RwLock::new(key),
            caller,
            last_used: AtomicU64::new(used),
            flushed: AtomicU64::new(used),
        });
        if let (Some(h), false) = (hash_bytes, revoked) {
            self.by_hash.write().expect("lock").insert(h, entry.clone());
        }
        self.by_id.write().expect("lock").insert(id, entry.clone());
        entry
    }

    /// Mints a key for an organization.
    pub fn create(
        &self,
        organization: &str,
        name: &str,
        permissions: &[Permission],
        created_by: &str,
    ) -> Result<NewApiKey, StorageError> {
        validate_org(organization)?;
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(StorageError::Invalid(
                "name must be 1 to 100 characters".into(),
            ));
        }
        if permissions.is_empty() {
            return Err(StorageError::Invalid(
                "permissions must name at least one of read, send, manage".into(),
            ));
        }
        let _creating = self.creating.lock().expect("lock");
        if let Some(max) = self.max_per_org
            && self.list(Some(organization)).len() >= max
        {
            return Err(StorageError::Quota(format!(
                "the organization holds {max} live API keys, the most it may (quotas.max_api_keys_per_org); revoke one first"
            )));
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let mut perms = permissions.to_vec();
        perms.sort();
        perms.dedup();
        let key = ApiKey {
            id: format!("key_{}", ulid::Ulid::generate()),
            organization_id: organization.to_owned(),
            name: name.to_owned(),
            permissions: perms,
            secret_hash: hex::encode(hash(&secret)),
            prefix: secret.chars().take(10).collect(),
            created_at: now_ms(),
            created_by: created_by.to_owned(),
            last_used_at: None,
            revoked_at: None,
        };
        self.db.put_json(API_KEYS, &key.id, &key)?;
        self.index(key.clone());
        Ok(NewApiKey { key, secret })
    }

    /// The caller a secret stands for.
    pub fn verify(&self, secret: &str) -> Result<Arc<Caller>, AuthError> {
        let entry = self
            .by_hash
            .read()
            .expect("lock")
            .get(&hash(secret))
            .cloned()
            .ok_or_else(|| AuthError::Invalid("unknown or revoked API key".into()))?;
        // Written at most once a millisecond: every serving thread reads this key, and a
        // write on each request would move the cache line between cores on each request.
        let now = now_ms();
        if entry.last_used.load(Ordering::Relaxed) < now {
            entry.last_used.fetch_max(now, Ordering::Relaxed);
        }
        Ok(entry.caller.clone())
    }

    /// Whether the key `id` exists and is not revoked (long-lived connections a key opened
    /// ask again from time to time).
    pub fn is_live(&self, id: &str) -> bool {
        self.by_id
            .read()
            .expect("lock")
            .get(id)
            .is_some_and(|e| e.key.read().expect("lock").revoked_at.is_none())
    }

    /// Live keys, optionally of one organization, oldest first.
    pub fn list(&self, organization: Option<&str>) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self
            .by_id
            .read()
            .expect("lock")
            .values()
            .map(|e| {
                let mut k = e.key.read().expect("lock").clone();
                let used = e.last_used.load(Ordering::Relaxed);
                k.last_used_at = (used > 0).then_some(used);
                k
            })
            .filter(|k| k.revoked_at.is_none())
            .filter(|k| organization.is_none_or(|o| k.organization_id == o))
            .collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        keys
    }

    /// Revokes a key. `organization` restricts which keys may be named (tenancy): a key of
    /// another organization reads as absent. Returns false when no live key matched.
    pub fn revoke(&self, id: &str, organization: Option<&str>) -> Result<bool, StorageError> {
        let Some(entry) = self.by_id.read().expect("lock").get(id).cloned() else {
            return Ok(false);
        };
        let mut updated = entry.key.read().expect("lock").clone();
        if updated.revoked_at.is_some()
            || organization.is_some_and(|o| updated.organization_id != o)
        {
            return Ok(false);
        }
        updated.revoked_at = Some(now_ms());
        let used = entry.last_used.load(Ordering::Relaxed);
        updated.last_used_at = (used > 0).then_some(used);
        self.db.put_json(API_KEYS, id, &updated)?;
        if let Some(h) = hex::decode(&updated.secret_hash)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
        {
            self.by_hash.write().expect("lock").remove(&h);
        }
        *entry.key.write().expect("lock") = updated;
        Ok(true)
    }

    /// Writes last-used times that changed since the previous flush, in one transaction.
    /// Only the `lastUsedAt` field is written, into the stored record read inside that
    /// transaction: a key revoked meanwhile stays revoked.
    pub fn flush_last_used(&self) -> Result<usize, StorageError> {
        let dirty: Vec<(String, u64)> = self
            .by_id
            .read()
            .expect("lock")
            .values()
            .filter_map(|e| {
                let used = e.last_used.load(Ordering::Relaxed);
                (used != e.flushed.load(Ordering::Relaxed))
                    .then(|| (e.key.read().expect("lock").id.clone(), used))
            })
            .collect();
        if dirty.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = dirty.iter().map(|(id, _)| id.clone()).collect();
        let used_of: HashMap<&str, u64> = dirty.iter().map(|(id, u)| (id.as_str(), *u)).collect();
        self.db
            .update_json(API_KEYS, &ids, |id, key: &mut ApiKey| {
                let used = used_of.get(id).copied().unwrap_or(0);
                key.last_used_at = Some(key.last_used_at.unwrap_or(0).max(used));
            })?;
        let entries = self.by_id.read().expect("lock");
        for (id, used) in &dirty {
            if let Some(e) = entries.get(id) {
                e.flushed.store(*used, Ordering::Relaxed);
                e.key.write().expect("lock").last_used_at = Some(*used);
            }
        }
        Ok(dirty.len())
    }
}

/// Organization ids are opaque to us but must be printable and bounded.
pub(crate) fn validate_org(org: &str) -> Result<(), StorageError> {
    let ok = !org.is_empty()
        && org.len() <= 128
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::Invalid(
            "organization id must be 1 to 128 of [A-Za-z0-9_.:-]".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Capability;

    #[test]
    fn create_verify_revoke_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.redb");
        let db = Database::open(&path).unwrap();
        let store = ApiKeyStore::load(db.clone()).unwrap();
        let k = store
            .create("org_a", "ci", &[Permission::Read, Permission::Read], "cli")
            .unwrap();
        assert!(k.secret.starts_with("wa_"));
        assert_eq!(k.key.permissions, vec![Permission::Read]);
        let caller = store.verify(&k.secret).unwrap();
        assert_eq!(&*caller.organization, "org_a");
        assert!(caller.capabilities.contains(Capability::Read));
        assert!(!caller.capabilities.contains(Capability::Send));
        assert!(!caller.capabilities.contains(Capability::PlatformAdmin));
        assert!(store.verify("wa_nope").is_err());
        assert_eq!(store.flush_last_used().unwrap(), 1);
        assert_eq!(store.flush_last_used().unwrap(), 0);

        // Another org cannot revoke it.
        assert!(!store.revoke(&k.key.id, Some("org_b")).unwrap());
        assert!(store.verify(&k.secret).is_ok());

        drop(store);
        let reloaded = ApiKeyStore::load(db).unwrap();
        assert!(reloaded.verify(&k.secret).is_ok());
        assert!(reloaded.list(Some("org_a"))[0].last_used_at.is_some());
        assert!(reloaded.revoke(&k.key.id, Some("org_a")).unwrap());
        assert!(reloaded.verify(&k.secret).is_err());
        assert!(reloaded.list(None).is_empty());
        assert!(!reloaded.revoke(&k.key.id, None).unwrap());
    }

    #[test]
    fn a_flush_racing_a_revoke_never_brings_the_key_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("k.redb")).unwrap();
        let store = std::sync::Arc::new(ApiKeyStore::load(db.clone()).unwrap());
        let keys: Vec<NewApiKey> = (0..40)
            .map(|i| {
                store
                    .create("org_a", &format!("k{i}"), &[Permission::Read], "t")
                    .unwrap()
            })
            .collect();
        // One thread keeps using every key and flushing; the other revokes them one by one.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let user = {
            let (store, stop) = (store.clone(), stop.clone());
            let secrets: Vec<String> = keys.iter().map(|k| k.secret.clone()).collect();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for s in &secrets {
                        let _ = store.verify(s);
                    }
                    store.flush_last_used().unwrap();
                }
            })
        };
        for k in &keys {
            assert!(store.revoke(&k.key.id, Some("org_a")).unwrap());
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        stop.store(true, Ordering::Relaxed);
        user.join().unwrap();
        store.flush_last_used().unwrap();
        drop(store);
        let reloaded = ApiKeyStore::load(db).unwrap();
        for k in &keys {
            assert!(
                reloaded.verify(&k.secret).is_err(),
                "{} came back",
                k.key.name
            );
        }
    }

    #[test]
    fn the_key_quota_counts_live_keys_per_organization() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("k.redb")).unwrap();
        let store = ApiKeyStore::load(db).unwrap().with_quota(Some(2));
        let a = store
            .create("org_a", "1", &[Permission::Read], "t")
            .unwrap();
        store
            .create("org_a", "2", &[Permission::Read], "t")
            .unwrap();
        let err = store
            .create("org_a", "3", &[Permission::Read], "t")
            .unwrap_err();
        assert!(matches!(err, StorageError::Quota(_)), "{err}");
        store
            .create("org_b", "1", &[Permission::Read], "t")
            .unwrap();
        store.revoke(&a.key.id, Some("org_a")).unwrap();
        store
            .create("org_a", "3", &[Permission::Read], "t")
            .unwrap();
    }

    #[test]
    fn refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let store = ApiKeyStore::load(Database::open(&dir.path().join("k.redb")).unwrap()).unwrap();
        assert!(store.create("", "x", &[Permission::Read], "t").is_err());
        assert!(
            store
                .create("org a", "x", &[Permission::Read], "t")
                .is_err()
        );
        assert!(store.create("org", " ", &[Permission::Read], "t").is_err());
        assert!(store.create("org", "x", &[], "t").is_err());
    }
}
