//! Building the store from the session's events (README, "Events"): chats and their
//! settings from `chats.upsert`, `chats.update`, `chats.delete` and `history.sync`; names
//! from `contacts.upsert` and `groups.upsert`; one identity per person from `lid.mapping`;
//! last message and unread counts from `message` and the session's own sends
//! (`message.status`). Events carry WhatsApp data, so one malformed entry is skipped
//! rather than failing the whole event.

use crate::model::{Chat, LastMessage, Party, preview};
use crate::store::{ChatStore, RECEIPTS_KEPT, Unread};
use gateway_sdk::{ApiError, Event, Jid};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Reads an address leniently (device suffix dropped).
fn address(raw: Option<&str>) -> Option<Jid> {
    raw.and_then(|s| Jid::parse(s).ok())
        .map(|j| j.to_non_device())
}

/// A name worth keeping: trimmed, not empty.
fn name(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Applies one event's changes to the session's store, atomically; `at` is when the
/// event was published.
fn apply(
    event: &Event,
    change: impl FnOnce(&mut ChatStore, u64) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut store = ChatStore::new();
    change(&mut store, event.timestamp())?;
    store.commit()
}

/// Saves a party that `change` may have changed; a change the chat list shows (a name,
/// an address) moves the chat's `updatedAt`.
fn update(
    store: &mut ChatStore,
    mut party: Party,
    at: u64,
    change: impl FnOnce(&mut Party),
) -> Result<Party, ApiError> {
    let before = party.clone();
    change(&mut party);
    if party != before {
        if let Some(chat) = party.chat.as_mut() {
            chat.updated_at = chat.updated_at.max(at);
        }
        store.save(&party)?;
    }
    Ok(party)
}

/// The person a set of addresses names: LIDs and phone JIDs in any of the fields.
fn person(
    store: &mut ChatStore,
    addresses: &[Option<Jid>],
    phone_number: Option<&str>,
) -> Result<Option<Party>, ApiError> {
    let lid = addresses.iter().flatten().find(|j| j.is_lid());
    let phone = addresses
        .iter()
        .flatten()
        .find(|j| j.is_user())
        .cloned()
        .or_else(|| phone_number.and_then(|p| Jid::from_phone(p).ok()));
    store.person(lid, phone.as_ref())
}

/// A chat's party from its address (and a DM's LID when given apart).
fn chat_party(
    store: &mut ChatStore,
    jid: &str,
    lid: Option<&str>,
) -> Result<Option<Party>, ApiError> {
    match address(Some(jid)) {
        Some(j) if j.is_group() => store.group(&j).map(Some),
        Some(j) if j.is_person() => person(store, &[Some(j), address(lid)], None),
        _ => Ok(None),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Person {
    lid: Option<String>,
    jid: Option<String>,
    phone_number: Option<String>,
    name: Option<String>,
    push_name: Option<String>,
}

impl Person {
    fn party(&self, store: &mut ChatStore) -> Result<Option<Party>, ApiError> {
        person(
            store,
            &[address(self.lid.as_deref()), address(self.jid.as_deref())],
            self.phone_number.as_deref(),
        )
    }
}

#[derive(Deserialize)]
struct ContactsUpsert {
    #[serde(default)]
    contacts: Vec<Person>,
}

/// Contact sync and push names: the names DMs are shown with.
pub(crate) fn contacts_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: ContactsUpsert = event.payload()?;
    apply(event, |store, at| {
        for c in &upsert.contacts {
            if let Some(p) = c.party(store)? {
                update(store, p, at, |p| {
                    if let Some(n) = name(&c.name) {
                        p.names.contact = Some(n);
                    }
                    if let Some(n) = name(&c.push_name) {
                        p.names.push = Some(n);
                    }
                })?;
            }
        }
        Ok(())
    })
}

#[derive(Deserialize)]
struct LidMapping {
    #[serde(default)]
    mappings: Vec<Person>,
}

/// LID ↔ phone mappings: they may show that two chats are one person's.
pub(crate) fn lid_mapping(event: &Event) -> Result<(), ApiError> {
    let mapping: LidMapping = event.payload()?;
    apply(event, |store, _| {
        for m in &mapping.mappings {
            let (lid, jid) = (address(m.lid.as_deref()), address(m.jid.as_deref()));
            // A mapping links two addresses; one alone says nothing new.
            if lid.as_ref().is_some_and(Jid::is_lid) && jid.as_ref().is_some_and(Jid::is_user) {
                store.person(lid.as_ref(), jid.as_ref())?;
            }
        }
        Ok(())
    })
}

#[derive(Deserialize)]
struct ChatRef {
    jid: String,
    lid: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct ChatsUpsert {
    #[serde(default)]
    chats: Vec<ChatRef>,
}

/// Chats the account has. A sync of what exists does not bring back a chat deleted
/// here; only new activity does.
pub(crate) fn chats_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: ChatsUpsert = event.payload()?;
    apply(event, |store, at| {
        for c in &upsert.chats {
            if let Some(p) = chat_party(store, &c.jid, c.lid.as_deref())? {
                update(store, p, at, |p| {
                    if let Some(n) = name(&c.name) {
                        p.names.chat = Some(n);
                    }
                    ChatStore::open_chat(p, at, false);
                })?;
            }
        }
        Ok(())
    })
}

#[derive(Deserialize)]
struct GroupInfo {
    jid: String,
    subject: Option<String>,
}

#[derive(Deserialize)]
struct GroupsUpsert {
    #[serde(default)]
    groups: Vec<GroupInfo>,
}

/// Groups the account is in: each has a chat, named by its subject.
pub(crate) fn groups_upsert(event: &Event) -> Result<(), ApiError> {
    let upsert: GroupsUpsert = event.payload()?;
    apply(event, |store, at| {
        for g in &upsert.groups {
            let Some(gid) = address(Some(&g.jid)).filter(Jid::is_group) else {
                continue;
            };
            let p = store.group(&gid)?;
            update(store, p, at, |p| {
                if let Some(s) = name(&g.subject) {
                    p.names.subject = Some(s);
                }
                ChatStore::open_chat(p, at, false);
            })?;
        }
        Ok(())
    })
}

/// Where a change to a chat comes from.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Source {
    Phone,
    Api,
    /// The host marked an incoming message read (the session's `autoRead`).
    #[serde(rename = "auto_read")]
    AutoRead,
}

/// A chat's settings as WhatsApp's app state (or history sync) reports them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Settings {
    archived: Option<bool>,
    pinned: Option<bool>,
    /// Epoch ms; 0 = not muted, -1 = forever.
    muted_until: Option<i64>,
    unread_count: Option<i64>,
}

