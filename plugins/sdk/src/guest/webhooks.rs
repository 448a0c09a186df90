//! The organization's webhook targets and their deliveries (`webhook-delivery`). The
//! host stores them, matches events, signs, retries and keeps the dead-letter list; a
//! plugin parses requests into these records and answers the results. Errors convert into
//! the envelope with `?` — a field the host refuses is a 422 naming it (API.md §7).

use super::bindings::wa::gateway::webhook_delivery as wit;
use crate::error::ApiError;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::webhooks as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use wit::{
    Attempt, Backoff, Delivery, DeliveryError, DeliveryStatus, FieldError, RetryPolicy, Webhook,
    WebhookPatch,
};

/// §7 writes answer their validation errors with 422.
pub const INVALID_STATUS: u16 = 422;

impl From<DeliveryError> for ApiError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Invalid(f) => {
                ApiError::invalid_field(&f.field, format!("{}: {}", f.field, f.message))
                    .with_status(INVALID_STATUS)
            }
            DeliveryError::NotFound(m) => ApiError::not_found(m),
            DeliveryError::Conflict(m) => ApiError::conflict(m),
            DeliveryError::Failed(m) => ApiError::internal(format!("webhooks failed: {m}")),
        }
    }
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl Backoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Backoff::Exponential => "exponential",
            Backoff::Linear => "linear",
            Backoff::Constant => "constant",
        }
    }

    pub fn parse(s: &str) -> Option<Backoff> {
        [Backoff::Exponential, Backoff::Linear, Backoff::Constant]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

pub fn list() -> Result<Vec<Webhook>, DeliveryError> {
    imp::list()
}

/// Creates a webhook; the generated secret comes back once when none was given.
pub fn create(spec: &WebhookPatch) -> Result<(Webhook, Option<String>), DeliveryError> {
    imp::create(spec)
}

pub fn get(id: &str) -> Result<Webhook, DeliveryError> {
    imp::get(id)
}

pub fn update(id: &str, patch: &WebhookPatch) -> Result<Webhook, DeliveryError> {
    imp::update(id, patch)
}

pub fn delete(id: &str) -> Result<(), DeliveryError> {
    imp::delete(id)
}

/// Sends one signed `webhook.test` event and answers its delivery once it ended.
pub fn test(id: &str) -> Result<Delivery, DeliveryError> {
    imp::test(id)
}

/// A page of the webhook's deliveries, newest first.
pub fn deliveries(
    id: &str,
    status: Option<DeliveryStatus>,
    event: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<Delivery>, Option<String>), DeliveryError> {
    imp::deliveries(id, status, event, cursor, limit)
}

/// One delivery with its attempts and the envelope it carries.
pub fn delivery_detail(
    id: &str,
    delivery: &str,
) -> Result<(Delivery, Vec<Attempt>, String), DeliveryError> {
    imp::delivery_detail(id, delivery)
}

pub fn replay(id: &str, delivery: &str) -> Result<Delivery, DeliveryError> {
    imp::replay(id, delivery)
}

/// Queues the dead deliveries not yet replayed created in [since, until]; answers how many.
pub fn replay_dead(
    id: &str,
    since: Option<u64>,
    until: Option<u64>,
    limit: u32,
) -> Result<u32, DeliveryError> {
    imp::replay_dead(id, since, until, limit)
}
