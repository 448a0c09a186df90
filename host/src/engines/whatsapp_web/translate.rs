//! whatsapp-rust's events in the gateway's vocabulary (README "Events"): lifecycle steps
//! for the session manager; receipts for this account's messages for the outbox; and the
//! domain events the sandbox also emits — `contacts.upsert`, `chats.upsert`,
//! `groups.upsert`, `group.participants`, `lid.mapping`, `message`, `message.reaction`,
//! `message.edit`, `message.revoke`, `poll.vote`, `presence.update`, `chats.update`,
//! `chats.delete` (the phone's app-state chat actions) and `history.sync` — so plugins see
//! one shape whichever engine runs. Messages seen are remembered in the session's
//! [`Archive`] (quotes, votes, media descriptors).

use super::account_of;
use super::archive::{Archive, RECENT_KEEP_MS, Remembered};
use super::content::{self, Inbound};
use crate::clock::now_ms;
use crate::engines::{Account, EngineEvent, PairingCode, Receipt, ReceiptKind};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use whatsapp_rust::Client;
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::types::events::{Event, InboundMessage};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::{ChatPresence, ChatPresenceMedia, ReceiptType};
use whatsapp_rust::wacore::iq::groups::ParticipantType;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore::stanza::groups::{
    GroupNotificationAction, GroupParticipantInfo, GroupParticipantType,
};
use whatsapp_rust::wacore_binary::JidExt as _;
use whatsapp_rust::waproto::whatsapp as wa;

fn domain(session: &str, name: &str, payload: Value) -> EngineEvent {
    EngineEvent::Domain {
        session: session.to_owned(),
        name: name.to_owned(),
        payload,
    }
}

pub(super) fn jid_string(j: &whatsapp_rust::Jid) -> String {
    j.to_non_ad().to_string()
}

/// `{lid, jid}` of a person from a primary JID and an alternative one.
pub(super) fn person(
    primary: &whatsapp_rust::Jid,
    alt: Option<&whatsapp_rust::Jid>,
) -> (Option<String>, Option<String>) {
    let mut lid = None;
    let mut pn = None;
    for j in std::iter::once(primary).chain(alt) {
        if j.is_lid() {
            lid.get_or_insert_with(|| jid_string(j));
        } else if j.is_pn() {
            pn.get_or_insert_with(|| jid_string(j));
        }
    }
    (lid, pn)
}

fn role(t: &Option<GroupParticipantType>) -> &'static str {
    match t {
        Some(GroupParticipantType::Admin) => "admin",
        Some(GroupParticipantType::SuperAdmin) => "superadmin",
        _ => "member",
    }
}

