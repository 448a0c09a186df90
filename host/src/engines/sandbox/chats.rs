//! The account's chat settings in the sandbox — archived, pinned, muted — kept per
//! session as WhatsApp's app state keeps them: changed through `whatsapp-chats`,
//! forgotten with the chat, and read back by an admin backfill together with the world's
//! direct chats.

use super::*;
use crate::engines::{ChatSettings, ChatSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const CHAT_SETTINGS_PREFIX: &[u8] = b"chat-settings/";

/// One chat's settings as stored (`None` = never set).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSettings {
    archived: Option<bool>,
    pinned: Option<bool>,
    muted_until: Option<i64>,
}

impl From<StoredSettings> for ChatSettings {
    fn from(s: StoredSettings) -> Self {
        ChatSettings {
            archived: s.archived,
            pinned: s.pinned,
            muted_until: s.muted_until,
        }
    }
}

fn settings_key(chat: &Jid) -> Vec<u8> {
    let mut k = CHAT_SETTINGS_PREFIX.to_vec();
    k.extend_from_slice(chat.to_non_device().to_string().as_bytes());
    k
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

impl SandboxEngine {
    fn stored_settings(
        &self,
        session: &str,
    ) -> Result<BTreeMap<String, StoredSettings>, EngineError> {
        let rows = self
            .kv
            .scan_all(&Self::scope(session), CHAT_SETTINGS_PREFIX)
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let chat = String::from_utf8_lossy(&k[CHAT_SETTINGS_PREFIX.len()..]).into_owned();
                serde_json::from_slice(&v).ok().map(|s| (chat, s))
            })
            .collect())
    }

    /// Applies a settings change to the chat's stored settings.
    pub(super) async fn save_chat_settings(
        &self,
        session: &str,
        chat: &Jid,
        change: ChatSettings,
    ) -> Result<(), EngineError> {
        let key = settings_key(chat);
        let mut s: StoredSettings = self
            .kv
            .get(&Self::scope(session), &key)
            .map_err(failed)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        s.archived = change.archived.or(s.archived);
        s.pinned = change.pinned.or(s.pinned);
        s.muted_until = change.muted_until.or(s.muted_until);
        let value = serde_json::to_vec(&s).map_err(failed)?;
        self.write(Self::scope(session), vec![(key, Some(value))])
            .await
    }

    /// Forgets a deleted chat's settings.
    pub(super) async fn forget_chat(&self, session: &str, chat: &Jid) -> Result<(), EngineError> {
        self.write(Self::scope(session), vec![(settings_key(chat), None)])
            .await
    }

    /// The world's direct chats and every chat with stored settings, with those settings.
    pub(super) fn chat_snapshots(&self, session: &str) -> Result<Vec<ChatSnapshot>, EngineError> {
        let mut settings = self.stored_settings(session)?;
        let mut chats: Vec<ChatSnapshot> = self
            .world
            .world
            .contacts
            .iter()
            .filter(|c| c.dm)
            .map(|c| {
                let jid = c.phone_jid().unwrap_or_else(|| c.lid.clone());
                let stored = settings
                    .remove(&jid)
                    .or_else(|| settings.remove(&c.lid))
                    .unwrap_or_default();
                ChatSnapshot {
                    jid,
                    lid: Some(c.lid.clone()),
                    settings: stored.into(),
                }
            })
            .collect();
        chats.extend(settings.into_iter().map(|(jid, s)| ChatSnapshot {
            jid,
            lid: None,
            settings: s.into(),
        }));
        Ok(chats)
    }
}
