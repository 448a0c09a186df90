//! What the webhook engine keeps: the targets of an organization with their signing
//! secrets and retry policy, and each delivery of an event to one of them with its
//! attempts (API.md §7.1).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Exponential,
    Linear,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub delay_seconds: u32,
    pub policy: Backoff,
    pub max_delay_seconds: u32,
}

impl Default for RetryPolicy {
    /// 15 attempts from 2 s doubling up to an hour: about four hours in all.
    fn default() -> Self {
        RetryPolicy {
            attempts: 15,
            delay_seconds: 2,
            policy: Backoff::Exponential,
            max_delay_seconds: 3600,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `done + 1`, once `done` attempts failed, without jitter.
    pub fn delay_after(&self, done: u32) -> std::time::Duration {
        let base = u64::from(self.delay_seconds);
        let secs = match self.policy {
            Backoff::Exponential => base.saturating_mul(1u64 << done.saturating_sub(1).min(40)),
            Backoff::Linear => base.saturating_mul(u64::from(done.max(1))),
            Backoff::Constant => base,
        };
        std::time::Duration::from_secs(secs.min(u64::from(self.max_delay_seconds)))
    }
}

/// A signing key; a rotated-out one keeps signing until `until` (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// The key bytes, base64.
    pub key: String,
    pub until: Option<u64>,
}

/// A webhook target as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub session_id: Option<String>,
    pub active: bool,
    pub custom_headers: Vec<(String, String)>,
    pub retry_policy: RetryPolicy,
    pub disabled_reason: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    /// The current key first, then rotated-out ones still in their overlap.
    pub keys: Vec<SigningKey>,
    /// Since when every delivery went dead (none succeeded since); cleared by a success.
    pub failing_since: Option<u64>,
}

impl Webhook {
    /// The keys that sign at `now`.
    pub fn signing_keys(&self, now: u64) -> impl Iterator<Item = &SigningKey> {
        self.keys
            .iter()
            .filter(move |k| k.until.is_none_or(|u| u > now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Retrying,
    Succeeded,
    Dead,
}

impl DeliveryStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, DeliveryStatus::Succeeded | DeliveryStatus::Dead)
    }
}

/// One attempt's outcome, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub n: u32,
    pub at: u64,
    pub status_code: Option<u16>,
    pub duration_ms: u32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// An event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub organization_id: String,
    pub event_id: String,
    pub event: String,
    pub session_id: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<u64>,
    pub last_attempt_at: Option<u64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub replay_of: Option<String>,
    pub replayed_by: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    pub attempt_log: Vec<Attempt>,
    /// The event envelope, byte for byte as signed.
    pub envelope: String,
}

impl Delivery {
    /// A delivery due now.
    pub fn new(
        webhook: &Webhook,
        event_id: &str,
        event: &str,
        session: Option<&str>,
        envelope: String,
        now: u64,
    ) -> Delivery {
        Delivery {
            id: format!("dlv_{}", crate::ids::ordered()),
            webhook_id: webhook.id.clone(),
            organization_id: webhook.organization_id.clone(),
            event_id: event_id.to_owned(),
            event: event.to_owned(),
            session_id: session.map(str::to_owned),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            last_attempt_at: None,
            last_status_code: None,
            last_error: None,
            replay_of: None,
            replayed_by: None,
            created_at: now,
            updated_at: now,
            attempt_log: Vec::new(),
            envelope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delays_follow_the_policy_and_stop_at_the_cap() {
        let mut p = RetryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::from_secs(2));
        assert_eq!(p.delay_after(2), Duration::from_secs(4));
        assert_eq!(p.delay_after(5), Duration::from_secs(32));
        assert_eq!(p.delay_after(14), Duration::from_secs(3600));
        p.policy = Backoff::Linear;
        assert_eq!(p.delay_after(3), Duration::from_secs(6));
        p.policy = Backoff::Constant;
        assert_eq!(p.delay_after(9), Duration::from_secs(2));
        // The default spans about four hours.
        let total: u64 = (1..15)
            .map(|n| RetryPolicy::default().delay_after(n).as_secs())
            .sum();
        assert!((3 * 3600..5 * 3600).contains(&total), "{total}");
    }
}