impl Settings {
    /// The mute as stored: `Some(None)` unmuted, `Some(Some(t))` muted; `None` when the
    /// event says nothing (or nonsense) about it.
    fn mute(&self) -> Option<Option<i64>> {
        match self.muted_until? {
            0 => Some(None),
            m if m == -1 || m > 0 => Some(Some(m)),
            _ => None,
        }
    }

    fn unread(&self) -> Option<u32> {
        self.unread_count
            .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
    }

    /// A change made on the phone at `at`: each field the event carries is taken unless
    /// a later change already set it. True when the unread messages are all read.
    fn apply_change(&self, chat: &mut Chat, at: u64) -> bool {
        let s = &mut chat.stamps;
        if let Some(v) = self.archived.filter(|_| at >= s.archived) {
            chat.archived = v;
            s.archived = at;
        }
        if let Some(v) = self.pinned.filter(|_| at >= s.pinned) {
            chat.pinned = v;
            s.pinned = at;
        }
        if let Some(v) = self.mute().filter(|_| at >= s.muted) {
            chat.muted_until = v;
            s.muted = at;
        }
        let mut read = false;
        if let Some(n) = self.unread().filter(|_| at >= s.read) {
            chat.unread_count = n;
            s.read = at;
            read = n == 0;
        }
        chat.updated_at = chat.updated_at.max(at);
        read
    }

