//! `wa:gateway/event-bus`: events a plugin publishes, scoped to the call's session and
//! organization, under the names granted in `plugins.emits.<plugin>`; they reach the
//! subscribing plugins in order with the session's other events. A chain of emits more
//! than four deep (an emit caused by an event that an emit caused…) is dropped.

use super::InstanceState;
use super::wa::gateway::event_bus::Host;
use crate::events::{EventEnvelope, MAX_EMIT_DEPTH};

/// Largest payload an emit may carry.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Whether `name` matches one of the granted patterns (`chats.update`, `groups.*`, `*`).
pub(crate) fn granted(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == name
            || p.strip_suffix(".*").is_some_and(|prefix| {
                name.strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('.'))
            })
    })
}

impl Host for InstanceState {
    async fn emit(&mut self, name: String, payload: String) -> Result<String, String> {
        let call = self
            .call()
            .ok_or("events can only be emitted while serving a call")?;
        let session = call
            .session
            .clone()
            .ok_or("events are emitted for a session: this call has none")?;
        let valid_name = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !valid_name {
            return Err(format!("event name '{name}' is not valid"));
        }
        let patterns = (self.services.emits)(self.plugin());
        if !granted(&patterns, &name) {
            return Err(format!(
                "{} may not emit '{name}' (plugins.emits.{} grants: {})",
                self.plugin(),
                self.plugin(),
                patterns.join(", ")
            ));
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(format!("the payload is over {MAX_PAYLOAD_BYTES} bytes"));
        }
        let value: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
        if !value.is_object() {
            return Err("the payload must be a JSON object".into());
        }
        let depth = call.event_depth.saturating_add(1);
        let mut envelope = EventEnvelope::new(&name, &session, &call.organization, value);
        envelope.depth = depth;
        let id = envelope.id.clone();
        if depth > MAX_EMIT_DEPTH {
            tracing::warn!(plugin = self.plugin(), event = %name, depth, "emit chain too deep; event dropped");
            return Ok(id);
        }
        self.services.bus.publish(envelope);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::granted;

    #[test]
    fn patterns_match_names_and_dotted_prefixes() {
        let p = vec!["chats.*".to_owned(), "group.participants".to_owned()];
        assert!(granted(&p, "chats.update"));
        assert!(granted(&p, "group.participants"));
        assert!(!granted(&p, "chatsx.update"));
        assert!(!granted(&p, "chats"));
        assert!(!granted(&p, "groups.upsert"));
        assert!(granted(&["*".to_owned()], "anything.at_all"));
    }
}
