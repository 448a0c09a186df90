//! The message store, kept per session in the plugin's storage and changed through one
//! unit of work ([`Tx`]) per event or request.
//!
//! Keys: `m/<chat>/<position>` message, where the position `<createdAt:016x>/<seq:016x>/<id>`
//! sorts a chat's messages by time, then by arrival (WhatsApp's timestamps are often whole
//! seconds, and a burst of sends shares a millisecond) · `seq` the arrival counter ·
//! `x/<id>/<chat>` → the position, to find a message by id · `c/<chat>` a chat the session
//! has · `p/<jid>` → the same person's other JID (phone ↔ LID), since a direct chat may
//! be addressed by either · `me` the account's own JIDs · `a/<waMessageId>` an action of
//! this account (edit, revoke, reaction, vote) applied once the outbox has sent it.

use crate::model::{Account, ME, StoredMessage};
use gateway_sdk::store::{self as kv, Tx};
use gateway_sdk::{ApiError, Jid};
use serde::{Deserialize, Serialize};

pub(crate) const MESSAGE_PREFIX: &str = "m/";

/// The prefix of one chat's messages.
pub(crate) fn chat_prefix(chat: &str) -> Vec<u8> {
    format!("{MESSAGE_PREFIX}{chat}/").into_bytes()
}

/// A message's place in its chat: creation time, then arrival, then id.
fn position(m: &StoredMessage) -> String {
    format!("{:016x}/{:016x}/{}", m.created_at, m.seq, m.id)
}

/// Whether `raw` is a position as [`position`] writes it (a cursor must be one).
pub(crate) fn valid_position(raw: &[u8]) -> bool {
    let Ok(p) = std::str::from_utf8(raw) else {
        return false;
    };
    let mut parts = p.splitn(3, '/');
    let hex16 =
        |s: Option<&str>| s.is_some_and(|s| s.len() == 16 && u64::from_str_radix(s, 16).is_ok());
    hex16(parts.next()) && hex16(parts.next()) && parts.next().is_some_and(valid_id)
}

fn message_key(chat: &str, position: &str) -> Vec<u8> {
    [chat_prefix(chat), position.as_bytes().to_vec()].concat()
}

fn id_prefix(id: &str) -> Vec<u8> {
    format!("x/{id}/").into_bytes()
}

fn id_key(id: &str, chat: &str) -> Vec<u8> {
    format!("x/{id}/{chat}").into_bytes()
}

fn chat_key(chat: &str) -> Vec<u8> {
    format!("c/{chat}").into_bytes()
}

fn peer_key(jid: &str) -> Vec<u8> {
    format!("p/{jid}").into_bytes()
}

fn action_key(wa_message_id: &str) -> Vec<u8> {
    format!("a/{wa_message_id}").into_bytes()
}

const ACCOUNT_KEY: &[u8] = b"me";
const SEQ_KEY: &[u8] = b"seq";

/// Message ids as WhatsApp makes them (hex, or letters and digits), with room for other
/// clients' spellings; never a `/`, which separates key parts.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What this account asked the outbox to do to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Change {
    Edit {
        text: String,
    },
    Revoke,
    /// `""` removes this account's reaction.
    React {
        emoji: String,
    },
    /// No options clears this account's vote.
    Vote {
        options: Vec<String>,
    },
}

/// An own action waiting for the outbox to send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingChange {
    pub(crate) chat: String,
    pub(crate) id: String,
    pub(crate) change: Change,
}

impl Change {
    /// Applies the change once WhatsApp has it.
    pub(crate) fn apply(&self, m: &mut StoredMessage, at: u64) {
        match self {
            Change::Edit { text } => m.edit(text, at),
            Change::Revoke => m.revoke(at),
            Change::React { emoji } => m.react(ME.to_owned(), emoji, at),
            Change::Vote { options } => m.vote(ME.to_owned(), options, at),
        }
    }
}

/// The message store of one session, changed through one unit of work: reads see its
/// earlier writes, and everything it writes commits together.
pub(crate) struct MessageStore {
    tx: Tx,
}

impl MessageStore {
    pub(crate) fn new() -> MessageStore {
        MessageStore { tx: Tx::new() }
    }

    pub(crate) fn commit(self) -> Result<(), ApiError> {
        self.tx.commit()
    }

    pub(crate) fn account(&self) -> Result<Account, ApiError> {
        Ok(self.tx.get_json(ACCOUNT_KEY)?.unwrap_or_default())
    }

    /// Records the account's JIDs as its own messages show them.
    pub(crate) fn learn_account(
        &mut self,
        jid: Option<&Jid>,
        lid: Option<&Jid>,
    ) -> Result<(), ApiError> {
        let mut account = self.account()?;
        let before = account.clone();
        if let Some(j) = jid {
            account.jid = Some(j.to_string());
        }
        if let Some(l) = lid {
            account.lid = Some(l.to_string());
        }
        if account != before {
            self.tx.put_json(ACCOUNT_KEY, &account)?;
        }
        Ok(())
    }

