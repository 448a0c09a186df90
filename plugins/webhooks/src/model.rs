//! The webhook API's objects (API.md §7.1) as the plugin reads and answers them: request
//! bodies that refuse unknown fields, and views of the host's records in camelCase.

use gateway_sdk::webhooks::{
    Attempt, Backoff, Delivery, INVALID_STATUS, RetryPolicy, Webhook, WebhookPatch,
};
use gateway_sdk::{ApiError, JsonSchema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Present-but-null reads as `Some(None)`, absent as `None` (PATCH semantics).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A retry policy in a body: each field optional, the rest kept.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RetryPolicyBody {
    /// Attempts in all, the first included (1-30, default 15).
    attempts: Option<u32>,
    /// Base delay in seconds (1-3600, default 2).
    delay_seconds: Option<u32>,
    #[schemars(extend("enum" = ["exponential", "linear", "constant"]))]
    policy: Option<String>,
    /// No delay longer than this (1-86400, default 3600).
    max_delay_seconds: Option<u32>,
}

impl RetryPolicyBody {
    fn onto(self, base: RetryPolicy) -> Result<RetryPolicy, ApiError> {
        let policy = match self.policy.as_deref() {
            None => base.policy,
            Some(p) => Backoff::parse(p).ok_or_else(|| {
                ApiError::invalid_field(
                    "retryPolicy",
                    "retryPolicy.policy must be exponential, linear or constant",
                )
                .with_status(INVALID_STATUS)
            })?,
        };
        Ok(RetryPolicy {
            attempts: self.attempts.unwrap_or(base.attempts),
            delay_seconds: self.delay_seconds.unwrap_or(base.delay_seconds),
            policy,
            max_delay_seconds: self.max_delay_seconds.unwrap_or(base.max_delay_seconds),
        })
    }
}

/// The policy a webhook gets when its body names none (API.md §7.1).
const DEFAULT_POLICY: RetryPolicy = RetryPolicy {
    attempts: 15,
    delay_seconds: 2,
    policy: Backoff::Exponential,
    max_delay_seconds: 3600,
};

/// The body of createWebhook.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(example = create_example())]
pub(crate) struct CreateBody {
    /// Absolute https URL (≤ 2048 characters).
    url: String,
    /// Event names, `*`, or `prefix.*` (1-64).
    events: Vec<String>,
    /// Only this session's events; null or absent = every session.
    session_id: Option<String>,
    /// Default true.
    active: Option<bool>,
    /// Added to every request (≤ 20; not content-type, host or webhook-*).
    custom_headers: Option<BTreeMap<String, String>>,
    retry_policy: Option<RetryPolicyBody>,
    /// `whsec_<base64>` or 16-256 characters; generated (and answered once) when absent.
    secret: Option<String>,
}

fn create_example() -> Value {
    serde_json::json!({
        "url": "https://example.com/webhooks/wa",
        "events": ["message", "message.status"],
        "customHeaders": {"X-Tenant": "acme"},
        "retryPolicy": {"attempts": 15, "delaySeconds": 2, "policy": "exponential", "maxDelaySeconds": 3600}
    })
}

impl CreateBody {
    pub(crate) fn into_patch(self) -> Result<WebhookPatch, ApiError> {
        Ok(WebhookPatch {
            url: Some(self.url),
            events: Some(self.events),
            session_id: Some(self.session_id),
            active: self.active,
            custom_headers: self.custom_headers.map(|h| h.into_iter().collect()),
            retry_policy: Some(self.retry_policy.unwrap_or_default().onto(DEFAULT_POLICY)?),
            secret: self.secret,
        })
    }
}

/// The body of updateWebhook: the fields to change.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    /// null clears the session filter.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    session_id: Option<Option<String>>,
    active: Option<bool>,
    /// Replaces the custom headers.
    custom_headers: Option<BTreeMap<String, String>>,
    /// The fields given change; the others stay.
    retry_policy: Option<RetryPolicyBody>,
    /// A new secret: the old one keeps signing for 24 h.
    secret: Option<String>,
}

