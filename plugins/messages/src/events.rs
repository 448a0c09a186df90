//! Building the store from the session's events (README "Events"): messages and history
//! sync; edits, revokes, reactions and poll votes; receipts and outbox statuses; chats
//! deleted; and the phone ↔ LID links that let a direct chat be addressed either way.

use crate::model::{
    Account, ContactInfo, LocationInfo, ME, MediaInfo, MessageType, PollDefinition, StoredMessage,
};
use crate::store::{self, MessageStore, valid_id};
use gateway_sdk::{ApiError, Event, Jid, jid};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A message as the engine reports it (`message`, and each of `history.sync`'s).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessagePayload {
    id: String,
    chat: String,
    sender: Option<String>,
    sender_lid: Option<String>,
    sender_jid: Option<String>,
    #[serde(default)]
    from_me: bool,
    #[serde(default)]
    is_group: bool,
    push_name: Option<String>,
    timestamp: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    media: Option<MediaInfo>,
    quoted_id: Option<String>,
    #[serde(default)]
    mentions: Vec<String>,
    location: Option<LocationInfo>,
    contact: Option<ContactInfo>,
    poll: Option<PollPayload>,
    #[serde(default)]
    forwarded: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollPayload {
    name: String,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    selectable_count: u32,
}

/// The target of an edit, revoke or reaction, and who did it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    id: String,
    chat: String,
    sender: Option<String>,
    #[serde(default)]
    from_me: bool,
    timestamp: Option<u64>,
    text: Option<String>,
    emoji: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollVote {
    poll_id: String,
    chat: String,
    voter: String,
    #[serde(default)]
    options: Vec<String>,
    timestamp: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusChange {
    id: String,
    chat: String,
    status: String,
    error_code: Option<String>,
    error: Option<String>,
    timestamp: Option<u64>,
}

#[derive(Deserialize)]
struct HistoryChat {
    jid: String,
}

#[derive(Deserialize)]
struct HistorySync {
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    chats: Vec<HistoryChat>,
}

/// A person or chat with up to two addresses (`chats.upsert`, `contacts.upsert`,
/// `lid.mapping`).
#[derive(Deserialize)]
struct Addresses {
    jid: Option<String>,
    lid: Option<String>,
}

#[derive(Deserialize)]
struct ChatsUpsert {
    #[serde(default)]
    chats: Vec<Addresses>,
}

#[derive(Deserialize)]
struct ContactsUpsert {
    #[serde(default)]
    contacts: Vec<Addresses>,
}

#[derive(Deserialize)]
struct LidMapping {
    #[serde(default)]
    mappings: Vec<Addresses>,
}

#[derive(Deserialize)]
struct ChatDeleted {
    jid: String,
}

/// A chat JID in the form it is stored under (no device part); `None` when it is not a
/// person or group. Events come from WhatsApp: one bad entry is skipped, not fatal.
pub(crate) fn chat_jid(raw: &str) -> Option<String> {
    let j = Jid::parse(raw).ok()?;
    (j.is_person() || j.is_group()).then(|| j.to_non_device().to_string())
}

fn person(raw: Option<&str>) -> Option<Jid> {
    raw.and_then(|s| jid::parse_person(s).ok())
}

/// The person who reacted or voted, as the store keys them.
fn who(raw: Option<&str>, from_me: bool, me: &Account) -> Option<String> {
    if from_me {
        return Some(ME.to_owned());
    }
    let j = person(raw)?.to_string();
    Some(if me.is(&j) { ME.to_owned() } else { j })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Records one reported message: new, or the engine's view of one already stored (this
/// account's own send, or a history copy), whose edits, reactions and receipts stay.
pub(crate) fn record(store: &mut MessageStore, m: MessagePayload, at: u64) -> Result<(), ApiError> {
    let Some(chat) = chat_jid(&m.chat) else {
        return Ok(());
    };
    if !valid_id(&m.id) {
        return Ok(());
    }
    let sender = person(m.sender.as_deref());
    let lid = person(m.sender_lid.as_deref()).or_else(|| sender.clone().filter(Jid::is_lid));
    let phone = person(m.sender_jid.as_deref()).or_else(|| sender.clone().filter(Jid::is_user));
    if m.from_me {
        store.learn_account(phone.as_ref(), lid.as_ref())?;
    } else if !m.is_group {
        if let (Some(p), Some(l)) = (&phone, &lid) {
            store.link(p, l)?;
        }
        // A direct chat is its peer: the chat's address and the sender's are one person.
        if let (Some(c), Some(s)) = (Jid::parse(&chat).ok(), &sender) {
            store.link(&c, s)?;
        }
    }
    let at = m.timestamp.unwrap_or(at);
    let kind = MessageType::from_engine(m.kind.as_deref());
    let poll = m.poll.map(|p| PollDefinition {
        name: p.name,
        options: p.options,
        selectable_count: p.selectable_count,
    });
    let mentions: Vec<String> = m
        .mentions
        .iter()
        .filter_map(|j| person(Some(j)).map(|j| j.to_string()))
        .collect();
    let body = m.text.unwrap_or_default();
    let quoted_id = m.quoted_id.filter(|q| valid_id(q));
    let push_name = non_empty(m.push_name);
    let mut msg = match store.find(&chat, &m.id)? {
        Some(mut known) => {
            if !known.edited && !known.deleted {
                known.kind = kind;
                known.body = body;
                known.media = m.media.or(known.media);
                known.location = m.location;
                known.contact = m.contact;
                known.poll = poll.or(known.poll);
                known.mentions = mentions;
            }
            known.quoted_id = quoted_id.or(known.quoted_id);
            known.forwarded |= m.forwarded;
            if !m.from_me {
                known.sender = known.sender.or(sender.map(|s| s.to_string()));
                known.sender_jid = known.sender_jid.or(phone.map(|p| p.to_string()));
                known.sender_lid = known.sender_lid.or(lid.map(|l| l.to_string()));
            }
            known.push_name = push_name.or(known.push_name);
            // The engine reports what is on WhatsApp: an own message there is sent.
            known.acknowledge("sent", None, at);
            known.touch(at);
            known
        }
        None => StoredMessage {
            id: m.id,
            chat,
            sender: (!m.from_me)
                .then(|| sender.map(|s| s.to_string()))
                .flatten(),
            sender_jid: (!m.from_me).then(|| phone.map(|p| p.to_string())).flatten(),
            sender_lid: (!m.from_me).then(|| lid.map(|l| l.to_string())).flatten(),
            from_me: m.from_me,
            kind,
            body,
            media: m.media,
            quoted_id,
            mentions,
            location: m.location,
            contact: m.contact,
            poll,
            reactions: BTreeMap::new(),
            votes: BTreeMap::new(),
            forwarded: m.forwarded,
            edited: false,
            edited_at: None,
            deleted: false,
            ack_level: 1,
            failed: false,
            error: None,
            error_code: None,
            outbox_id: None,
            push_name,
            created_at: at,
            updated_at: at,
            seq: 0,
        },
    };
    store.save(&mut msg)
}

/// Applies `change` to a stored message, if it is stored.
fn update(
    store: &mut MessageStore,
    chat: &str,
    id: &str,
    change: impl FnOnce(&mut StoredMessage, &Account),
) -> Result<(), ApiError> {
    let Some(chat) = chat_jid(chat) else {
        return Ok(());
    };
    if !valid_id(id) {
        return Ok(());
    }
    let me = store.account()?;
    if let Some(mut m) = store.find(&chat, id)? {
        change(&mut m, &me);
        store.save(&mut m)?;
    }
    Ok(())
}

/// Runs one event's changes as one unit of work.
fn apply(change: impl FnOnce(&mut MessageStore) -> Result<(), ApiError>) -> Result<(), ApiError> {
    let mut store = MessageStore::new();
    change(&mut store)?;
    store.commit()
}

pub(crate) fn message(event: &Event) -> Result<(), ApiError> {
    let m: MessagePayload = event.payload()?;
    apply(|store| record(store, m, event.timestamp()))
}

/// Messages per atomic write during a history sync, which may carry thousands.
const HISTORY_CHUNK: usize = 200;

/// Old messages and chats the phone shares after pairing (never pulled; reference).
pub(crate) fn history_sync(event: &Event) -> Result<(), ApiError> {
    let h: HistorySync = event.payload()?;
    apply(|store| {
        for c in &h.chats {
            if let Some(chat) = chat_jid(&c.jid) {
                store.add_chat(&chat)?;
            }
        }
        Ok(())
    })?;
    for chunk in h.messages.chunks(HISTORY_CHUNK) {
        apply(|store| {
            for raw in chunk {
                // One unreadable entry does not lose the rest of the sync.
                if let Ok(m) = serde_json::from_value::<MessagePayload>(raw.clone()) {
                    record(store, m, event.timestamp())?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

pub(crate) fn edit(event: &Event) -> Result<(), ApiError> {
    let c: Change = event.payload()?;
    let at = c.timestamp.unwrap_or(event.timestamp());
    let text = c.text.unwrap_or_default();
    apply(|store| update(store, &c.chat, &c.id, |m, _| m.edit(&text, at)))
}

pub(crate) fn revoke(event: &Event) -> Result<(), ApiError> {
    let c: Change = event.payload()?;
    let at = c.timestamp.unwrap_or(event.timestamp());
    apply(|store| update(store, &c.chat, &c.id, |m, _| m.revoke(at)))
}

/// `sender` is who reacted; `fromMe` says it is this account.
pub(crate) fn reaction(event: &Event) -> Result<(), ApiError> {
    let c: Change = event.payload()?;
    let at = c.timestamp.unwrap_or(event.timestamp());
    let emoji = c.emoji.unwrap_or_default();
    apply(|store| {
        update(store, &c.chat, &c.id, |m, me| {
            if let Some(who) = who(c.sender.as_deref(), c.from_me, me) {
                m.react(who, &emoji, at);
            }
        })
    })
}

/// A voter's current choice replaces their previous one.
pub(crate) fn poll_vote(event: &Event) -> Result<(), ApiError> {
    let v: PollVote = event.payload()?;
    let at = v.timestamp.unwrap_or(event.timestamp());
    apply(|store| {
        update(store, &v.chat, &v.poll_id, |m, me| {
            if m.poll.is_none() {
                return;
            }
            if let Some(who) = who(Some(&v.voter), false, me) {
                m.vote(who, &v.options, at);
            }
        })
    })
}

/// Receipts and outbox statuses. An own action (edit, revoke, reaction, vote) waiting
/// under this WhatsApp id is applied once sent, dropped once failed.
pub(crate) fn status(event: &Event) -> Result<(), ApiError> {
    let s: StatusChange = event.payload()?;
    let at = s.timestamp.unwrap_or(event.timestamp());
    apply(|store| {
        if s.status != "pending"
            && let Some(waiting) = store.take_change(&s.id)?
            && s.status != "failed"
        {
            update(store, &waiting.chat, &waiting.id, |m, _| {
                waiting.change.apply(m, at)
            })?;
        }
        let error = s.error_code.clone().zip(s.error.clone());
        update(store, &s.chat, &s.id, |m, _| {
            m.acknowledge(&s.status, error, at)
        })
    })
}

/// The chat is gone from the session's view: so are its messages.
pub(crate) fn chat_deleted(event: &Event) -> Result<(), ApiError> {
    let d: ChatDeleted = event.payload()?;
    match chat_jid(&d.jid) {
        Some(chat) => store::delete_chat(&chat),
        None => Ok(()),
    }
}

fn link_all(list: &[Addresses], add_chats: bool) -> Result<(), ApiError> {
    apply(|store| {
        for a in list {
            let (jid, lid) = (person(a.jid.as_deref()), person(a.lid.as_deref()));
            if let (Some(j), Some(l)) = (&jid, &lid) {
                store.link(j, l)?;
            }
            if add_chats && let Some(chat) = a.jid.as_deref().and_then(chat_jid) {
                store.add_chat(&chat)?;
            }
        }
        Ok(())
    })
}

/// Chats the account has.
pub(crate) fn chats_upsert(event: &Event) -> Result<(), ApiError> {
    let u: ChatsUpsert = event.payload()?;
    link_all(&u.chats, true)
}

pub(crate) fn contacts_upsert(event: &Event) -> Result<(), ApiError> {
    let u: ContactsUpsert = event.payload()?;
    link_all(&u.contacts, false)
}

pub(crate) fn lid_mapping(event: &Event) -> Result<(), ApiError> {
    let u: LidMapping = event.payload()?;
    link_all(&u.mappings, false)
}
