//! `whatsapp-chats` in memory: every call is recorded for assertions (chat states sent,
//! read receipts, settings applied, chats deleted) and honours the fake connection of
//! [`super::whatsapp`]: with it dropped, calls answer `not-connected` and record nothing.

use crate::guest::bindings::wa::gateway::whatsapp_chats::{ChatSettings, ChatState};
use crate::guest::bindings::wa::gateway::whatsapp_types::{MessageKey, WhatsappError};
use crate::jid::Jid;
use std::cell::RefCell;

/// What the plugin did on the fake WhatsApp, in call order.
#[derive(Default)]
struct Calls {
    states: Vec<(String, ChatState)>,
    receipts: Vec<(String, Vec<MessageKey>)>,
    settings: Vec<(String, ChatSettings)>,
    deleted: Vec<String>,
}

thread_local! {
    static CALLS: RefCell<Calls> = RefCell::new(Calls::default());
}

pub(crate) fn reset() {
    CALLS.with_borrow_mut(|c| *c = Calls::default());
}

/// The handle tests read the recorded `whatsapp-chats` calls with.
#[derive(Debug, Clone, Copy)]
pub struct ChatsWorld;

impl ChatsWorld {
    /// `(chat, state)` for every chat state sent.
    pub fn states(&self) -> Vec<(String, ChatState)> {
        CALLS.with_borrow(|c| c.states.clone())
    }

    /// `(chat, messages)` for every batch of read receipts sent.
    pub fn receipts(&self) -> Vec<(String, Vec<MessageKey>)> {
        CALLS.with_borrow(|c| c.receipts.clone())
    }

    /// `(chat, settings)` for every settings change applied on WhatsApp.
    pub fn settings(&self) -> Vec<(String, ChatSettings)> {
        CALLS.with_borrow(|c| c.settings.clone())
    }

    /// Every chat deleted on WhatsApp.
    pub fn deleted(&self) -> Vec<String> {
        CALLS.with_borrow(|c| c.deleted.clone())
    }

    /// Forgets the calls recorded so far.
    pub fn clear(&self) {
        reset();
    }
}

/// Runs a live call: refused like the gateway's when the fake connection is down (the
/// cheapest look-up of the fake WhatsApp says so) and for a chat that is not a user, LID
/// or group JID.
fn live(chat: &str, record: impl FnOnce(&mut Calls, String)) -> Result<(), WhatsappError> {
    super::whatsapp::blocklist()?;
    let jid = Jid::parse(chat).map_err(|e| WhatsappError::Invalid(e.to_string()))?;
    if !(jid.is_person() || jid.is_group()) {
        return Err(WhatsappError::Invalid(format!(
            "{chat} is not a user, LID or group JID"
        )));
    }
    CALLS.with_borrow_mut(|c| record(c, jid.to_non_device().to_string()));
    Ok(())
}

pub(crate) fn send_chat_state(chat: &str, state: ChatState) -> Result<(), WhatsappError> {
    live(chat, |c, chat| c.states.push((chat, state)))
}

pub(crate) fn mark_read(chat: &str, messages: &[MessageKey]) -> Result<(), WhatsappError> {
    if let Some(bad) = messages.iter().find(|m| m.id.is_empty()) {
        return Err(WhatsappError::Invalid(format!(
            "message key in {} has an empty id",
            bad.chat
        )));
    }
    live(chat, |c, chat| c.receipts.push((chat, messages.to_vec())))
}

pub(crate) fn apply_chat_settings(chat: &str, settings: ChatSettings) -> Result<(), WhatsappError> {
    if settings.muted_until.is_some_and(|m| m < -1) {
        return Err(WhatsappError::Invalid(
            "muted-until is epoch ms, 0 or -1".into(),
        ));
    }
    live(chat, |c, chat| c.settings.push((chat, settings)))
}

pub(crate) fn delete_chat(chat: &str) -> Result<(), WhatsappError> {
    live(chat, |c, chat| c.deleted.push(chat))
}
