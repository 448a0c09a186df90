//! `SignalStore`: identities, Signal sessions, pre-keys, signed pre-keys and sender keys.
use super::*;

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