    /// Records that a phone JID and a LID are one person (so one direct chat).
    pub(crate) fn link(&mut self, a: &Jid, b: &Jid) -> Result<(), ApiError> {
        let (phone, lid) = match (a.is_user(), b.is_lid(), a.is_lid(), b.is_user()) {
            (true, true, _, _) => (a, b),
            (_, _, true, true) => (b, a),
            _ => return Ok(()),
        };
        let (phone, lid) = (
            phone.to_non_device().to_string(),
            lid.to_non_device().to_string(),
        );
        if self.peer(&phone)?.as_deref() != Some(lid.as_str()) {
            self.tx.put_json(&peer_key(&phone), &lid)?;
        }
        if self.peer(&lid)?.as_deref() != Some(phone.as_str()) {
            self.tx.put_json(&peer_key(&lid), &phone)?;
        }
        Ok(())
    }

    fn peer(&self, jid: &str) -> Result<Option<String>, ApiError> {
        self.tx.get_json(&peer_key(jid))
    }

    /// The chat JIDs that name one chat: the JID itself and, for a person, their other
    /// JID when known.
    pub(crate) fn names_of(&self, chat: &str) -> Result<Vec<String>, ApiError> {
        let mut names = vec![chat.to_owned()];
        if let Some(other) = self.peer(chat)? {
            names.push(other);
        }
        Ok(names)
    }

    /// The stored chats among the names of `chat`.
    pub(crate) fn stored_chats(&self, chat: &str) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for name in self.names_of(chat)? {
            if self.tx.get(&chat_key(&name))?.is_some() {
                out.push(name);
            }
        }
        Ok(out)
    }

    pub(crate) fn add_chat(&mut self, chat: &str) -> Result<(), ApiError> {
        if self.tx.get(&chat_key(chat))?.is_none() {
            self.tx.put(&chat_key(chat), b"1".to_vec());
        }
        Ok(())
    }

    /// A message by chat (any of the chat's names) and id.
    pub(crate) fn find(&self, chat: &str, id: &str) -> Result<Option<StoredMessage>, ApiError> {
        for name in self.names_of(chat)? {
            if let Some(position) = self.tx.get_json::<String>(&id_key(id, &name))? {
                return self.tx.get_json(&message_key(&name, &position));
            }
        }
        Ok(None)
    }

    /// Every stored message with this id, whatever its chat.
    pub(crate) fn find_everywhere(&self, id: &str) -> Result<Vec<StoredMessage>, ApiError> {
        let prefix = id_prefix(id);
        let mut out = Vec::new();
        for key in self.tx.keys_with_prefix(&prefix)? {
            let chat = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if let Some(m) = self.find_exact(&chat, id)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn find_exact(&self, chat: &str, id: &str) -> Result<Option<StoredMessage>, ApiError> {
        match self.tx.get_json::<String>(&id_key(id, chat))? {
            Some(position) => self.tx.get_json(&message_key(chat, &position)),
            None => Ok(None),
        }
    }

    /// Writes a message (its chat then counts as stored). A new one (`seq` 0) gets the
    /// next arrival number; `created_at` and `seq` never change once written, so a message
    /// keeps its place in its chat's list.
    pub(crate) fn save(&mut self, m: &mut StoredMessage) -> Result<(), ApiError> {
        if m.seq == 0 {
            m.seq = self.tx.get_json::<u64>(SEQ_KEY)?.unwrap_or(0) + 1;
            self.tx.put_json(SEQ_KEY, &m.seq)?;
        }
        let position = position(m);
        self.tx.put_json(&message_key(&m.chat, &position), m)?;
        self.tx.put_json(&id_key(&m.id, &m.chat), &position)?;
        self.add_chat(&m.chat)
    }

    pub(crate) fn put_change(
        &mut self,
        wa_message_id: &str,
        change: &PendingChange,
    ) -> Result<(), ApiError> {
        self.tx.put_json(&action_key(wa_message_id), change)?;
        Ok(())
    }

    /// The own action sent as `wa_message_id`, removed from the waiting list.
    pub(crate) fn take_change(
        &mut self,
        wa_message_id: &str,
    ) -> Result<Option<PendingChange>, ApiError> {
        let key = action_key(wa_message_id);
        let change = self.tx.get_json(&key)?;
        if change.is_some() {
            self.tx.delete(&key);
        }
        Ok(change)
    }
}

/// Messages removed per atomic write when a chat is dropped: a chat may hold more than
/// one write carries.
const DELETE_CHUNK: u32 = 256;

/// Removes a chat and every message stored in it (under any of its names).
pub(crate) fn delete_chat(chat: &str) -> Result<(), ApiError> {
    let names = MessageStore::new().names_of(chat)?;
    for name in names {
        let prefix = chat_prefix(&name);
        loop {
            let rows = kv::scan(&prefix, None, DELETE_CHUNK, false)?;
            let mut tx = Tx::new();
            for row in &rows {
                tx.delete(&row.key);
                if let Some((_, id)) = std::str::from_utf8(&row.key[prefix.len()..])
                    .ok()
                    .and_then(|p| p.rsplit_once('/'))
                {
                    tx.delete(&id_key(id, &name));
                }
            }
            if rows.len() < DELETE_CHUNK as usize {
                tx.delete(&chat_key(&name));
                tx.commit()?;
                break;
            }
            tx.commit()?;
        }
    }
    Ok(())
}