fn participant(p: &GroupParticipantInfo, with_role: bool) -> Value {
    let (lid, jid) = person(&p.jid, p.lid.as_ref().or(p.phone_number.as_ref()));
    let jid = jid.or_else(|| p.phone_number.as_ref().map(jid_string));
    let mut v = json!({"lid": lid, "jid": jid, "tag": p.display_name});
    if with_role {
        v["role"] = json!(role(&p.r#type));
    }
    v
}

pub(super) async fn translate(
    session: &Arc<str>,
    archive: &Archive,
    event: &Event,
    client: &Arc<Client>,
) -> Vec<EngineEvent> {
    let s = session.to_string();
    match event {
        Event::PairingQrCode(qr) => vec![EngineEvent::Qr {
            session: s,
            code: PairingCode {
                code: qr.code.clone(),
                expires_at: now_ms() + qr.timeout.as_millis() as u64,
            },
        }],
        Event::PairSuccess(p) => {
            let pn = p.id.to_non_ad();
            vec![EngineEvent::Paired {
                session: s,
                account: Account {
                    phone_number: pn.user.to_string(),
                    jid: pn.to_string(),
                    lid: Some(jid_string(&p.lid)),
                    push_name: (!p.business_name.is_empty()).then(|| p.business_name.clone()),
                },
            }]
        }
        Event::PairError(e) => vec![EngineEvent::Connecting {
            session: s,
            reason: Some(format!("pairing failed: {}", e.error)),
        }],
        Event::PairingQrCodesExhausted(_) => vec![EngineEvent::Failed {
            session: s,
            reason: "no QR code was scanned in time; start the session again".into(),
        }],
        Event::QrScannedWithoutMultidevice(_) => vec![EngineEvent::Connecting {
            session: s,
            reason: Some("the phone scanned the code without multi-device support".into()),
        }],
        Event::Connected(_) => vec![EngineEvent::Connected {
            session: s,
            account: account_of(client),
        }],
        Event::Disconnected(d) => vec![EngineEvent::Disconnected {
            session: s,
            reason: format!("disconnected: {}; reconnecting", d.reason),
            retrying: true,
        }],
        Event::LoggedOut(l) => vec![EngineEvent::LoggedOut {
            session: s,
            reason: format!("logged out by WhatsApp ({:?})", l.reason),
        }],
        Event::StreamReplaced(_) => vec![EngineEvent::Failed {
            session: s,
            reason: "stream replaced: another client connected with this session's credentials"
                .into(),
        }],
        Event::TemporaryBan(b) => vec![EngineEvent::Failed {
            session: s,
            reason: format!("temporarily banned by WhatsApp for {:?}", b.expire),
        }],
        Event::ClientOutdated(_) => vec![EngineEvent::Failed {
            session: s,
            reason: "WhatsApp rejected this client version as outdated".into(),
        }],
        Event::ConnectFailure(f) => vec![EngineEvent::Disconnected {
            session: s,
            reason: format!(
                "connection refused by WhatsApp ({:?}{})",
                f.reason,
                f.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            retrying: true,
        }],
        Event::ContactUpdate(c) => {
            let a = &c.action;
            let name = a.full_name.clone().or_else(|| a.first_name.clone());
            let mut lid = a.lid_jid.clone();
            let mut pn = a.pn_jid.clone();
            if c.jid.is_lid() {
                lid.get_or_insert_with(|| jid_string(&c.jid));
            } else if c.jid.is_pn() {
                pn.get_or_insert_with(|| jid_string(&c.jid));
            }
            vec![domain(
                &s,
                "contacts.upsert",
                json!({"source": "contact_sync", "contacts": [{"lid": lid, "jid": pn, "name": name}]}),
            )]
        }
        Event::PushNameUpdate(p) => {
            let (lid, jid) = person(&p.jid, p.message.source.sender_alt.as_ref());
            vec![domain(
                &s,
                "contacts.upsert",
                json!({"source": "push_name", "contacts": [{"lid": lid, "jid": jid, "pushName": p.new_push_name}]}),
            )]
        }
        Event::ContactNumberChanged(c) => match &c.new_lid {
            Some(lid) => vec![domain(
                &s,
                "lid.mapping",
                json!({"mappings": [{"lid": jid_string(lid), "jid": jid_string(&c.new_jid)}]}),
            )],
            None => Vec::new(),
        },
        // With an inbound journal the durability hook already translated and committed
        // these messages (see `JournalHook`): they are not published a second time.
        Event::Messages(batch) if batch.hook_committed => Vec::new(),
        Event::Messages(batch) => messages(&s, archive, client, &batch.messages).await,
        Event::Receipt(r) => receipt(&s, r),
        Event::ChatPresence(p) => vec![domain(
            &s,
            "presence.update",
            json!({
                "chat": jid_string(&p.source.chat),
                "jid": jid_string(&p.source.sender),
                "state": match (p.state, p.media) {
                    (ChatPresence::Paused, _) => "paused",
                    (ChatPresence::Composing, ChatPresenceMedia::Audio) => "recording",
                    (ChatPresence::Composing, _) => "composing",
                },
            }),
        )],
        Event::ArchiveUpdate(a) => vec![chat_update(
            &s,
            &a.jid,
            json!({"archived": a.action.archived.unwrap_or(false)}),
        )],
        Event::PinUpdate(p) => vec![chat_update(
            &s,
            &p.jid,
            json!({"pinned": p.action.pinned.unwrap_or(false)}),
        )],
        Event::MuteUpdate(m) => {
            let until = if m.action.muted.unwrap_or(false) {
                m.action.mute_end_timestamp.filter(|t| *t > 0).unwrap_or(-1)
            } else {
                0
            };
            vec![chat_update(&s, &m.jid, json!({"mutedUntil": until}))]
        }
        Event::MarkChatAsReadUpdate(r) => {
            // WhatsApp's "mark as unread" has no count: it shows one unread.
            let change = if r.action.read.unwrap_or(true) {
                json!({"unreadCount": 0})
            } else {
                json!({"unreadCount": 1, "markedUnread": true})
            };
            vec![chat_update(&s, &r.jid, change)]
        }
        Event::DeleteChatUpdate(d) => vec![domain(
            &s,
            "chats.delete",
            json!({"jid": jid_string(&d.jid), "source": "phone"}),
        )],
        Event::GroupUpdate(g) => {
            let group = jid_string(&g.group_jid);
            let (action, participants, with_role) = match &g.action {
                GroupNotificationAction::Add { participants, .. } => ("add", participants, true),
                GroupNotificationAction::Remove { participants, .. } => {
                    ("remove", participants, false)
                }
                GroupNotificationAction::Promote { participants } => {
                    ("promote", participants, false)
                }
                GroupNotificationAction::Demote { participants } => ("demote", participants, false),
                GroupNotificationAction::Modify { participants } => ("modify", participants, false),
                GroupNotificationAction::Subject { subject, .. } => {
                    return vec![domain(
                        &s,
                        "groups.upsert",
                        json!({"groups": [{"jid": group, "subject": subject}]}),
                    )];
                }
                _ => return Vec::new(),
            };
            let list: Vec<Value> = participants
                .iter()
                .map(|p| participant(p, with_role))
                .collect();
            vec![domain(
                &s,
                "group.participants",
                json!({"group": group, "action": action, "participants": list}),
            )]
        }
        Event::HistorySync(h) => history(&s, archive, client, h).await,
        _ => Vec::new(),
    }
}

/// A chat setting changed on the phone (app state).
fn chat_update(session: &str, jid: &whatsapp_rust::Jid, change: Value) -> EngineEvent {
    let mut payload = json!({"jid": jid_string(jid), "source": "phone"});
    if let (Some(p), Value::Object(c)) = (payload.as_object_mut(), change) {
        p.extend(c);
    }
    domain(session, "chats.update", payload)
}

/// A receipt for messages this account sent (others' receipts only: those of its own
/// devices say what it read, not what its recipients got).
pub(super) fn receipt(
    session: &str,
    r: &whatsapp_rust::types::events::Receipt,
) -> Vec<EngineEvent> {
    if r.source.is_from_me {
        return Vec::new();
    }
    let kind = match r.r#type {
        ReceiptType::Delivered => ReceiptKind::Delivered,
        ReceiptType::Read => ReceiptKind::Read,
        ReceiptType::Played => ReceiptKind::Played,
        _ => return Vec::new(),
    };
    vec![EngineEvent::Receipt {
        session: session.to_owned(),
        receipt: Receipt {
            chat: jid_string(&r.source.chat),
            ids: r.message_ids.clone(),
            kind,
            recipient: Some(jid_string(&r.source.sender)),
            timestamp: r.timestamp.timestamp_millis().max(0) as u64,
        },
    }]
}

/// Whether `jid` is this account (by phone number or LID).
fn is_me(client: &Client, jid: &whatsapp_rust::Jid) -> bool {
    client.pn().is_some_and(|p| p.is_same_user_as(jid))
        || client.lid().is_some_and(|l| l.is_same_user_as(jid))
}

/// The fields every `message` payload starts with: who wrote what where, and when.
fn header(info: &MessageInfo) -> Map<String, Value> {
    let src = &info.source;
    let (lid, jid) = person(&src.sender, src.sender_alt.as_ref());
    let Value::Object(m) = json!({
        "id": info.id,
        "chat": jid_string(&src.chat),
        "sender": jid_string(&src.sender),
        "senderLid": lid,
        "senderJid": jid,
        "fromMe": src.is_from_me,
        "isGroup": src.is_group,
        "pushName": (!info.push_name.is_empty()).then(|| info.push_name.clone()),
        "timestamp": info.timestamp.timestamp_millis(),
    }) else {
        unreachable!("a JSON object literal")
    };
    m
}

/// A user JID as written in a message key, without its device.
fn key_jid(raw: Option<&str>) -> Option<String> {
    raw.filter(|r| !r.is_empty())
        .and_then(|r| r.parse::<whatsapp_rust::Jid>().ok())
        .map(|j| jid_string(&j))
}

/// Decrypted inbound messages (live, offline or replayed) as events: content as
/// `message`, add-ons as `message.reaction` / `.edit` / `.revoke` and `poll.vote`. Content
/// is remembered; a revoked message is forgotten.
pub(super) async fn messages(
    session: &str,
    archive: &Archive,
    client: &Arc<Client>,
    batch: &[InboundMessage],
) -> Vec<EngineEvent> {
    let now = now_ms() as i64;
    let mut out = Vec::new();
    let mut keep = Vec::new();
    let mut forget = Vec::new();
    for m in batch {
        let info = &m.info;
        let src = &info.source;
        let base = m.message.get_base_message();
        let chat = jid_string(&src.chat);
        let sender = jid_string(&src.sender);
        let at = info.timestamp.timestamp_millis();
        match content::classify(base) {
            Inbound::Content(body) => {
                let mut payload = header(info);
                payload.extend(content::describe(body));
                out.push(domain(session, "message", Value::Object(payload)));
                let mut kept = body.clone();
                if kept.message_context_info.is_unset() {
                    kept.message_context_info = m.message.message_context_info.clone();
                }
                keep.push(Remembered {
                    info: wa::WebMessageInfo {
                        key: MessageField::some(wa::MessageKey {
                            remote_jid: Some(chat.clone()),
                            from_me: Some(src.is_from_me),
                            id: Some(info.id.clone()),
                            participant: Some(sender.clone()),
                        }),
                        message: MessageField::some(kept),
                        message_timestamp: Some(info.timestamp.timestamp().max(0) as u64),
                        push_name: (!info.push_name.is_empty()).then(|| info.push_name.clone()),
                        ..Default::default()
                    },
                    seen_at: now,
                });
            }
            Inbound::Reaction { key, emoji } => out.push(domain(
                session,
                "message.reaction",
                json!({
                    "id": key.id,
                    "chat": chat,
                    "sender": sender,
                    "fromMe": src.is_from_me,
                    "emoji": emoji,
                    "timestamp": at,
                }),
            )),
            Inbound::Edit { key, text } => out.push(domain(
                session,
                "message.edit",
                json!({
                    "id": key.id,
                    "chat": chat,
                    "sender": sender,
                    "fromMe": src.is_from_me,
                    "text": text,
                    "timestamp": at,
                }),
            )),
            Inbound::Revoke { key } => {
                // An admin's revoke names the author; an author's own revoke does not.
                let author = key_jid(key.participant.as_deref()).unwrap_or_else(|| sender.clone());
                let from_me = author
                    .parse::<whatsapp_rust::Jid>()
                    .is_ok_and(|a| is_me(client, &a));
                if let Some(id) = key.id.clone() {
                    forget.push((chat.clone(), id));
                }
                out.push(domain(
                    session,
                    "message.revoke",
                    json!({
                        "id": key.id,
                        "chat": chat,
                        "sender": author,
                        "fromMe": from_me,
                        "by": sender,
                        "timestamp": at,
                    }),
                ));
            }
            Inbound::Vote(vote) => {
                if let Some(e) = poll_vote(session, archive, client, info, vote).await {
                    out.push(e);
                }
            }
            Inbound::Internal => {}
        }
    }
    if !keep.is_empty() || !forget.is_empty() {
        let archive = archive.clone();
        let written = tokio::task::spawn_blocking(move || {
            archive.remember(&keep)?;
            for (chat, id) in forget {
                archive.forget(&chat, &id)?;
            }
            Ok::<_, crate::storage::StorageError>(())
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(session, "cannot remember the messages just received");
        }
    }
    out
}

/// A vote on a poll this session has seen, decrypted with the poll's secret: the voter's
/// current choice by option name. `None` when the poll (or its secret) is unknown.
async fn poll_vote(
    session: &str,
    archive: &Archive,
    client: &Arc<Client>,
    info: &MessageInfo,
    vote: &wa::message::PollUpdateMessage,
) -> Option<EngineEvent> {
    let src = &info.source;
    let chat = jid_string(&src.chat);
    let poll_id = vote.poll_creation_message_key.as_option()?.id.clone()?;
    let unknown = |why: &str| {
        tracing::debug!(session, poll = %poll_id, "a vote cannot be read: {why}");
    };
    let Some(poll) = archive.recent(&chat, &poll_id).ok().flatten() else {
        unknown("the poll is not remembered");
        return None;
    };
    let body = poll.message.as_option()?;
    let definition = content::poll_of(body)?;
    let secret = body
        .message_context_info
        .as_option()?
        .message_secret
        .as_deref()?;
    let creator: whatsapp_rust::Jid = match poll.key.as_option()?.participant.as_deref() {
        Some(p) => p.parse().ok()?,
        None => client.pn()?.to_non_ad(),
    };
    let enc = vote.vote.as_option()?;
    let ciphertext = whatsapp_rust::features::PollVoteCiphertext {
        enc_payload: enc.enc_payload.as_deref()?,
        enc_iv: enc.enc_iv.as_deref()?,
    };
    let hashes = match client
        .polls()
        .decrypt_vote(ciphertext, secret, &poll_id, &creator, &src.sender)
        .await
    {
        Ok(h) => h,
        Err(e) => {
            unknown(&e.to_string());
            return None;
        }
    };
    let options: Vec<&str> = definition
        .options
        .iter()
        .filter_map(|o| o.option_name.as_deref())
        .filter(|name| {
            let h = whatsapp_rust::wacore::poll::compute_option_hash(name);
            hashes.iter().any(|v| v.as_slice() == h)
        })
        .collect();
    Some(domain(
        session,
        "poll.vote",
        json!({
            "pollId": poll_id,
            "chat": chat,
            "voter": jid_string(&src.sender),
            "options": options,
            "timestamp": info.timestamp.timestamp_millis(),
        }),
    ))
}

/// Every group the account is in, with members and roles, as `groups.upsert` events (in
/// chunks, as the sandbox delivers its world).
pub(super) async fn sync_groups(
    session: Arc<str>,
    client: Arc<Client>,
    sink: crate::engines::EngineSink,
) {
    let groups = match client.groups().get_participating().await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(session = %session, error = %e, "cannot read the account's groups");
            return;
        }
    };
    let list: Vec<Value> = groups
        .values()
        .map(|g| {
            let participants: Vec<Value> = g
                .participants
                .iter()
                .map(|p| {
                    let (lid, jid) = person(&p.jid, p.lid.as_ref().or(p.phone_number.as_ref()));
                    let jid = jid.or_else(|| p.phone_number.as_ref().map(jid_string));
                    let role = match p.participant_type {
                        ParticipantType::Admin => "admin",
                        ParticipantType::SuperAdmin => "superadmin",
                        ParticipantType::Member => "member",
                    };
                    json!({"lid": lid, "jid": jid, "role": role})
                })
                .collect();
            json!({
                "jid": jid_string(&g.id),
                "subject": g.subject,
                "description": g.description,
                "announce": g.is_announcement,
                "locked": g.is_locked,
                "participants": participants,
            })
        })
        .collect();
    for chunk in list.chunks(GROUP_SYNC_CHUNK) {
        sink.send_waiting(domain(&session, "groups.upsert", json!({"groups": chunk})))
            .await;
    }
}

/// Groups per `groups.upsert` event of the connect-time sync.
const GROUP_SYNC_CHUNK: usize = 50;

/// Messages per `history.sync` event (a sync chunk can carry thousands).
const HISTORY_MESSAGES_PER_EVENT: usize = 200;
/// Chats per `history.sync` event.
const HISTORY_CHATS_PER_EVENT: usize = 500;

/// The name of a history sync's type, as `history.sync` reports it.
fn sync_type_name(t: i32) -> &'static str {
    match t {
        0 => "initial_bootstrap",
        1 => "initial_status_v3",
        2 => "full",
        3 => "recent",
        4 => "push_name",
        5 => "non_blocking_data",
        6 => "on_demand",
        _ => "unknown",
    }
}

