//! The chat store, kept per session in the plugin's storage. Every person or group the
//! session hears of is one party record (addresses, names, and its chat while the account
//! has one); an address index maps each LID, phone JID and group JID to its party, so a
//! person addressed both ways is one chat, as the contacts plugin keeps one identity.
//!
//! Keys: `seq` · `p/<id>` party · `a/<jid>` address → id · `o/<order>` a copy of every
//! party that has a chat, in list order (pinned, newest message, JID), so a page is one
//! scan · `r/<id>/<ts>/<message id>` incoming messages not yet read, for read receipts.
//! Ids and timestamps are 16 hex digits so they sort numerically.

use crate::model::{Chat, Kind, Party};
use gateway_sdk::store::{self as kv, Tx};
use gateway_sdk::{ApiError, Jid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The chats in list order.
pub(crate) const ORDER_PREFIX: &[u8] = b"o/";

/// Read receipts go to at most this many unread messages per chat (the latest).
pub(crate) const RECEIPTS_KEPT: u32 = 500;
/// Unread messages kept beyond [`RECEIPTS_KEPT`] before the oldest are dropped, so the
/// trim is one scan per this many messages rather than one per message.
const RECEIPTS_SLACK: u32 = 100;

fn party_key(id: u64) -> Vec<u8> {
    format!("p/{id:016x}").into_bytes()
}

fn address_key(jid: &str) -> Vec<u8> {
    format!("a/{jid}").into_bytes()
}

pub(crate) fn receipts_prefix(id: u64) -> Vec<u8> {
    format!("r/{id:016x}/").into_bytes()
}

fn receipt_key(id: u64, timestamp: u64, message: &str) -> Vec<u8> {
    format!("r/{id:016x}/{timestamp:016x}/{message}").into_bytes()
}

/// An incoming message a read receipt may be sent for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Unread {
    /// The chat as the message named it (a DM may arrive by LID or phone JID).
    pub(crate) chat: String,
    pub(crate) id: String,
    /// The author (a group's participant; the person in a DM).
    pub(crate) sender: Option<String>,
}

/// The chat store of one session, changed through one unit of work: reads see its
/// earlier writes, and everything it writes commits together.
pub(crate) struct ChatStore {
    tx: Tx,
}

