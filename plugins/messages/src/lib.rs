//! The `messages` plugin (API.md §6): sending every kind of message and acting on stored
//! ones through the session's outbox (idempotent, rate-limited, sync or async), a
//! per-session message store built from the engine's events and the plugin's own
//! `pending` rows, the STORED reads of it, media downloads streamed by the host, and the
//! outbox's items.

mod actions;
mod emoji;
mod events;
mod mime;
mod model;
mod queue;
mod send;
mod store;
/// Native only: the in-memory host does not exist on wasm32.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

use actions::{EditBody, ForwardBody, ReactBody, TargetBody, VoteBody};
use gateway_sdk::store as kv;
use gateway_sdk::{
    ApiError, Capability, Json, Manifest, Page, Plugin, Request, Route, encode_cursor,
};
use model::{MessageType, MessageView, SendResultView};
use send::SendBody;
use std::collections::VecDeque;
use store::{MessageStore, chat_prefix};

/// Rows read per storage call while walking a chat's messages.
const SCAN_CHUNK: u32 = 128;

/// One chat name's messages, newest first, read in chunks from a position on.
struct ChatWalk {
    prefix: Vec<u8>,
    /// Exclusive upper bound of the next read.
    before: Option<Vec<u8>>,
    buffer: VecDeque<gateway_sdk::store::Entry>,
    exhausted: bool,
}

impl ChatWalk {
    fn new(chat: &str, before: Option<&[u8]>) -> ChatWalk {
        let prefix = chat_prefix(chat);
        let before = before.map(|p| [prefix.as_slice(), p].concat());
        ChatWalk {
            prefix,
            before,
            buffer: VecDeque::new(),
            exhausted: false,
        }
    }

    /// The position (`<createdAt>/<seq>/<id>`) of the next message, reading more if needed.
    fn peek(&mut self) -> Result<Option<&[u8]>, ApiError> {
        if self.buffer.is_empty() && !self.exhausted {
            let rows = kv::scan(&self.prefix, self.before.as_deref(), SCAN_CHUNK, true)?;
            self.exhausted = rows.len() < SCAN_CHUNK as usize;
            self.before = rows.last().map(|r| r.key.clone());
            self.buffer.extend(rows);
        }
        Ok(self.buffer.front().map(|e| &e.key[self.prefix.len()..]))
    }
}

/// Which messages a list shows.
struct MessageFilter {
    from_me: Option<bool>,
    kind: Option<MessageType>,
}

impl MessageFilter {
    fn parse(req: &Request) -> Result<MessageFilter, ApiError> {
        let from_me = match req.query("fromMe").filter(|v| !v.is_empty()) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "fromMe",
                    "fromMe must be true or false",
                ));
            }
        };
        let kind = match req.query("type").filter(|v| !v.is_empty()) {
            None => None,
            Some(t) => Some(MessageType::parse(t).ok_or_else(|| {
                ApiError::invalid_field(
                    "type",
                    "type must be text, image, video, audio, document, sticker, location, contact, poll or unknown",
                )
            })?),
        };
        Ok(MessageFilter { from_me, kind })
    }

    fn keep(&self, m: &model::StoredMessage) -> bool {
        self.from_me.is_none_or(|f| m.from_me == f) && self.kind.is_none_or(|k| m.kind == k)
    }
}

