//! One event delivered to a subscribing plugin, with its JSON payload.

use super::bindings::wa::gateway::types as wit;
use crate::error::ApiError;
use serde::de::DeserializeOwned;

/// An event of one session, in the envelope the HTTP contract publishes.
#[derive(Debug, Clone)]
pub struct Event {
    inner: wit::Event,
}

impl Event {
    pub(crate) fn from_wit(inner: wit::Event) -> Self {
        Event { inner }
    }

    /// `evt_<ULID>`.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// `session.status`, `contacts.upsert`, `message`…
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn session(&self) -> &str {
        &self.inner.session
    }

    pub fn organization(&self) -> &str {
        &self.inner.organization
    }

    /// Epoch milliseconds.
    pub fn timestamp(&self) -> u64 {
        self.inner.timestamp
    }

    /// The payload as JSON text.
    pub fn payload_text(&self) -> &str {
        &self.inner.payload
    }

    /// The payload read as `T`; a payload that does not fit is a validation error.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_str(&self.inner.payload).map_err(|e| {
            ApiError::validation(format!(
                "{} payload is not what this plugin reads: {e}",
                self.inner.name
            ))
        })
    }
}
