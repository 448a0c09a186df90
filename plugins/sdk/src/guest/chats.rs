//! Presence, read receipts and the account's chat settings on WhatsApp (`whatsapp-chats`).
//! Every call acts through the request's session and answers a typed [`WhatsappError`],
//! which `?` turns into the envelope's terms (not connected is 501, API.md §1.5).

use super::bindings::wa::gateway::whatsapp_chats as wit;

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::chats as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use super::bindings::wa::gateway::whatsapp_types::{MessageKey, WhatsappError};
pub use wit::{ChatSettings, ChatState};

/// Shows "typing…" (`composing`), "recording audio…" (`recording`) or stops it
/// (`paused`) in a chat; WhatsApp lets the state lapse after about 25 seconds.
pub fn send_chat_state(chat: &str, state: ChatState) -> Result<(), WhatsappError> {
    imp::send_chat_state(chat, state)
}

/// Sends read receipts (blue ticks) for these incoming messages of `chat`.
pub fn mark_read(chat: &str, messages: &[MessageKey]) -> Result<(), WhatsappError> {
    imp::mark_read(chat, messages)
}

/// Applies archive, pin and mute on WhatsApp (app state), so the phone follows; fields
/// left `None` stay as they are. `muted_until`: epoch ms, 0 unmutes, -1 mutes forever.
pub fn apply_chat_settings(chat: &str, settings: ChatSettings) -> Result<(), WhatsappError> {
    imp::apply_chat_settings(chat, settings)
}

/// Deletes the chat on WhatsApp (app state).
pub fn delete_chat(chat: &str) -> Result<(), WhatsappError> {
    imp::delete_chat(chat)
}
