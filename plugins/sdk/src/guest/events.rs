//! Events a plugin publishes (`event-bus`), scoped by the host to the call's session and
//! organization. They reach subscribing plugins (the emitter included), webhooks and
//! realtime in order with the session's other events.

#[cfg(target_arch = "wasm32")]
use super::bindings::wa::gateway::event_bus as imp;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::events as imp;

use crate::error::ApiError;
use serde::Serialize;

/// Publishes `name` with `payload`, which must serialize to a JSON object of at most
/// 64 KiB; answers the event's id (`evt_…`). The host refuses names the operator has not
/// granted the plugin (`plugins.emits`); a refusal is an internal error, since it is the
/// plugin's or the operator's mistake, not the caller's.
pub fn emit(name: &str, payload: &impl Serialize) -> Result<String, ApiError> {
    let text = serde_json::to_string(payload)
        .map_err(|e| ApiError::internal(format!("cannot encode the {name} payload: {e}")))?;
    imp::emit(name, &text)
        .map_err(|e| ApiError::internal(format!("event {name} was not published: {e}")))
}
