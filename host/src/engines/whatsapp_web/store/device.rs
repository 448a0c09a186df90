//! `DeviceStore`: the paired device itself (identity keys, JIDs, push name).
use super::*;

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
