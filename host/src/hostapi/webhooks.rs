//! `wa:gateway/webhook-delivery`: the call's organization's webhooks and deliveries,
//! converted between the WIT records and the engine's model. Every function is scoped to
//! the caller's organization; the engine re-checks every field it is given.

use super::InstanceState;
use super::convert::webhooks::{attempt, delivery, error, patch, webhook};
use super::wa::gateway::webhook_delivery as wit;
use crate::webhooks::model::DeliveryStatus;

impl InstanceState {
    fn webhooks_scope(&self) -> Result<(crate::webhooks::Webhooks, String), wit::DeliveryError> {
        let call = self
            .call()
            .ok_or_else(|| wit::DeliveryError::Failed("no call in progress".into()))?;
        Ok((
            self.services.webhooks.clone(),
            call.organization.to_string(),
        ))
    }
}

impl wit::Host for InstanceState {
    async fn list(&mut self) -> Result<Vec<wit::Webhook>, wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        Ok(w.list(&org).iter().map(|w| webhook(w)).collect())
    }

    async fn create(
        &mut self,
        spec: wit::WebhookPatch,
    ) -> Result<(wit::Webhook, Option<String>), wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        let (created, secret) = w.create(&org, patch(spec)).await.map_err(error)?;
        Ok((webhook(&created), secret))
    }

    async fn get(&mut self, id: String) -> Result<wit::Webhook, wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        let found = w.get(&org, &id).map_err(error)?;
        Ok(webhook(&found))
    }

    async fn update(
        &mut self,
        id: String,
        p: wit::WebhookPatch,
    ) -> Result<wit::Webhook, wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        let updated = w.update(&org, &id, patch(p)).await.map_err(error)?;
        Ok(webhook(&updated))
    }

    async fn delete(&mut self, id: String) -> Result<(), wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        w.delete(&org, &id).await.map_err(error)
    }

    async fn test(&mut self, id: String) -> Result<wit::Delivery, wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        // The attempt may take the whole delivery timeout: it does not count against the
        // plugin's own budget.
        self.deadline
            .set(std::time::Instant::now() + self.services.plugin_timeout + w.attempt_timeout());
        let d = w.test(&org, &id).await;
        self.deadline
            .set(std::time::Instant::now() + self.services.plugin_timeout);
        Ok(delivery(&d.map_err(error)?))
    }

    async fn deliveries(
        &mut self,
        id: String,
        s: Option<wit::DeliveryStatus>,
        event: Option<String>,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<wit::Delivery>, Option<String>), wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        let before = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(
                gateway_sdk::decode_cursor(&c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        wit::DeliveryError::Invalid(wit::FieldError {
                            field: "cursor".into(),
                            message: "is not one this gateway issued".into(),
                        })
                    })?,
            ),
            None => None,
        };
        let wanted = s.map(|s| match s {
            wit::DeliveryStatus::Pending => DeliveryStatus::Pending,
            wit::DeliveryStatus::Retrying => DeliveryStatus::Retrying,
            wit::DeliveryStatus::Succeeded => DeliveryStatus::Succeeded,
            wit::DeliveryStatus::Dead => DeliveryStatus::Dead,
        });
        let limit = (limit as usize).clamp(1, gateway_sdk::MAX_LIMIT as usize);
        let (items, next) = w
            .deliveries(&org, &id, wanted, event, before, limit)
            .await
            .map_err(error)?;
        Ok((
            items.iter().map(delivery).collect(),
            next.map(|id| gateway_sdk::encode_cursor(id.as_bytes())),
        ))
    }

    async fn delivery_detail(
        &mut self,
        id: String,
        d: String,
    ) -> Result<(wit::Delivery, Vec<wit::Attempt>, String), wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        let d = w.delivery(&org, &id, &d).map_err(error)?;
        Ok((
            delivery(&d),
            d.attempt_log.iter().map(attempt).collect(),
            d.envelope.clone(),
        ))
    }

    async fn replay(&mut self, id: String, d: String) -> Result<wit::Delivery, wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        Ok(delivery(&w.replay(&org, &id, &d).await.map_err(error)?))
    }

    async fn replay_dead(
        &mut self,
        id: String,
        since: Option<u64>,
        until: Option<u64>,
        limit: u32,
    ) -> Result<u32, wit::DeliveryError> {
        let (w, org) = self.webhooks_scope()?;
        let n = w
            .replay_dead(&org, &id, since, until, (limit as usize).clamp(1, 1000))
            .await
            .map_err(error)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
