//! `AppSyncStore`: app-state sync keys, collection versions and mutation MACs.
use super::*;

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