    /// What history sync reports: it fills settings no change has set yet (a snapshot
    /// of the past never overrides a change).
    fn apply_history(&self, chat: &mut Chat) {
        let s = &chat.stamps;
        if let Some(v) = self.archived.filter(|_| s.archived == 0) {
            chat.archived = v;
        }
        if let Some(v) = self.pinned.filter(|_| s.pinned == 0) {
            chat.pinned = v;
        }
        if let Some(v) = self.mute().filter(|_| s.muted == 0) {
            chat.muted_until = v;
        }
        if let Some(n) = self.unread().filter(|_| s.read == 0) {
            chat.unread_count = chat.unread_count.max(n);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatsUpdate {
    jid: String,
    source: Option<Source>,
    #[serde(flatten)]
    settings: Settings,
}

/// A change made on the phone (app state). The plugin's own changes (`source: api`)
/// come back here too; they were stored when made, so they are skipped.
pub(crate) fn chats_update(event: &Event) -> Result<(), ApiError> {
    let change: ChatsUpdate = event.payload()?;
    if change.source == Some(Source::Api) {
        return Ok(());
    }
    apply(event, |store, at| {
        let Some(mut party) = chat_party(store, &change.jid, None)? else {
            return Ok(());
        };
        if !ChatStore::open_chat(&mut party, at, true) {
            return Ok(());
        }
        let Some(chat) = party.chat.as_mut() else {
            return Ok(());
        };
        if change.settings.apply_change(chat, at) {
            chat.receipts = 0;
            store.clear_unread(party.id)?;
        }
        store.save(&party)
    })
}

#[derive(Deserialize)]
struct ChatsDelete {
    jid: String,
    source: Option<Source>,
}

/// A chat deleted on the phone, unless it changed here later (the later change wins).
pub(crate) fn chats_delete(event: &Event) -> Result<(), ApiError> {
    let delete: ChatsDelete = event.payload()?;
    if delete.source == Some(Source::Api) {
        return Ok(());
    }
    let Some(jid) = address(Some(&delete.jid)) else {
        return Ok(());
    };
    apply(event, |store, at| {
        let Some(mut party) = store.find(&jid)? else {
            return Ok(());
        };
        if party.chat.as_ref().is_some_and(|c| c.updated_at > at) {
            return Ok(());
        }
        store.delete_chat(&mut party, at)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    id: String,
    chat: String,
    sender: Option<String>,
    sender_lid: Option<String>,
    sender_jid: Option<String>,
    #[serde(default)]
    from_me: bool,
    push_name: Option<String>,
    timestamp: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    #[serde(default)]
    media: Value,
    #[serde(default)]
    location: Value,
    #[serde(default)]
    contact: Value,
    #[serde(default)]
    poll: Value,
}

impl Message {
    /// What a chat list shows of it: the text or caption, else a location's, contact's,
    /// poll's or document's name.
    fn last_message(&self) -> LastMessage {
        let titled = || {
            [
                &self.location["name"],
                &self.location["address"],
                &self.contact["name"],
                &self.poll["name"],
                &self.media["fileName"],
            ]
            .into_iter()
            .find_map(Value::as_str)
        };
        let text = self
            .text
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .or_else(titled)
            .unwrap_or_default();
        LastMessage {
            id: self.id.clone(),
            from_me: self.from_me,
            kind: self.kind.clone().unwrap_or_else(|| "unknown".into()),
            preview: preview(text),
        }
    }
}

/// How a message reached the plugin.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// A `message` event: new activity, counted as unread when incoming.
    Live,
    /// Part of a history sync: the past, which history's own unread counts describe.
    History,
}

/// Records one message in its chat: addresses and push names of a DM's peer (or a group
/// sender's), the last message, and the unread count: +1 for an incoming message
/// published after the chat was last read, reset when the session writes into the chat.
/// Answers the chat's party, when the message belongs to one.
fn record_message(
    store: &mut ChatStore,
    m: &Message,
    at: u64,
    arrival: Arrival,
) -> Result<Option<Party>, ApiError> {
    let Some(chat_jid) = address(Some(&m.chat)) else {
        return Ok(None);
    };
    let sender = [
        address(m.sender.as_deref()),
        address(m.sender_lid.as_deref()),
        address(m.sender_jid.as_deref()),
    ];
    let push_name = name(&m.push_name).filter(|_| !m.from_me);
    let party = if chat_jid.is_group() {
        if let (false, Some(p)) = (m.from_me, person(store, &sender, None)?) {
            update(store, p, at, |p| {
                if let Some(n) = &push_name {
                    p.names.push = Some(n.clone());
                }
            })?;
        }
        store.group(&chat_jid)?
    } else if chat_jid.is_person() {
        // In a DM the sender of an incoming message is the chat's person.
        let mut addresses = vec![Some(chat_jid.clone())];
        if !m.from_me {
            addresses.extend(sender);
        }
        let Some(p) = person(store, &addresses, None)? else {
            return Ok(None);
        };
        update(store, p, at, |p| {
            if let Some(n) = &push_name {
                p.names.push = Some(n.clone());
            }
        })?
    } else {
        // Status updates, broadcasts and channels are not chats.
        return Ok(None);
    };
    let mut party = party;
    let sent_at = m.timestamp.unwrap_or(at);
    let activity_at = match arrival {
        Arrival::Live => at,
        Arrival::History => sent_at,
    };
    if !ChatStore::open_chat(&mut party, activity_at, true) {
        store.save(&party)?;
        return Ok(None);
    }
    let Some(chat) = party.chat.as_mut() else {
        return Ok(None);
    };
    let same = chat.last_message.as_ref().is_some_and(|l| l.id == m.id);
    if same || chat.last_message_at.is_none_or(|t| sent_at >= t) {
        chat.last_message_at = Some(chat.last_message_at.unwrap_or(0).max(sent_at));
        chat.last_message = Some(m.last_message());
    }
    chat.updated_at = chat.updated_at.max(at);
    if arrival == Arrival::Live {
        if m.from_me {
            mark_read(store, &mut party, at)?;
        } else if at >= chat.stamps.read {
            let unread = Unread {
                chat: chat_jid.to_string(),
                id: m.id.clone(),
                sender: address(m.sender.as_deref()).map(|j| j.to_string()),
            };
            if store.add_unread(&mut party, sent_at, &unread)?
                && let Some(chat) = party.chat.as_mut()
            {
                chat.unread_count = chat.unread_count.saturating_add(1);
            }
        }
    }
    store.save(&party)?;
    Ok(Some(party))
}

/// The session wrote into the chat at `at`: everything before is read.
fn mark_read(store: &mut ChatStore, party: &mut Party, at: u64) -> Result<(), ApiError> {
    if let Some(chat) = party.chat.as_mut() {
        chat.unread_count = 0;
        chat.receipts = 0;
        chat.stamps.read = chat.stamps.read.max(at);
        chat.updated_at = chat.updated_at.max(at);
    }
    store.clear_unread(party.id)
}

/// A message in a chat, incoming or the session's own (sent from the phone). Reactions,
/// edits and revokes are events of their own and count for nothing here.
pub(crate) fn message(event: &Event) -> Result<(), ApiError> {
    let m: Message = event.payload()?;
    apply(event, |store, at| {
        record_message(store, &m, at, Arrival::Live).map(|_| ())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStatus {
    id: String,
    chat: String,
    status: String,
    timestamp: Option<u64>,
}

/// The session's own send reached WhatsApp (`sent`): the chat is read up to now and its
/// last message is this one. The content is the messages plugin's; the chat shows the
/// message as `unknown` with an empty preview until its `message` event (if the engine
/// echoes it) fills them in.
pub(crate) fn message_status(event: &Event) -> Result<(), ApiError> {
    let s: MessageStatus = event.payload()?;
    if s.status != "sent" {
        return Ok(());
    }
    apply(event, |store, at| {
        let Some(mut party) = chat_party(store, &s.chat, None)? else {
            return Ok(());
        };
        if !ChatStore::open_chat(&mut party, at, true) {
            return Ok(());
        }
        let sent_at = s.timestamp.unwrap_or(at);
        if let Some(chat) = party.chat.as_mut() {
            let known = chat.last_message.as_ref().is_some_and(|l| l.id == s.id);
            if !known && chat.last_message_at.is_none_or(|t| sent_at >= t) {
                chat.last_message_at = Some(sent_at);
                chat.last_message = Some(LastMessage {
                    id: s.id.clone(),
                    from_me: true,
                    kind: "unknown".into(),
                    preview: String::new(),
                });
            }
        }
        mark_read(store, &mut party, at)?;
        store.save(&party)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryChat {
    jid: String,
    name: Option<String>,
    last_message_at: Option<u64>,
    #[serde(flatten)]
    settings: Settings,
}

#[derive(Deserialize)]
struct HistorySync {
    #[serde(default)]
    chats: Vec<HistoryChat>,
    #[serde(default)]
    messages: Vec<Value>,
}

/// History sync: chats with their state as the phone had it, and past messages for
/// each chat's last message. Its unread counts are taken while no change has set them,
/// and the latest incoming messages of a chat with unread ones are kept for receipts.
pub(crate) fn history_sync(event: &Event) -> Result<(), ApiError> {
    let sync: HistorySync = event.payload()?;
    apply(event, |store, at| {
        for c in &sync.chats {
            let Some(p) = chat_party(store, &c.jid, None)? else {
                continue;
            };
            update(store, p, at, |p| {
                if let Some(n) = name(&c.name) {
                    p.names.chat = Some(n);
                }
                if !ChatStore::open_chat(p, c.last_message_at.unwrap_or(0), true) {
                    return;
                }
                if let Some(chat) = p.chat.as_mut() {
                    c.settings.apply_history(chat);
                    if c.last_message_at > chat.last_message_at {
                        chat.last_message_at = c.last_message_at;
                    }
                }
            })?;
        }
        // Incoming messages per chat, for the receipts of its unread ones.
        let mut incoming: BTreeMap<u64, Vec<(u64, Unread)>> = BTreeMap::new();
        for raw in &sync.messages {
            let Ok(m) = serde_json::from_value::<Message>(raw.clone()) else {
                continue;
            };
            let Some(party) = record_message(store, &m, at, Arrival::History)? else {
                continue;
            };
            if !m.from_me
                && let Some(chat) = address(Some(&m.chat))
            {
                incoming.entry(party.id).or_default().push((
                    m.timestamp.unwrap_or(0),
                    Unread {
                        chat: chat.to_string(),
                        id: m.id.clone(),
                        sender: address(m.sender.as_deref()).map(|j| j.to_string()),
                    },
                ));
            }
        }
        for (id, mut messages) in incoming {
            let Some(mut party) = store.party(id)? else {
                continue;
            };
            let Some(chat) = party.chat.as_ref() else {
                continue;
            };
            let wanted = chat
                .unread_count
                .min(RECEIPTS_KEPT)
                .saturating_sub(chat.receipts) as usize;
            messages.sort_by_key(|m| std::cmp::Reverse(m.0));
            for (ts, unread) in messages.iter().take(wanted) {
                store.add_unread(&mut party, *ts, unread)?;
            }
            store.save(&party)?;
        }
        Ok(())
    })
}
