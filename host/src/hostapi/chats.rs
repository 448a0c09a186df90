//! `wa:gateway/whatsapp-chats`: presence, read receipts and the account's chat settings
//! through the request's session.

use super::InstanceState;
use super::convert::{message_ref, whatsapp_error};
use super::wa::gateway::whatsapp_chats::{ChatSettings, ChatState, Host};
use super::wa::gateway::whatsapp_types::{MessageKey, WhatsappError};
use crate::engines;
use gateway_sdk::Jid;

fn chat_jid(raw: &str) -> Result<Jid, WhatsappError> {
    Jid::parse(raw)
        .map(|j| j.to_non_device())
        .map_err(|e| WhatsappError::Invalid(e.to_string()))
}

impl Host for InstanceState {
    async fn send_chat_state(
        &mut self,
        chat: String,
        state: ChatState,
    ) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let chat = chat_jid(&chat)?;
        let state = match state {
            ChatState::Composing => engines::ChatState::Composing,
            ChatState::Recording => engines::ChatState::Recording,
            ChatState::Paused => engines::ChatState::Paused,
        };
        super::within(
            deadline,
            async {
                engine
                    .send_chat_state(&session, &chat, state)
                    .await
                    .map_err(whatsapp_error)
            },
            || WhatsappError::Failed("WhatsApp did not answer in time".into()),
        )
        .await
    }

    async fn mark_read(
        &mut self,
        chat: String,
        messages: Vec<MessageKey>,
    ) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let chat = chat_jid(&chat)?;
        let keys = messages
            .iter()
            .map(message_ref)
            .collect::<Result<Vec<_>, _>>()
            .map_err(WhatsappError::Invalid)?;
        super::within(
            deadline,
            async {
                engine
                    .mark_read(&session, &chat, &keys)
                    .await
                    .map_err(whatsapp_error)
            },
            || WhatsappError::Failed("WhatsApp did not answer in time".into()),
        )
        .await
    }

    async fn apply_chat_settings(
        &mut self,
        chat: String,
        settings: ChatSettings,
    ) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let chat = chat_jid(&chat)?;
        let settings = engines::ChatSettings {
            archived: settings.archived,
            pinned: settings.pinned,
            muted_until: settings.muted_until,
        };
        super::within(
            deadline,
            async {
                engine
                    .apply_chat_settings(&session, &chat, settings)
                    .await
                    .map_err(whatsapp_error)
            },
            || WhatsappError::Failed("WhatsApp did not answer in time".into()),
        )
        .await
    }

    async fn delete_chat(&mut self, chat: String) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let chat = chat_jid(&chat)?;
        super::within(
            deadline,
            async {
                engine
                    .delete_chat(&session, &chat)
                    .await
                    .map_err(whatsapp_error)
            },
            || WhatsappError::Failed("WhatsApp did not answer in time".into()),
        )
        .await
    }
}