/// A chat's messages, newest first (`createdAt`, then arrival). The cursor is the position of
/// the last message served, so new messages arriving meanwhile never shift a page. A
/// direct chat stored under both the phone JID and the LID reads as one list.
fn list_chat_messages(req: &Request) -> Result<Json<Page<MessageView>>, ApiError> {
    let chat = actions::chat_param(req.param("cid")?, "cid")?;
    let filter = MessageFilter::parse(req)?;
    let page = req.page()?;
    if page
        .after
        .as_deref()
        .is_some_and(|p| !store::valid_position(p))
    {
        return Err(ApiError::invalid_field(
            "cursor",
            "cursor is not one this gateway issued",
        ));
    }
    let store = MessageStore::new();
    let chats = store.stored_chats(&chat)?;
    if chats.is_empty() {
        return Err(ApiError::not_found(format!("chat {chat} is not stored")));
    }
    let me = store.account()?;
    let mut walks: Vec<ChatWalk> = chats
        .iter()
        .map(|c| ChatWalk::new(c, page.after.as_deref()))
        .collect();
    let mut data = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    loop {
        // The newest message among the chat's names.
        let mut best: Option<(usize, Vec<u8>)> = None;
        for (i, w) in walks.iter_mut().enumerate() {
            if let Some(p) = w.peek()?
                && best.as_ref().is_none_or(|(_, b)| p > b.as_slice())
            {
                best = Some((i, p.to_vec()));
            }
        }
        let Some((i, position)) = best else {
            return Ok(Json(Page {
                data,
                next_cursor: None,
            }));
        };
        let Some(entry) = walks[i].buffer.pop_front() else {
            return Ok(Json(Page {
                data,
                next_cursor: None,
            }));
        };
        let m: model::StoredMessage = serde_json::from_slice(&entry.value)
            .map_err(|e| ApiError::internal(format!("stored message is unreadable: {e}")))?;
        if !filter.keep(&m) {
            continue;
        }
        if data.len() == page.limit as usize {
            return Ok(Json(Page {
                data,
                next_cursor: last.as_deref().map(encode_cursor),
            }));
        }
        data.push(m.view(&me));
        last = Some(position);
    }
}

struct Messages;

/// How every write through the outbox answers.
const SYNC_OR_ASYNC: &str = "200 when sent (or refused by WhatsApp: `status: failed`), 202 while pending \
    (`?async=true`, or still queued at the sync timeout). An `Idempotency-Key` header (1-255 \
    visible ASCII characters) makes retries safe: the same request answers the first status with \
    `replayed: true`; another request with the key answers 422.";

/// What the message actions (edit, revoke, forward, vote, react) share in their routes.
trait ActionRoute {
    /// Sync or async through the outbox, answering like a send.
    fn outbox_action(self) -> Self;
    /// The target message named in the query when the body does not name it.
    fn targeted(self) -> Self;
}

impl ActionRoute for Route {
    fn outbox_action(self) -> Self {
        self.description(SYNC_OR_ASYNC)
            .query("async", "true: answer 202 at once", false)
    }

    fn targeted(self) -> Self {
        self.query("chat", "the message's chat, when the body has none", false)
            .query(
                "sender",
                "the author's JID (empty = this account), when the body has none",
                false,
            )
    }
}

