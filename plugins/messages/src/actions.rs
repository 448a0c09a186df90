//! Actions on a stored message (API.md §6.4): edit, revoke, forward, vote, react and
//! remove a reaction — each an outbox item like a send — and the STORED reads of one
//! message: getMessage and downloadMedia.
//!
//! The target is `{mid}` plus `chat` (optional when the id is stored in one chat only)
//! and `sender` (`""` = this account; defaults to the stored author); DELETE routes also
//! read both from the query, since some clients drop DELETE bodies.

use crate::emoji::is_single_emoji;
use crate::model::{MessageType, MessageView, StoredMessage};
use crate::queue;
use crate::send::{check_text, key_of, pending_row, recipient};
use crate::store::{Change, MessageStore, PendingChange, valid_id};
use gateway_sdk::outbox::{
    ContactCard, Content, Location, Media, MediaKind, MediaSource, Outbound, Poll, SendStatus,
    Submitted,
};
use gateway_sdk::whatsapp::WhatsappError;
use gateway_sdk::{ApiError, Json, JsonSchema, Request, Response, jid, json, media};
use serde::Deserialize;
use serde_json::Value;

/// WhatsApp lets an author edit a message for this long after sending it.
const EDIT_WINDOW_MS: u64 = 15 * 60 * 1000;

/// editMessage's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditBody {
    /// The message's chat; optional when the id is stored in one chat only.
    chat: Option<String>,
    /// The new text, 1–65 536 characters.
    text: String,
}

/// The message an action is about (revokeMessage, removeReaction).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetBody {
    /// The message's chat; optional when the id is stored in one chat only.
    chat: Option<String>,
    /// The author's JID, `""` for this account; defaults to the stored author.
    sender: Option<String>,
}

/// forwardMessage's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardBody {
    chat: Option<String>,
    sender: Option<String>,
    /// Where to forward it: a user JID, LID, group JID or phone digits.
    to: Option<String>,
}

/// voteMessage's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VoteBody {
    chat: Option<String>,
    sender: Option<String>,
    /// The chosen option names, replacing any earlier vote; `[]` clears it.
    options: Vec<String>,
}

/// reactMessage's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReactBody {
    chat: Option<String>,
    sender: Option<String>,
    /// Exactly one emoji; replaces this account's earlier reaction.
    emoji: String,
}

/// `{mid}`: a message id.
fn message_id(req: &Request) -> Result<String, ApiError> {
    let id = req.param("mid")?.trim();
    if !valid_id(id) {
        return Err(ApiError::invalid_field(
            "mid",
            format!("'{id}' is not a message id"),
        ));
    }
    Ok(id.to_owned())
}

/// A chat named in a request: a person (phone JID or LID) or a group.
pub(crate) fn chat_param(raw: &str, field: &str) -> Result<String, ApiError> {
    let j =
        gateway_sdk::Jid::parse(raw).map_err(|e| ApiError::invalid_field(field, e.to_string()))?;
    if !(j.is_person() || j.is_group()) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be a user, LID or group JID"),
        ));
    }
    Ok(j.to_non_device().to_string())
}

/// `chat` and `sender` from the body, else (DELETE routes) from the query.
fn target_names(
    req: &Request,
    chat: Option<String>,
    sender: Option<String>,
) -> (Option<String>, Option<String>) {
    let from_query = |name: &str| {
        (req.method() == "DELETE")
            .then(|| req.query(name).map(str::to_owned))
            .flatten()
    };
    (
        chat.or_else(|| from_query("chat")),
        sender.or_else(|| from_query("sender")),
    )
}