/// Epoch ms from the seconds a history record carries; WhatsApp's "forever" mute (any
/// time beyond what ms can hold) is -1.
fn history_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .unwrap_or(-1)
}

/// A message of the history as a `message` payload, and the record to remember; `None`
/// for add-ons, stubs (deleted messages) and protocol traffic.
fn history_message(
    client: &Client,
    chat: &str,
    w: &wa::WebMessageInfo,
) -> Option<(Value, Remembered)> {
    let key = w.key.as_option()?;
    let id = key.id.clone().filter(|i| !i.is_empty())?;
    let message = w.message.as_option()?;
    let base = message.get_base_message();
    let Inbound::Content(body) = content::classify(base) else {
        return None;
    };
    let from_me = key.from_me.unwrap_or(false);
    let is_group = chat.ends_with("@g.us");
    let sender_jid: Option<whatsapp_rust::Jid> = if from_me {
        client.pn().map(|p| p.to_non_ad())
    } else {
        key.participant
            .as_deref()
            .or(w.participant.as_deref())
            .filter(|p| !p.is_empty())
            .or((!is_group).then_some(chat))
            .and_then(|p| p.parse().ok())
    };
    let sender = sender_jid.as_ref().map(jid_string);
    let (lid, pn) = match &sender_jid {
        Some(j) => person(j, None),
        None => (None, None),
    };
    let at_secs = w.message_timestamp.unwrap_or(0);
    let mut payload = Map::new();
    payload.insert("id".into(), json!(id));
    payload.insert("chat".into(), json!(chat));
    payload.insert("sender".into(), json!(sender));
    payload.insert("senderLid".into(), json!(lid));
    payload.insert("senderJid".into(), json!(pn));
    payload.insert("fromMe".into(), json!(from_me));
    payload.insert("isGroup".into(), json!(is_group));
    payload.insert(
        "pushName".into(),
        json!(w.push_name.as_deref().filter(|n| !n.is_empty())),
    );
    payload.insert("timestamp".into(), json!(history_ms(at_secs)));
    payload.extend(content::describe(body));
    let mut kept = body.clone();
    if kept.message_context_info.is_unset() {
        kept.message_context_info = message.message_context_info.clone();
    }
    let record = wa::WebMessageInfo {
        key: MessageField::some(wa::MessageKey {
            remote_jid: Some(chat.to_owned()),
            from_me: Some(from_me),
            id: Some(id),
            participant: sender,
        }),
        message: MessageField::some(kept),
        message_timestamp: Some(at_secs),
        push_name: w.push_name.clone(),
        ..Default::default()
    };
    Some((
        Value::Object(payload),
        Remembered {
            info: record,
            seen_at: history_ms(at_secs),
        },
    ))
}