impl Plugin for Messages {
    fn manifest() -> Manifest {
        let s = "/sessions/{session}";
        let path = |p: &str| format!("{s}{p}");
        Manifest::new("messages", env!("CARGO_PKG_VERSION"))
            .route(
                Route::post(&path("/messages"), Capability::Send, "sendMessage")
                    .summary("Send a message of any type (OUTBOX)")
                    .description(SYNC_OR_ASYNC)
                    .query("async", "true: answer 202 at once; the outcome comes as message.status events", false)
                    .request::<SendBody>()
                    .response::<SendResultView>(),
                send::send_message,
            )
            .route(
                Route::get(&path("/messages/{mid}"), Capability::Read, "getMessage")
                    .summary("One stored message (STORED)")
                    .query("chat", "the message's chat; needed when the id is stored in several chats", false)
                    .response::<MessageView>(),
                actions::get_message,
            )
            .route(
                Route::patch(&path("/messages/{mid}"), Capability::Send, "editMessage")
                    .summary("Edit a text this session sent, within 15 minutes (OUTBOX)")
                    .outbox_action()
                    .request::<EditBody>()
                    .response::<SendResultView>(),
                actions::edit_message,
            )
            .route(
                Route::delete(&path("/messages/{mid}"), Capability::Send, "revokeMessage")
                    .summary("Delete a message for everyone (OUTBOX)")
                    .outbox_action()
                    .targeted()
                    .request::<TargetBody>()
                    .response::<SendResultView>(),
                actions::revoke_message,
            )
            .route(
                Route::post(&path("/messages/{mid}/forward"), Capability::Send, "forwardMessage")
                    .summary("Forward a stored message to another chat (OUTBOX)")
                    .outbox_action()
                    .request::<ForwardBody>()
                    .response::<SendResultView>(),
                actions::forward_message,
            )
            .route(
                Route::post(&path("/messages/{mid}/vote"), Capability::Send, "voteMessage")
                    .summary("Vote in a poll, replacing this account's earlier vote (OUTBOX)")
                    .outbox_action()
                    .request::<VoteBody>()
                    .response::<SendResultView>(),
                actions::vote_message,
            )
            .route(
                Route::post(&path("/messages/{mid}/reaction"), Capability::Send, "reactMessage")
                    .summary("React with one emoji, replacing this account's earlier reaction (OUTBOX)")
                    .outbox_action()
                    .request::<ReactBody>()
                    .response::<SendResultView>(),
                actions::react_message,
            )
            .route(
                Route::delete(&path("/messages/{mid}/reaction"), Capability::Send, "removeReaction")
                    .summary("Remove this account's reaction (OUTBOX, idempotent)")
                    .outbox_action()
                    .targeted()
                    .request::<TargetBody>()
                    .response::<SendResultView>(),
                actions::remove_reaction,
            )
            .route(
                Route::get(&path("/messages/{mid}/media"), Capability::Read, "downloadMedia")
                    .summary("The message's media bytes (LIVE; streamed by the gateway)")
                    .description(
                        "200 with the raw bytes: content-type is the media's type, with content-length, \
                         content-disposition (file name) and x-media-sha256. 404 with details.reason \
                         no_media, or media_gone when WhatsApp no longer has it and the phone will not \
                         re-upload it.",
                    )
                    .query("chat", "the message's chat; needed when the id is stored in several chats", false),
                actions::download_media,
            )
            .route(
                Route::get(&path("/chats/{cid}/messages"), Capability::Read, "listChatMessages")
                    .summary("A chat's stored messages, newest first (STORED)")
                    .query("fromMe", "true: only this account's messages; false: only others'", false)
                    .query("type", "only messages of this type", false)
                    .paged()
                    .response::<Page<MessageView>>(),
                list_chat_messages,
            )
            .route(
                Route::get(&path("/outbox"), Capability::Read, "listOutbox")
                    .summary("The session's outbox items, newest first (STORED)")
                    .query("status", "pending, sent, delivered, read or failed", false)
                    .paged()
                    .response::<Page<SendResultView>>(),
                queue::list_outbox,
            )
            .route(
                Route::get(&path("/outbox/{outboxId}"), Capability::Read, "getOutboxItem")
                    .summary("One outbox item (STORED)")
                    .response::<SendResultView>(),
                queue::get_outbox_item,
            )
            .route(
                Route::delete(&path("/outbox/{outboxId}"), Capability::Send, "cancelOutboxItem")
                    .summary("Cancel a pending item: it ends failed/cancelled (409 once no longer pending)")
                    .response::<SendResultView>(),
                queue::cancel_outbox_item,
            )
            .on("message", events::message)
            .on("message.edit", events::edit)
            .on("message.revoke", events::revoke)
            .on("message.reaction", events::reaction)
            .on("poll.vote", events::poll_vote)
            .on("message.status", events::status)
            .on("history.sync", events::history_sync)
            .on("chats.delete", events::chat_deleted)
            .on("chats.upsert", events::chats_upsert)
            .on("contacts.upsert", events::contacts_upsert)
            .on("lid.mapping", events::lid_mapping)
    }
}

gateway_sdk::export!(Messages);