impl ChatStore {
    pub(crate) fn new() -> ChatStore {
        ChatStore { tx: Tx::new() }
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ApiError> {
        self.tx.get_json(key)
    }

    fn set<T: Serialize>(&mut self, key: &[u8], value: &T) -> Result<(), ApiError> {
        self.tx.put_json(key, value)?;
        Ok(())
    }

    /// Commits every change at once.
    pub(crate) fn commit(self) -> Result<(), ApiError> {
        self.tx.commit()
    }

    pub(crate) fn party(&self, id: u64) -> Result<Option<Party>, ApiError> {
        self.get(&party_key(id))
    }

    fn party_or_fail(&self, id: u64) -> Result<Party, ApiError> {
        self.party(id)?
            .ok_or_else(|| ApiError::internal("chat index points at a missing party"))
    }

    /// The party an address (LID, phone JID, group JID) belongs to, if stored.
    pub(crate) fn find(&self, jid: &Jid) -> Result<Option<Party>, ApiError> {
        match self.get::<u64>(&address_key(&jid.to_non_device().to_string()))? {
            Some(id) => self.party(id),
            None => Ok(None),
        }
    }

    /// Writes a party, keeping its place in the list order (and leaving the list when
    /// its chat is gone).
    pub(crate) fn save(&mut self, party: &Party) -> Result<(), ApiError> {
        let old = self.party(party.id)?.and_then(|p| p.order_key());
        let new = party.order_key();
        if let Some(old) = old.filter(|o| new.as_ref() != Some(o)) {
            self.tx.delete(&old);
        }
        if let Some(new) = &new {
            self.set(new, party)?;
        }
        self.set(&party_key(party.id), party)
    }

    fn next_id(&mut self) -> Result<u64, ApiError> {
        let n = self.get::<u64>(b"seq")?.unwrap_or(0) + 1;
        self.set(b"seq", &n)?;
        Ok(n)
    }

    fn create(&mut self, kind: Kind) -> Result<Party, ApiError> {
        Ok(Party {
            id: self.next_id()?,
            kind,
            lid: None,
            phone_jid: None,
            group_jid: None,
            names: Default::default(),
            chat: None,
            deleted_at: None,
        })
    }

    /// Points `jid` at party `id`.
    fn index(&mut self, jid: &str, id: u64) -> Result<(), ApiError> {
        self.set(&address_key(jid), &id)
    }

    /// Finds or creates a group's party.
    pub(crate) fn group(&mut self, gid: &Jid) -> Result<Party, ApiError> {
        if let Some(p) = self.find(gid)? {
            return Ok(p);
        }
        let mut p = self.create(Kind::Group)?;
        let gid = gid.to_non_device().to_string();
        self.index(&gid, p.id)?;
        p.group_jid = Some(gid);
        self.save(&p)?;
        Ok(p)
    }

    /// Finds or creates the person a LID and/or phone JID name, merging two parties
    /// when these show that a LID and a phone number known apart are one person.
    /// `None` when neither is given.
    pub(crate) fn person(
        &mut self,
        lid: Option<&Jid>,
        phone: Option<&Jid>,
    ) -> Result<Option<Party>, ApiError> {
        let lid = lid
            .filter(|j| j.is_lid())
            .map(|j| j.to_non_device().to_string());
        let phone = phone
            .filter(|j| j.is_user())
            .map(|j| j.to_non_device().to_string());
        let lookup = |s: &Self, a: &Option<String>| -> Result<Option<u64>, ApiError> {
            match a {
                Some(a) => s.get(&address_key(a)),
                None => Ok(None),
            }
        };
        let (by_lid, by_phone) = (lookup(self, &lid)?, lookup(self, &phone)?);
        let mut party = match (by_lid, by_phone) {
            (None, None) if lid.is_none() && phone.is_none() => return Ok(None),
            (Some(a), Some(b)) if a != b => self.merge(a, b)?,
            (Some(a), _) | (None, Some(a)) => self.party_or_fail(a)?,
            (None, None) => self.create(Kind::Dm)?,
        };
        let before = party.clone();
        if let Some(l) = lid.filter(|l| party.lid.as_ref() != Some(l)) {
            if let Some(old) = party.lid.take() {
                self.tx.delete(&address_key(&old));
            }
            self.index(&l, party.id)?;
            party.lid = Some(l);
        }
        if let Some(p) = phone.filter(|p| party.phone_jid.as_ref() != Some(p)) {
            if let Some(old) = party.phone_jid.take() {
                self.tx.delete(&address_key(&old));
            }
            self.index(&p, party.id)?;
            party.phone_jid = Some(p);
        }
        if party != before || self.party(party.id)?.is_none() {
            self.save(&party)?;
        }
        Ok(Some(party))
    }

    /// Folds two parties that turned out to be one person into one: the one with a chat
    /// survives (the older when both or neither have one), and gets the other's
    /// addresses, names, chat state and unread messages.
    fn merge(&mut self, a: u64, b: u64) -> Result<Party, ApiError> {
        let (pa, pb) = (self.party_or_fail(a)?, self.party_or_fail(b)?);
        let (mut keep, gone) = match (pa.chat.is_some(), pb.chat.is_some()) {
            (true, false) => (pa, pb),
            (false, true) => (pb, pa),
            _ if a < b => (pa, pb),
            _ => (pb, pa),
        };
        let gone_order = gone.order_key();
        keep.lid = keep.lid.or(gone.lid.clone());
        keep.phone_jid = keep.phone_jid.or(gone.phone_jid.clone());
        let names = &mut keep.names;
        names.contact = names.contact.take().or(gone.names.contact);
        names.chat = names.chat.take().or(gone.names.chat);
        names.push = names.push.take().or(gone.names.push);
        keep.deleted_at = keep.deleted_at.max(gone.deleted_at);
        keep.chat = match (keep.chat.take(), gone.chat) {
            (Some(k), Some(g)) => Some(merge_chats(k, g)),
            (k, g) => k.or(g),
        };
        for addr in [&keep.lid, &keep.phone_jid, &gone.lid, &gone.phone_jid]
            .into_iter()
            .flatten()
        {
            self.index(addr, keep.id)?;
        }
        // The other party's unread messages move over with its chat.
        for key in self.tx.keys_with_prefix(&receipts_prefix(gone.id))? {
            if let Some(u) = self.tx.get(&key)? {
                let tail = &key[receipts_prefix(gone.id).len()..];
                let moved = [receipts_prefix(keep.id).as_slice(), tail].concat();
                self.tx.put(&moved, u);
            }
            self.tx.delete(&key);
        }
        if let Some(order) = gone_order {
            self.tx.delete(&order);
        }
        self.tx.delete(&party_key(gone.id));
        self.save(&keep)?;
        Ok(keep)
    }

    /// Gives a party a chat, unless it was deleted since: `at` is when the news happened,
    /// and `activity` says whether it is new activity (a message, a change on the phone),
    /// which brings a deleted chat back, or only a sync of what exists, which does not.
    /// True when the party has a chat afterwards.
    pub(crate) fn open_chat(party: &mut Party, at: u64, activity: bool) -> bool {
        if party.chat.is_some() {
            return true;
        }
        let allowed = match party.deleted_at {
            None => true,
            Some(deleted) => activity && at >= deleted,
        };
        if allowed {
            party.chat = Some(Chat {
                updated_at: at,
                ..Chat::default()
            });
        }
        allowed
    }

    /// Removes a party's chat (its names stay), with its unread messages.
    pub(crate) fn delete_chat(&mut self, party: &mut Party, at: u64) -> Result<(), ApiError> {
        party.chat = None;
        party.deleted_at = Some(party.deleted_at.unwrap_or(0).max(at));
        self.clear_unread(party.id)?;
        self.save(party)
    }

    /// Remembers an incoming message for read receipts. False when it is already
    /// remembered (a redelivered message), so it is not counted twice.
    pub(crate) fn add_unread(
        &mut self,
        party: &mut Party,
        timestamp: u64,
        unread: &Unread,
    ) -> Result<bool, ApiError> {
        let key = receipt_key(party.id, timestamp, &unread.id);
        if party.chat.is_none() || self.tx.get(&key)?.is_some() {
            return Ok(false);
        }
        self.set(&key, unread)?;
        let Some(chat) = party.chat.as_mut() else {
            return Ok(false);
        };
        chat.receipts += 1;
        if chat.receipts > RECEIPTS_KEPT + RECEIPTS_SLACK {
            let keys = self.tx.keys_with_prefix(&receipts_prefix(party.id))?;
            let excess = keys.len().saturating_sub(RECEIPTS_KEPT as usize);
            for k in &keys[..excess] {
                self.tx.delete(k);
            }
            chat.receipts = (keys.len() - excess) as u32;
        }
        Ok(true)
    }

    /// Forgets a chat's unread messages (they have been read).
    pub(crate) fn clear_unread(&mut self, id: u64) -> Result<(), ApiError> {
        for key in self.tx.keys_with_prefix(&receipts_prefix(id))? {
            self.tx.delete(&key);
        }
        Ok(())
    }
}

/// The latest [`RECEIPTS_KEPT`] unread messages of a chat, oldest first.
pub(crate) fn latest_unread(id: u64) -> Result<Vec<Unread>, ApiError> {
    let mut rows = kv::scan(&receipts_prefix(id), None, RECEIPTS_KEPT, true)?;
    rows.reverse();
    rows.into_iter()
        .map(|e| {
            serde_json::from_slice(&e.value).map_err(|e| {
                ApiError::internal(format!("stored unread message is unreadable: {e}"))
            })
        })
        .collect()
}

/// One chat from two that were the same person's (by LID and by phone): each setting
/// from the later change, unread messages added up, the newer last message.
fn merge_chats(a: Chat, b: Chat) -> Chat {
    let later = |x: u64, y: u64| x >= y;
    let (sa, sb) = (&a.stamps, &b.stamps);
    let mut out = a.clone();
    if !later(sa.archived, sb.archived) {
        out.archived = b.archived;
        out.stamps.archived = sb.archived;
    }
    if !later(sa.pinned, sb.pinned) {
        out.pinned = b.pinned;
        out.stamps.pinned = sb.pinned;
    }
    if !later(sa.muted, sb.muted) {
        out.muted_until = b.muted_until;
        out.stamps.muted = sb.muted;
    }
    out.stamps.read = sa.read.max(sb.read);
    out.unread_count = a.unread_count.saturating_add(b.unread_count);
    out.receipts = a.receipts + b.receipts;
    if b.last_message_at > a.last_message_at {
        out.last_message_at = b.last_message_at;
        out.last_message = b.last_message;
    }
    out.updated_at = a.updated_at.max(b.updated_at);
    out
}