impl UpdateBody {
    pub(crate) fn into_patch(self, current: &Webhook) -> Result<WebhookPatch, ApiError> {
        Ok(WebhookPatch {
            url: self.url,
            events: self.events,
            session_id: self.session_id,
            active: self.active,
            custom_headers: self.custom_headers.map(|h| h.into_iter().collect()),
            retry_policy: self
                .retry_policy
                .map(|p| p.onto(current.retry_policy))
                .transpose()?,
            secret: self.secret,
        })
    }
}

/// The body of replayDeadLetters.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayDeadBody {
    /// Created at or after (epoch ms).
    pub(crate) since: Option<u64>,
    /// Created at or before (epoch ms).
    pub(crate) until: Option<u64>,
    /// At most this many (1-1000, default 1000).
    pub(crate) limit: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetryPolicyView {
    attempts: u32,
    delay_seconds: u32,
    #[schemars(extend("enum" = ["exponential", "linear", "constant"]))]
    policy: String,
    max_delay_seconds: u32,
}

/// A webhook target (API.md §7.1).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookView {
    /// `wh_<ULID>`.
    id: String,
    organization_id: String,
    url: String,
    events: Vec<String>,
    session_id: Option<String>,
    active: bool,
    custom_headers: BTreeMap<String, String>,
    retry_policy: RetryPolicyView,
    /// Why the gateway set `active: false` (`failing`).
    disabled_reason: Option<String>,
    /// Epoch ms.
    created_at: u64,
    updated_at: u64,
    /// The generated signing secret: in createWebhook's answer only, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        WebhookView {
            id: w.id,
            organization_id: w.organization_id,
            url: w.url,
            events: w.events,
            session_id: w.session_id,
            active: w.active,
            custom_headers: w.custom_headers.into_iter().collect(),
            retry_policy: RetryPolicyView {
                attempts: w.retry_policy.attempts,
                delay_seconds: w.retry_policy.delay_seconds,
                policy: w.retry_policy.policy.as_str().to_owned(),
                max_delay_seconds: w.retry_policy.max_delay_seconds,
            },
            disabled_reason: w.disabled_reason,
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret: None,
        }
    }
}

/// An event on its way to one webhook.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryView {
    /// `dlv_<ULID>`.
    id: String,
    webhook_id: String,
    /// The `webhook-id` header: the same on every attempt and replay.
    event_id: String,
    event: String,
    session_id: Option<String>,
    #[schemars(extend("enum" = ["pending", "retrying", "succeeded", "dead"]))]
    status: String,
    attempts: u32,
    next_attempt_at: Option<u64>,
    last_attempt_at: Option<u64>,
    last_status_code: Option<u16>,
    /// `timeout`, `connect`, `tls`, `blocked_address`, `redirect` or `http_<code>`.
    last_error: Option<String>,
    replay_of: Option<String>,
    replayed_by: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event: d.event,
            session_id: d.session_id,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            replay_of: d.replay_of,
            replayed_by: d.replayed_by,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttemptView {
    n: u32,
    at: u64,
    status_code: Option<u16>,
    duration_ms: u32,
    error: Option<String>,
    /// The start of the answer's body (≤ 1 KiB).
    response_excerpt: Option<String>,
}

/// A delivery with its attempts and the envelope it carries.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryView,
    attempt_log: Vec<AttemptView>,
    /// The event envelope, as signed and sent.
    envelope: Value,
}

impl DeliveryDetail {
    pub(crate) fn new(d: Delivery, attempts: Vec<Attempt>, envelope: &str) -> DeliveryDetail {
        DeliveryDetail {
            delivery: d.into(),
            attempt_log: attempts
                .into_iter()
                .map(|a| AttemptView {
                    n: a.n,
                    at: a.at,
                    status_code: a.status_code,
                    duration_ms: a.duration_ms,
                    error: a.error,
                    response_excerpt: a.response_excerpt,
                })
                .collect(),
            envelope: serde_json::from_str(envelope).unwrap_or(Value::String(envelope.to_owned())),
        }
    }
}

/// How many deliveries were queued again.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Queued {
    pub(crate) queued: u32,
}