/// The stored message an action names; 404 when not stored, 400 when the id is stored
/// in several chats and none is named.
fn find_target(
    store: &MessageStore,
    id: &str,
    chat: Option<&str>,
    sender: Option<&str>,
) -> Result<StoredMessage, ApiError> {
    let not_found = || ApiError::not_found(format!("no message {id} is stored"));
    let m = match chat.filter(|c| !c.is_empty()) {
        Some(raw) => {
            let chat = chat_param(raw, "chat")?;
            store.find(&chat, id)?.ok_or_else(|| {
                ApiError::not_found(format!("no message {id} is stored in {chat}"))
            })?
        }
        None => {
            let mut all = store.find_everywhere(id)?;
            match all.len() {
                0 => return Err(not_found()),
                1 => all.remove(0),
                _ => {
                    let chats: Vec<String> = all.iter().map(|m| m.chat.clone()).collect();
                    return Err(ApiError::invalid_field(
                        "chat",
                        format!("message {id} is stored in several chats: name the chat"),
                    )
                    .with_detail("chats", chats));
                }
            }
        }
    };
    match sender.map(str::trim) {
        None => Ok(m),
        Some("") if m.from_me => Ok(m),
        Some("") => Err(ApiError::not_found(format!(
            "message {id} is not this account's"
        ))),
        Some(raw) => {
            let who = jid::parse_person(raw)
                .map_err(|e| ApiError::invalid_field("sender", e.to_string()))?
                .to_string();
            let me = store.account()?;
            let authored = if m.from_me {
                me.is(&who)
            } else {
                [&m.sender, &m.sender_jid, &m.sender_lid]
                    .into_iter()
                    .any(|s| s.as_deref() == Some(who.as_str()))
            };
            if authored {
                Ok(m)
            } else {
                Err(ApiError::not_found(format!(
                    "no message {id} by {who} is stored"
                )))
            }
        }
    }
}

/// What the caller asked for, as the Idempotency-Key fingerprint holds it: the target
/// in the path and query, and the body.
fn input(req: &Request, id: &str) -> Result<Value, ApiError> {
    let body: Value = req.json()?;
    let query: serde_json::Map<String, Value> = ["chat", "sender"]
        .into_iter()
        .filter_map(|k| req.query(k).map(|v| (k.to_owned(), Value::from(v))))
        .collect();
    Ok(json!({"mid": id, "query": query, "body": body}))
}

/// Submits an action on `target`; once the outbox has sent it (at once, or later by
/// `message.status`), `change` is applied to the stored message.
fn act(
    req: &Request,
    id: &str,
    target: &StoredMessage,
    content: Content,
    change: Change,
) -> Result<Response, ApiError> {
    let message = Outbound {
        to: target.chat.clone(),
        content,
        reply_to: None,
        mentions: Vec::new(),
        forwarded: false,
    };
    let submitted = queue::submit(req, &message, &input(req, id)?)?;
    if !submitted.replayed {
        record_change(&submitted, target, change)?;
    }
    Ok(queue::answer(&submitted))
}