/// A chat of the history with its settings, for `history.sync`.
fn history_chat(c: &wa::Conversation) -> Value {
    let mut chat = Map::new();
    chat.insert("jid".into(), json!(c.id));
    if let Some(name) = c.name.as_ref().or(c.display_name.as_ref()) {
        chat.insert("name".into(), json!(name));
    }
    let unread = c.unread_count.unwrap_or(0);
    if c.marked_as_unread == Some(true) {
        chat.insert("unreadCount".into(), json!(unread.max(1)));
    } else if c.unread_count.is_some() {
        chat.insert("unreadCount".into(), json!(unread));
    }
    if let Some(a) = c.archived {
        chat.insert("archived".into(), json!(a));
    }
    if let Some(p) = c.pinned {
        chat.insert("pinned".into(), json!(p > 0));
    }
    if let Some(m) = c.mute_end_time {
        chat.insert(
            "mutedUntil".into(),
            json!(if m == 0 { 0 } else { history_ms(m) }),
        );
    }
    if let Some(t) = c.conversation_timestamp.or(c.last_msg_timestamp) {
        chat.insert("lastMessageAt".into(), json!(history_ms(t)));
    }
    Value::Object(chat)
}

/// A history sync chunk: names, direct chats and LID ↔ phone mappings for the stores
/// that keep them, then `history.sync` (chats with their settings, and messages) for
/// plugins, in events of bounded size. The messages are remembered.
async fn history(
    session: &str,
    archive: &Archive,
    client: &Arc<Client>,
    h: &whatsapp_rust::types::events::LazyHistorySync,
) -> Vec<EngineEvent> {
    let Some(sync) = h.get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mappings: Vec<Value> = sync
        .phone_number_to_lid_mappings
        .iter()
        .filter_map(|m| Some(json!({"lid": m.lid_jid.clone()?, "jid": m.pn_jid.clone()?})))
        .collect();
    if !mappings.is_empty() {
        out.push(domain(
            session,
            "lid.mapping",
            json!({"mappings": mappings}),
        ));
    }
    let pushnames: Vec<Value> = sync
        .pushnames
        .iter()
        .filter_map(|p| {
            let id = p.id.clone()?;
            let is_lid = id.ends_with("@lid");
            Some(json!({
                "lid": is_lid.then(|| id.clone()),
                "jid": (!is_lid).then_some(id),
                "pushName": p.pushname.clone()?,
            }))
        })
        .collect();
    if !pushnames.is_empty() {
        out.push(domain(
            session,
            "contacts.upsert",
            json!({"source": "history", "contacts": pushnames}),
        ));
    }
    let mut chats = Vec::new();
    let mut named = Vec::new();
    let mut all_chats = Vec::new();
    let mut payloads = Vec::new();
    let mut keep = Vec::new();
    for c in &sync.conversations {
        let id = c.id.clone();
        all_chats.push(history_chat(c));
        for m in &c.messages {
            if let Some(w) = m.message.as_option()
                && let Some((payload, record)) = history_message(client, &id, w)
            {
                payloads.push(payload);
                keep.push(record);
            }
        }
        if !(id.ends_with("@s.whatsapp.net") || id.ends_with("@lid")) {
            continue;
        }
        let is_lid = id.ends_with("@lid");
        let lid = if is_lid { Some(id.clone()) } else { None };
        let pn = if is_lid {
            c.pn_jid.clone()
        } else {
            Some(id.clone())
        };
        chats.push(json!({"jid": pn.clone().or_else(|| lid.clone()), "lid": lid}));
        let name = c.name.clone().or_else(|| c.display_name.clone());
        if name.is_some() {
            named.push(json!({"lid": lid, "jid": pn, "name": name}));
        }
    }
    if !chats.is_empty() {
        out.push(domain(session, "chats.upsert", json!({"chats": chats})));
    }
    if !named.is_empty() {
        out.push(domain(
            session,
            "contacts.upsert",
            json!({"source": "history", "contacts": named}),
        ));
    }
    let sync_type = sync_type_name(h.sync_type());
    let mut chat_chunks = all_chats.chunks(HISTORY_CHATS_PER_EVENT);
    let mut message_chunks = payloads.chunks(HISTORY_MESSAGES_PER_EVENT);
    loop {
        let (c, m) = (chat_chunks.next(), message_chunks.next());
        if c.is_none() && m.is_none() {
            break;
        }
        out.push(domain(
            session,
            "history.sync",
            json!({
                "syncType": sync_type,
                "chats": c.unwrap_or_default(),
                "messages": m.unwrap_or_default(),
            }),
        ));
    }
    // Old history is kept for its media (downloads), not as recent copies.
    let cutoff = now_ms() as i64 - RECENT_KEEP_MS;
    if !keep.is_empty() {
        let archive = archive.clone();
        let written =
            tokio::task::spawn_blocking(move || archive.remember_since(&keep, cutoff)).await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(session, "cannot remember the history's messages");
        }
    }
    out
}
