//! The session's durable send queue (`outbox`): submit a message, read or list items,
//! cancel a pending one. Errors convert into the envelope's terms with `?`.
//!
//! The host owns the queue, the idempotency records and the rate buckets (API.md §6.3);
//! a plugin validates the request, fingerprints it with [`crate::canonical::fingerprint`]
//! and submits it. `submitted.http-status` (200 or 202) is what the answer's status must be.

use super::bindings::wa::gateway::outbox as wit;
use crate::error::{ApiError, ErrorCode};

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::outbox as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use super::bindings::wa::gateway::whatsapp_types::MessageKey;
pub use wit::{
    ContactCard, Content, Location, Media, MediaKind, MediaSource, Outbound, OutboxError, Poll,
    RateLimit, SendMode, SendResult, SendStatus, SubmitOptions, Submitted,
};

impl From<OutboxError> for ApiError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Invalid(m) => ApiError::validation(m),
            OutboxError::NotFound(m) => ApiError::not_found(m),
            OutboxError::NotConnected(m) => ApiError::not_implemented(if m.is_empty() {
                "session is not connected".to_owned()
            } else {
                m
            }),
            OutboxError::RateLimited(r) => {
                let message = match r.limit.as_str() {
                    "perMinute" => {
                        format!("over the session's rate of {} per minute", r.rate_per_min)
                    }
                    "perHour" => format!("over the session's rate of {} per hour", r.rate_per_hour),
                    _ => "the session's send queue is full".to_owned(),
                };
                // The host adds `Retry-After` from `retryAfterMs`.
                ApiError::new(ErrorCode::RateLimited, message)
                    .with_detail("limit", r.limit)
                    .with_detail("ratePerMin", r.rate_per_min)
                    .with_detail("ratePerHour", r.rate_per_hour)
                    .with_detail("retryAfterMs", r.retry_after_ms)
            }
            OutboxError::KeyReused(outbox_id) => {
                ApiError::validation("this Idempotency-Key was used with another request")
                    .with_status(422)
                    .with_detail("reason", "idempotency_key_reused")
                    .with_detail("outboxId", outbox_id)
            }
            OutboxError::NotPending(m) => ApiError::conflict(m),
            OutboxError::Failed(m) => ApiError::internal(format!("outbox failed: {m}")),
        }
    }
}

impl SendMode {
    /// `sync` or `async`, as SendResult spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SendMode::Synchronous => "sync",
            SendMode::Asynchronous => "async",
        }
    }
}

impl SendStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SendStatus; 5] = [
        SendStatus::Pending,
        SendStatus::Sent,
        SendStatus::Delivered,
        SendStatus::Read,
        SendStatus::Failed,
    ];

    /// The API's name (`pending`, `sent`…).
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Pending => "pending",
            SendStatus::Sent => "sent",
            SendStatus::Delivered => "delivered",
            SendStatus::Read => "read",
            SendStatus::Failed => "failed",
        }
    }

    /// Reads the API's name.
    pub fn parse(s: &str) -> Option<SendStatus> {
        SendStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl MediaKind {
    /// The message type's name (`image`, `video`…).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// Accepts a message into the session's queue: idempotency, session state and rate are
/// checked by the host; a synchronous submit waits for the send.
pub fn submit(message: &Outbound, options: &SubmitOptions) -> Result<Submitted, OutboxError> {
    imp::submit(message, options)
}

/// An item of the request's session; `None` when there is none with that id.
pub fn get(outbox_id: &str) -> Result<Option<SendResult>, OutboxError> {
    imp::get(outbox_id)
}

/// The session's items, newest first, optionally of one status; `cursor` is the
/// `nextCursor` of the previous page as the host issued it.
pub fn list(
    status: Option<SendStatus>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<SendResult>, Option<String>), OutboxError> {
    imp::list(status, cursor, limit)
}

/// Cancels a pending item: it ends `failed` with error code `cancelled`.
pub fn cancel(outbox_id: &str) -> Result<SendResult, OutboxError> {
    imp::cancel(outbox_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_errors_become_the_contracts_answers() {
        let rate = ApiError::from(OutboxError::RateLimited(RateLimit {
            limit: "perMinute".into(),
            rate_per_min: 20,
            rate_per_hour: 600,
            retry_after_ms: 2500,
        }));
        assert_eq!(
            (rate.http_status(), rate.code),
            (429, ErrorCode::RateLimited)
        );
        assert_eq!(
            serde_json::Value::Object(rate.details),
            serde_json::json!({"limit": "perMinute", "ratePerMin": 20, "ratePerHour": 600, "retryAfterMs": 2500})
        );
        let reused = ApiError::from(OutboxError::KeyReused("out_1".into()));
        assert_eq!(
            (reused.http_status(), reused.code),
            (422, ErrorCode::ValidationError)
        );
        assert_eq!(reused.details["reason"], "idempotency_key_reused");
        assert_eq!(reused.details["outboxId"], "out_1");
        for (e, status) in [
            (OutboxError::Invalid("x".into()), 400),
            (OutboxError::NotFound("x".into()), 404),
            (OutboxError::NotPending("x".into()), 409),
            (OutboxError::NotConnected(String::new()), 501),
            (OutboxError::Failed("x".into()), 500),
        ] {
            assert_eq!(ApiError::from(e).http_status(), status);
        }
    }

    #[test]
    fn statuses_have_the_apis_names() {
        for s in SendStatus::ALL {
            assert_eq!(SendStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SendStatus::parse("played"), None);
        assert_eq!(SendMode::Asynchronous.as_str(), "async");
    }
}