fn record_change(
    submitted: &Submitted,
    target: &StoredMessage,
    change: Change,
) -> Result<(), ApiError> {
    let r = &submitted.result;
    let mut store = MessageStore::new();
    match r.status {
        SendStatus::Pending => {
            let waiting = PendingChange {
                chat: target.chat.clone(),
                id: target.id.clone(),
                change,
            };
            store.put_change(&r.wa_message_id, &waiting)?;
        }
        SendStatus::Sent | SendStatus::Delivered | SendStatus::Read => {
            if let Some(mut m) = store.find(&target.chat, &target.id)? {
                change.apply(&mut m, r.timestamp);
                store.save(&mut m)?;
            }
        }
        SendStatus::Failed => {}
    }
    store.commit()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn not_deleted(m: &StoredMessage) -> Result<(), ApiError> {
    if m.deleted {
        return Err(ApiError::validation(format!(
            "message {} was deleted",
            m.id
        )));
    }
    Ok(())
}

pub(crate) fn edit_message(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let id = message_id(req)?;
    let body: EditBody = req.json()?;
    check_text("text", &body.text)?;
    let store = MessageStore::new();
    let m = find_target(&store, &id, body.chat.as_deref(), None)?;
    not_deleted(&m)?;
    if !m.from_me {
        return Err(ApiError::validation(
            "only messages sent by this session can be edited",
        ));
    }
    if m.kind != MessageType::Text {
        return Err(ApiError::validation(format!(
            "only text messages can be edited, not {}",
            m.kind.as_str()
        )));
    }
    if m.failed {
        return Err(ApiError::validation("the message was never sent"));
    }
    if now_ms().saturating_sub(m.created_at) > EDIT_WINDOW_MS {
        return Err(
            ApiError::validation("WhatsApp allows edits for 15 minutes after sending")
                .with_detail("reason", "edit_window_passed"),
        );
    }
    let content = Content::Edit((key_of(&m), body.text.clone()));
    act(req, &id, &m, content, Change::Edit { text: body.text })
}

pub(crate) fn revoke_message(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let id = message_id(req)?;
    let body: TargetBody = req.json()?;
    let (chat, sender) = target_names(req, body.chat, body.sender);
    let store = MessageStore::new();
    let m = find_target(&store, &id, chat.as_deref(), sender.as_deref())?;
    let group = gateway_sdk::Jid::parse(&m.chat).is_ok_and(|j| j.is_group());
    if !m.from_me && !group {
        return Err(ApiError::forbidden(
            "in a direct chat only the author can delete a message for everyone",
        ));
    }
    act(req, &id, &m, Content::Revoke(key_of(&m)), Change::Revoke)
}

/// The content of a stored message, sent again marked forwarded (media by reference,
/// without another upload).
fn forwarded_content(m: &StoredMessage) -> Result<Content, ApiError> {
    let kind = match m.kind {
        MessageType::Text => return Ok(Content::Text(m.body.clone())),
        MessageType::Location => {
            let l = m
                .location
                .clone()
                .ok_or_else(|| ApiError::validation("the location is not stored"))?;
            return Ok(Content::Location(Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name,
                address: l.address,
            }));
        }
        MessageType::Contact => {
            let c = m
                .contact
                .clone()
                .ok_or_else(|| ApiError::validation("the contact card is not stored"))?;
            return Ok(Content::Contact(ContactCard {
                name: c.name,
                vcard: c.vcard,
            }));
        }
        MessageType::Poll => {
            let p = m
                .poll
                .clone()
                .ok_or_else(|| ApiError::validation("the poll is not stored"))?;
            return Ok(Content::Poll(Poll {
                name: p.name,
                options: p.options,
                selectable_count: p.selectable_count,
            }));
        }
        MessageType::Image => MediaKind::Image,
        MessageType::Video => MediaKind::Video,
        MessageType::Audio => MediaKind::Audio,
        MessageType::Document => MediaKind::Document,
        MessageType::Sticker => MediaKind::Sticker,
        MessageType::Unknown => {
            return Err(ApiError::validation(
                "this kind of message cannot be forwarded",
            ));
        }
    };
    let info = m
        .media
        .clone()
        .ok_or_else(|| ApiError::validation("the message has no media to forward"))?;
    let captioned = matches!(
        kind,
        MediaKind::Image | MediaKind::Video | MediaKind::Document
    );
    Ok(Content::Media(Media {
        kind,
        source: MediaSource::Message(key_of(m)),
        mimetype: info.mimetype,
        caption: (captioned && !m.body.is_empty()).then(|| m.body.clone()),
        file_name: info.file_name,
        voice_note: false,
    }))
}

pub(crate) fn forward_message(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let id = message_id(req)?;
    let body: ForwardBody = req.json()?;
    let raw_to = body
        .to
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::invalid_field("to", "to is required: where to forward the message")
        })?;
    let to = recipient(raw_to, "to")?.to_string();
    let store = MessageStore::new();
    let m = find_target(&store, &id, body.chat.as_deref(), body.sender.as_deref())?;
    not_deleted(&m)?;
    let message = Outbound {
        to: to.clone(),
        content: forwarded_content(&m)?,
        reply_to: None,
        mentions: Vec::new(),
        forwarded: true,
    };
    let submitted = queue::submit(req, &message, &input(req, &id)?)?;
    if !submitted.replayed {
        let mut row = pending_row(&submitted.result, &to, m.kind, m.body.clone());
        row.forwarded = true;
        row.media = m.media.clone();
        row.location = m.location.clone();
        row.contact = m.contact.clone();
        row.poll = m.poll.clone();
        let mut store = store;
        store.save(&mut row)?;
        store.commit()?;
    }
    Ok(queue::answer(&submitted))
}

