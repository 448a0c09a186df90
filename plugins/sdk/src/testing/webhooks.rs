//! `webhook-delivery` in memory: not provided. Delivery is host work (outbound HTTP,
//! timers, signing, a durable queue) that an in-memory imitation would only pretend to
//! do; the `webhooks` plugin is tested end to end against the gateway instead. Every
//! call answers `failed` saying so.

use crate::guest::bindings::wa::gateway::webhook_delivery::{
    Attempt, Delivery, DeliveryError, DeliveryStatus, Webhook, WebhookPatch,
};

fn absent<T>() -> Result<T, DeliveryError> {
    Err(DeliveryError::Failed(
        "webhook-delivery is not part of the in-memory host; test webhooks end to end".into(),
    ))
}

pub(crate) fn list() -> Result<Vec<Webhook>, DeliveryError> {
    absent()
}
pub(crate) fn create(_: &WebhookPatch) -> Result<(Webhook, Option<String>), DeliveryError> {
    absent()
}
pub(crate) fn get(_: &str) -> Result<Webhook, DeliveryError> {
    absent()
}
pub(crate) fn update(_: &str, _: &WebhookPatch) -> Result<Webhook, DeliveryError> {
    absent()
}
pub(crate) fn delete(_: &str) -> Result<(), DeliveryError> {
    absent()
}
pub(crate) fn test(_: &str) -> Result<Delivery, DeliveryError> {
    absent()
}
pub(crate) fn deliveries(
    _: &str,
    _: Option<DeliveryStatus>,
    _: Option<&str>,
    _: Option<&str>,
    _: u32,
) -> Result<(Vec<Delivery>, Option<String>), DeliveryError> {
    absent()
}
pub(crate) fn delivery_detail(
    _: &str,
    _: &str,
) -> Result<(Delivery, Vec<Attempt>, String), DeliveryError> {
    absent()
}
pub(crate) fn replay(_: &str, _: &str) -> Result<Delivery, DeliveryError> {
    absent()
}
pub(crate) fn replay_dead(
    _: &str,
    _: Option<u64>,
    _: Option<u64>,
    _: u32,
) -> Result<u32, DeliveryError> {
    absent()
}
