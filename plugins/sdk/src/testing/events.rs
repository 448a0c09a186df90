//! `event-bus` in memory: what a plugin emits is checked as the gateway checks it (a
//! granted name, a JSON object of at most 64 KiB, a call in progress) and recorded with
//! the session it was scoped to, for assertions.

use super::current_call;
use serde_json::Value;
use std::cell::RefCell;

/// The largest payload the gateway publishes.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// One event a plugin published.
#[derive(Debug, Clone, PartialEq)]
pub struct EmittedEvent {
    /// `evt_test_<n>`, as answered to the plugin.
    pub id: String,
    pub name: String,
    /// The call's session; `None` for an organization-level call.
    pub session: Option<String>,
    pub payload: Value,
}

#[derive(Default)]
struct Bus {
    /// Name patterns the plugin may emit: exact names, `prefix.*` or `*`.
    granted: Vec<String>,
    emitted: Vec<EmittedEvent>,
}

thread_local! {
    static BUS: RefCell<Bus> = RefCell::new(Bus::default());
}

/// A fresh bus for `plugin`, granted `<plugin>.*` as the gateway's default is.
pub(crate) fn reset(plugin: &str) {
    BUS.with_borrow_mut(|b| {
        *b = Bus {
            granted: vec![format!("{plugin}.*")],
            emitted: Vec::new(),
        }
    });
}

/// The handle tests read emitted events (and set the emit grant) with.
#[derive(Debug, Clone, Copy)]
pub struct EventBusWorld;

impl EventBusWorld {
    /// Every event emitted so far, in order.
    pub fn emitted(&self) -> Vec<EmittedEvent> {
        BUS.with_borrow(|b| b.emitted.clone())
    }

    /// The events emitted so far, forgetting them.
    pub fn take(&self) -> Vec<EmittedEvent> {
        BUS.with_borrow_mut(|b| std::mem::take(&mut b.emitted))
    }

    /// Replaces the names the plugin may emit (`plugins.emits.<plugin>`): exact names,
    /// `prefix.*` or `*`.
    pub fn grant(&self, patterns: &[&str]) {
        BUS.with_borrow_mut(|b| b.granted = patterns.iter().map(|p| (*p).to_owned()).collect());
    }
}

fn granted(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

pub(crate) fn emit(name: &str, payload: &str) -> Result<String, String> {
    let call = current_call().ok_or_else(|| "no call in progress".to_owned())?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload is {} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit",
            payload.len()
        ));
    }
    let payload: Value =
        serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    if !payload.is_object() {
        return Err("payload must be a JSON object".into());
    }
    BUS.with_borrow_mut(|b| {
        if !granted(&b.granted, name) {
            return Err(format!("this plugin may not emit {name}"));
        }
        let id = format!("evt_test_{}", b.emitted.len() + 1);
        b.emitted.push(EmittedEvent {
            id: id.clone(),
            name: name.to_owned(),
            session: call.session,
            payload,
        });
        Ok(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_match_exact_names_prefixes_and_everything() {
        let g = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(granted(&g(&["chats.*"]), "chats.update"));
        assert!(!granted(&g(&["chats.*"]), "chatsupdate"));
        assert!(!granted(&g(&["chats.*"]), "groups.upsert"));
        assert!(granted(&g(&["groups.*", "group.*"]), "group.participants"));
        assert!(granted(&g(&["message"]), "message"));
        assert!(!granted(&g(&["message"]), "message.status"));
        assert!(granted(&g(&["*"]), "anything"));
        assert!(!granted(&[], "chats.update"));
    }

    #[test]
    fn emitting_outside_a_call_is_refused() {
        reset("chats");
        assert!(emit("chats.update", "{}").is_err());
        assert!(EventBusWorld.emitted().is_empty());
    }
}