pub(crate) fn vote_message(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let id = message_id(req)?;
    let body: VoteBody = req.json()?;
    let store = MessageStore::new();
    let m = find_target(&store, &id, body.chat.as_deref(), body.sender.as_deref())?;
    not_deleted(&m)?;
    let poll = m
        .poll
        .as_ref()
        .ok_or_else(|| ApiError::validation(format!("message {id} is not a poll")))?;
    for (i, o) in body.options.iter().enumerate() {
        if !poll.options.contains(o) {
            return Err(ApiError::invalid_field(
                "options",
                format!("'{o}' is not an option of this poll"),
            )
            .with_detail("pollOptions", poll.options.clone()));
        }
        if body.options[..i].contains(o) {
            return Err(ApiError::invalid_field(
                "options",
                format!("'{o}' is chosen twice"),
            ));
        }
    }
    match poll.selectable_count {
        1 if body.options.len() > 1 => {
            return Err(ApiError::invalid_field(
                "options",
                "this poll takes exactly one option ([] clears the vote)",
            ));
        }
        n if n > 1 && body.options.len() > n as usize => {
            return Err(ApiError::invalid_field(
                "options",
                format!("this poll takes at most {n} options"),
            ));
        }
        _ => {}
    }
    let content = Content::Vote((key_of(&m), body.options.clone()));
    act(
        req,
        &id,
        &m,
        content,
        Change::Vote {
            options: body.options,
        },
    )
}

pub(crate) fn react_message(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let id = message_id(req)?;
    let body: ReactBody = req.json()?;
    if !is_single_emoji(&body.emoji) {
        return Err(ApiError::invalid_field(
            "emoji",
            "emoji must be exactly one emoji",
        ));
    }
    let store = MessageStore::new();
    let m = find_target(&store, &id, body.chat.as_deref(), body.sender.as_deref())?;
    not_deleted(&m)?;
    let content = Content::Reaction((key_of(&m), body.emoji.clone()));
    act(req, &id, &m, content, Change::React { emoji: body.emoji })
}

pub(crate) fn remove_reaction(req: &Request) -> Result<Response, ApiError> {
    queue::check_headers(req)?;
    let id = message_id(req)?;
    let body: TargetBody = req.json()?;
    let (chat, sender) = target_names(req, body.chat, body.sender);
    let store = MessageStore::new();
    let m = find_target(&store, &id, chat.as_deref(), sender.as_deref())?;
    let content = Content::Reaction((key_of(&m), String::new()));
    act(
        req,
        &id,
        &m,
        content,
        Change::React {
            emoji: String::new(),
        },
    )
}

pub(crate) fn get_message(req: &Request) -> Result<Json<MessageView>, ApiError> {
    let id = message_id(req)?;
    let store = MessageStore::new();
    let m = find_target(&store, &id, req.query("chat"), None)?;
    Ok(Json(m.view(&store.account()?)))
}

/// The media's bytes, streamed by the host from the blob `media.download` names.
pub(crate) fn download_media(req: &Request) -> Result<Response, ApiError> {
    let id = message_id(req)?;
    let store = MessageStore::new();
    let m = find_target(&store, &id, req.query("chat"), None)?;
    if m.media.is_none() {
        return Err(ApiError::not_found(format!("message {id} has no media"))
            .with_detail("reason", "no_media"));
    }
    match media::download(&key_of(&m)) {
        Ok(blob) => Ok(media::answer(&blob)),
        Err(WhatsappError::NotFound(m)) => {
            Err(ApiError::not_found(m).with_detail("reason", "media_gone"))
        }
        Err(e) => Err(e.into()),
    }
}
