//! What the engine remembers of a session's messages, in its redb scope beside the
//! library's state: a copy of every message seen or sent recently (to quote it in a
//! reply, and to vote on a poll with its secret), and the media descriptor of every media
//! message (direct path, media key, hashes, mimetype, file name), so its media can be
//! downloaded or forwarded by reference later.
//!
//! Both are `WebMessageInfo`s — WhatsApp's own record of a message: the key names the chat,
//! the id, whether it is this account's and who wrote it. Recent copies expire after
//! [`RECENT_KEEP_MS`] (an index by time keeps the sweep cheap); descriptors stay until the
//! message is revoked or the session is logged out or deleted.

use super::store::OWNER;
use crate::storage::{Database, ENGINE_KV, ScanRange, Scope, ScopedKv, StorageError};
use std::ops::Bound;
use whatsapp_rust::buffa::Message as _;
use whatsapp_rust::waproto::whatsapp as wa;

/// How long a message stays quotable (and a poll votable) without its copy: about as long
/// as WhatsApp's CDN keeps media.
pub(super) const RECENT_KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

const RECENT: &str = "recent/";
const RECENT_AT: &str = "recent-at/";
const MEDIA: &str = "media/";

/// Rows deleted per transaction when old copies are swept.
const SWEEP_BATCH: usize = 1000;

/// One session's remembered messages.
#[derive(Clone)]
pub(super) struct Archive {
    kv: ScopedKv,
    scope: Scope,
}

/// A message to remember: its record (key, content, time), and when it was seen.
pub(super) struct Remembered {
    pub(super) info: wa::WebMessageInfo,
    /// Epoch ms the engine saw or sent it (the sweep's clock).
    pub(super) seen_at: i64,
}

fn row(ns: &str, chat: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + chat.len() + id.len() + 1);
    k.extend_from_slice(ns.as_bytes());
    k.extend_from_slice(chat.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn timed_row(at: i64, chat: &str, id: &str) -> Vec<u8> {
    let mut k = RECENT_AT.as_bytes().to_vec();
    k.extend_from_slice(&at.max(0).to_be_bytes());
    k.extend_from_slice(chat.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The chat and id of a `recent-at/` row.
fn parse_timed(key: &[u8]) -> Option<(String, String)> {
    let rest = key.get(RECENT_AT.len() + 8..)?;
    let at = rest.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8(rest[..at].to_vec()).ok()?,
        String::from_utf8(rest[at + 1..].to_vec()).ok()?,
    ))
}

fn decode(bytes: &[u8]) -> Result<wa::WebMessageInfo, StorageError> {
    whatsapp_rust::waproto::codec::web_message_info_decode(bytes)
        .map_err(|e| StorageError::Invalid(format!("a remembered message does not decode: {e}")))
}

/// The chat and id of a record, when it has both.
fn address(info: &wa::WebMessageInfo) -> Option<(&str, &str)> {
    let key = info.key.as_option()?;
    Some((key.remote_jid.as_deref()?, key.id.as_deref()?))
}

impl Archive {
    pub(super) fn new(db: Database, session: &str) -> Archive {
        Archive {
            kv: ScopedKv::new(db, ENGINE_KV, OWNER),
            scope: Scope::Session(session.to_owned()),
        }
    }

    /// Remembers messages, in one transaction: each one's copy, and the descriptor of
    /// those with media. Blocking (a durable commit): call it off the async workers.
    pub(super) fn remember(&self, messages: &[Remembered]) -> Result<(), StorageError> {
        self.remember_since(messages, i64::MIN)
    }

    /// Like [`Archive::remember`], keeping copies only of messages seen since `cutoff`
    /// (epoch ms; older history is kept for its media alone).
    pub(super) fn remember_since(
        &self,
        messages: &[Remembered],
        cutoff: i64,
    ) -> Result<(), StorageError> {
        let mut ops = Vec::with_capacity(messages.len() * 3);
        for m in messages {
            let Some((chat, id)) = address(&m.info) else {
                continue;
            };
            if m.seen_at >= cutoff {
                ops.push((row(RECENT, chat, id), Some(m.info.encode_to_vec())));
                ops.push((timed_row(m.seen_at, chat, id), Some(Vec::new())));
            }
            if let Some(media) = m
                .info
                .message
                .as_option()
                .and_then(super::content::media_only)
            {
                let descriptor = wa::WebMessageInfo {
                    key: m.info.key.clone(),
                    message: whatsapp_rust::buffa::MessageField::some(media),
                    message_timestamp: m.info.message_timestamp,
                    ..Default::default()
                };
                ops.push((row(MEDIA, chat, id), Some(descriptor.encode_to_vec())));
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.kv.write(&self.scope, &ops).map(|_| ())
    }

    /// The recent copy of a message, if it is still kept.
    pub(super) fn recent(
        &self,
        chat: &str,
        id: &str,
    ) -> Result<Option<wa::WebMessageInfo>, StorageError> {
        self.kv
            .get(&self.scope, &row(RECENT, chat, id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// The media descriptor of a message: its record with only the media in it.
    pub(super) fn media(
        &self,
        chat: &str,
        id: &str,
    ) -> Result<Option<wa::WebMessageInfo>, StorageError> {
        self.kv
            .get(&self.scope, &row(MEDIA, chat, id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Replaces a descriptor (the phone uploaded the media again, to a new path).
    pub(super) fn replace_media(
        &self,
        descriptor: &wa::WebMessageInfo,
    ) -> Result<(), StorageError> {
        let Some((chat, id)) = address(descriptor) else {
            return Ok(());
        };
        self.kv.put(
            &self.scope,
            &row(MEDIA, chat, id),
            &descriptor.encode_to_vec(),
        )
    }

    /// Forgets a message's content and media (it was deleted for everyone).
    pub(super) fn forget(&self, chat: &str, id: &str) -> Result<(), StorageError> {
        self.kv.write(
            &self.scope,
            &[(row(RECENT, chat, id), None), (row(MEDIA, chat, id), None)],
        )?;
        Ok(())
    }

    /// Drops the recent copies seen before `cutoff` (epoch ms); returns how many.
    pub(super) fn sweep(&self, cutoff: i64) -> Result<usize, StorageError> {
        let mut end = RECENT_AT.as_bytes().to_vec();
        end.extend_from_slice(&cutoff.max(0).to_be_bytes());
        let mut swept = 0;
        loop {
            let rows = self.kv.scan(
                &self.scope,
                &ScanRange {
                    prefix: RECENT_AT.as_bytes().to_vec(),
                    end: Some(Bound::Excluded(end.clone())),
                    limit: SWEEP_BATCH,
                    ..Default::default()
                },
            )?;
            if rows.is_empty() {
                return Ok(swept);
            }
            let mut ops = Vec::with_capacity(rows.len() * 2);
            for (key, _) in &rows {
                if let Some((chat, id)) = parse_timed(key) {
                    ops.push((row(RECENT, &chat, &id), None));
                }
                ops.push((key.clone(), None));
            }
            self.kv.write(&self.scope, &ops)?;
            swept += rows.len();
            if rows.len() < SWEEP_BATCH {
                return Ok(swept);
            }
        }
    }
}
