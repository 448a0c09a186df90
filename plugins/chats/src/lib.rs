//! The `chats` plugin (API.md §5): a per-session chat store built from the engine's
//! events, and the six chat operations. Reads and changes are local (STORED) by default;
//! `sync`, `receipts` and presence also act on WhatsApp (LIVE, 501 when the session is not
//! connected). Every change made through the API is published as `chats.update` /
//! `chats.delete` with `source: "api"`, so other plugins (messages), webhooks and realtime
//! follow it.

mod events;
mod model;
mod store;
#[cfg(test)]
mod tests;

use gateway_sdk::chats::{self as wa, ChatSettings, ChatState, MessageKey};
use gateway_sdk::store as kv;
use gateway_sdk::{
    ApiError, Capability, IntoResponse, Jid, Json, JsonSchema, Manifest, Page, Plugin, Request,
    Response, Route,
};
use model::{ChatView, Kind, Party};
use serde::{Deserialize, Deserializer, Serialize};
use store::{ChatStore, ORDER_PREFIX};

/// updateChat answers its validation errors with 422 (API.md §4–8, amendment 2).
const UPDATE_INVALID: u16 = 422;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A field that may be left out but not sent as `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// updateChat's body: the settings to change; at least one is required.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChatPatch {
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    archived: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    pinned: Option<bool>,
    /// Mute until this time (epoch ms, in the future), or -1 for ever.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "i64")]
    muted_until: Option<i64>,
    /// `true` clears the mute (and overrides `mutedUntil`).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    unmute: Option<bool>,
    /// Also apply the change on WhatsApp, so the phone follows (LIVE: 501 when the
    /// session is not connected).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    sync: Option<bool>,
}

/// readChat's body (may be empty).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    /// Also send read receipts (blue ticks) for the unread incoming messages the gateway
    /// knows, the latest 500 (LIVE: 501 when the session is not connected).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    receipts: Option<bool>,
}

/// What setChatPresence shows in the chat.
#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Presence {
    /// "typing…"
    Composing,
    /// "recording audio…"
    Recording,
    /// Stops either.
    Paused,
}

/// setChatPresence's body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PresenceRequest {
    /// Lasts about 25 seconds on WhatsApp: send it again to keep it showing.
    state: Presence,
}

/// `chats.update` as this plugin publishes it: the fields the change set.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChatUpdated<'a> {
    jid: &'a str,
    /// A DM's LID beside its phone JID, as in `chats.upsert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    lid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archived: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned: Option<bool>,
    /// 0 = unmuted, -1 = forever (as in `whatsapp-chats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    muted_until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unread_count: Option<u32>,
    source: &'static str,
}

/// `chats.delete` as this plugin publishes it.
#[derive(Serialize)]
struct ChatDeleted<'a> {
    jid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lid: Option<&'a str>,
    source: &'static str,
}

/// The chat a path names: `{cid}` is a user JID, a LID or a group JID (`%40` decoded by
/// the host). Malformed → 400.
fn cid(req: &Request) -> Result<Jid, ApiError> {
    let jid = Jid::parse(req.param("cid")?)
        .map_err(|e| ApiError::invalid_field("cid", e.to_string()))?
        .to_non_device();
    if !(jid.is_person() || jid.is_group()) {
        return Err(ApiError::invalid_field(
            "cid",
            format!("{jid} is not a chat (expected a user JID, a LID or a group JID)"),
        ));
    }
    Ok(jid)
}

/// The stored chat a path names; 404 when the session has none with that address.
fn stored_chat(store: &ChatStore, jid: &Jid) -> Result<Party, ApiError> {
    store
        .find(jid)?
        .filter(|p| p.chat.is_some())
        .ok_or_else(|| ApiError::not_found(format!("no chat {jid} is stored for this session")))
}

/// The Chat object of a stored chat, as of `now`.
fn answer(req: &Request, party: &Party, now: u64) -> Result<Response, ApiError> {
    let view = party
        .view(req.session_id()?, now)
        .ok_or_else(|| ApiError::internal("the chat has no state"))?;
    Ok(Json(view).into_response(200))
}

/// A boolean query value: `true` or `false`; absent or empty is `None`.
fn bool_query(req: &Request, name: &str) -> Result<Option<bool>, ApiError> {
    match req.query(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid_field(
            name,
            format!("{name} must be true or false"),
        )),
    }
}

/// Which chats a list asks for.
struct Filter {
    archived: Option<bool>,
    kind: Option<Kind>,
    unread: Option<bool>,
    q: Option<String>,
}

impl Filter {
    fn from_query(req: &Request) -> Result<Filter, ApiError> {
        let kind = match req.query("type").map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some("dm") => Some(Kind::Dm),
            Some("group") => Some(Kind::Group),
            Some(_) => return Err(ApiError::invalid_field("type", "type must be dm or group")),
        };
        let q = req.query("q").map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > 100) {
            return Err(ApiError::invalid_field("q", "q is at most 100 characters"));
        }
        Ok(Filter {
            archived: bool_query(req, "archived")?,
            kind,
            unread: bool_query(req, "unread")?,
            q: q.map(str::to_owned),
        })
    }

    fn keep(&self, p: &Party) -> bool {
        let Some(chat) = &p.chat else {
            return false;
        };
        self.archived.is_none_or(|a| chat.archived == a)
            && self.kind.is_none_or(|k| p.kind == k)
            && self.unread.is_none_or(|u| (chat.unread_count > 0) == u)
            && self.q.as_deref().is_none_or(|q| p.matches(q))
    }
}

fn list_chats(req: &Request) -> Result<Response, ApiError> {
    let filter = Filter::from_query(req)?;
    let page = req.page()?;
    let session = req.session_id()?;
    let now = now_ms();
    let parties = kv::page_json::<Party>(ORDER_PREFIX, &page, |p| filter.keep(p))?;
    let data: Vec<ChatView<'_>> = parties
        .data
        .iter()
        .filter_map(|p| p.view(session, now))
        .collect();
    Ok(Json(Page {
        data,
        next_cursor: parties.next_cursor.clone(),
    })
    .into_response(200))
}

fn get_chat(req: &Request) -> Result<Response, ApiError> {
    let jid = cid(req)?;
    let party = stored_chat(&ChatStore::new(), &jid)?;
    answer(req, &party, now_ms())
}

/// Publishes an API change; it is stored already, so a refusal answers 500 and a retry
/// of the request publishes it again.
fn publish(name: &str, payload: &impl Serialize) -> Result<(), ApiError> {
    gateway_sdk::events::emit(name, payload).map(|_| ())
}

fn update_chat(req: &Request) -> Result<Response, ApiError> {
    let jid = cid(req)?;
    let patch: ChatPatch = req.json().map_err(|e| e.with_status(UPDATE_INVALID))?;
    let now = now_ms();
    let unmute = patch.unmute == Some(true);
    let mute = match (unmute, patch.muted_until) {
        (true, _) => Some(None),
        (false, Some(m)) if m == -1 || u64::try_from(m).is_ok_and(|m| m > now) => Some(Some(m)),
        (false, Some(_)) => {
            return Err(ApiError::invalid_field(
                "mutedUntil",
                "mutedUntil must be a future time (epoch ms) or -1 for ever",
            )
            .with_status(UPDATE_INVALID));
        }
        (false, None) => None,
    };
    if patch.archived.is_none() && patch.pinned.is_none() && mute.is_none() {
        return Err(ApiError::validation(
            "nothing to change: give archived, pinned, mutedUntil or unmute",
        )
        .with_status(UPDATE_INVALID));
    }
    let mut store = ChatStore::new();
    let mut party = stored_chat(&store, &jid)?;
    if patch.sync == Some(true) {
        wa::apply_chat_settings(
            party.jid(),
            ChatSettings {
                archived: patch.archived,
                pinned: patch.pinned,
                muted_until: mute.map(|m| m.unwrap_or(0)),
            },
        )?;
    }
    if let Some(chat) = party.chat.as_mut() {
        if let Some(a) = patch.archived {
            chat.archived = a;
            chat.stamps.archived = now;
        }
        if let Some(p) = patch.pinned {
            chat.pinned = p;
            chat.stamps.pinned = now;
        }
        if let Some(m) = mute {
            chat.muted_until = m;
            chat.stamps.muted = now;
        }
        chat.updated_at = chat.updated_at.max(now);
    }
    store.save(&party)?;
    store.commit()?;
    publish(
        "chats.update",
        &ChatUpdated {
            jid: party.jid(),
            lid: party.other_lid(),
            archived: patch.archived,
            pinned: patch.pinned,
            muted_until: mute.map(|m| m.unwrap_or(0)),
            unread_count: None,
            source: "api",
        },
    )?;
    answer(req, &party, now)
}

fn delete_chat(req: &Request) -> Result<(), ApiError> {
    let jid = cid(req)?;
    let sync = bool_query(req, "sync")? == Some(true);
    let mut store = ChatStore::new();
    let mut party = stored_chat(&store, &jid)?;
    if sync {
        wa::delete_chat(party.jid())?;
    }
    store.delete_chat(&mut party, now_ms())?;
    store.commit()?;
    publish(
        "chats.delete",
        &ChatDeleted {
            jid: party.jid(),
            lid: party.other_lid(),
            source: "api",
        },
    )
}

fn read_chat(req: &Request) -> Result<Response, ApiError> {
    let jid = cid(req)?;
    let body: ReadRequest = req.json()?;
    let mut store = ChatStore::new();
    let mut party = stored_chat(&store, &jid)?;
    if body.receipts == Some(true) {
        send_receipts(&party)?;
    }
    let now = now_ms();
    if let Some(chat) = party.chat.as_mut() {
        chat.unread_count = 0;
        chat.receipts = 0;
        chat.stamps.read = chat.stamps.read.max(now);
        chat.updated_at = chat.updated_at.max(now);
    }
    store.clear_unread(party.id)?;
    store.save(&party)?;
    store.commit()?;
    publish(
        "chats.update",
        &ChatUpdated {
            jid: party.jid(),
            lid: party.other_lid(),
            archived: None,
            pinned: None,
            muted_until: None,
            unread_count: Some(0),
            source: "api",
        },
    )?;
    answer(req, &party, now)
}

/// Read receipts for the latest unread incoming messages, one call per address the
/// messages came by (a DM may have been written to by LID and by phone JID). With none
/// known the call is still made (with no messages), so the answer says whether the
/// session is connected either way.
fn send_receipts(party: &Party) -> Result<(), ApiError> {
    let unread = store::latest_unread(party.id)?;
    let mut by_chat: Vec<(String, Vec<MessageKey>)> = Vec::new();
    for u in unread {
        let key = MessageKey {
            chat: u.chat.clone(),
            id: u.id,
            sender: u.sender,
        };
        match by_chat.iter_mut().find(|(c, _)| *c == u.chat) {
            Some((_, keys)) => keys.push(key),
            None => by_chat.push((u.chat, vec![key])),
        }
    }
    if by_chat.is_empty() {
        by_chat.push((party.jid().to_owned(), Vec::new()));
    }
    for (chat, keys) in by_chat {
        wa::mark_read(&chat, &keys)?;
    }
    Ok(())
}

fn set_chat_presence(req: &Request) -> Result<(), ApiError> {
    let jid = cid(req)?;
    let body: PresenceRequest = req.json()?;
    let state = match body.state {
        Presence::Composing => ChatState::Composing,
        Presence::Recording => ChatState::Recording,
        Presence::Paused => ChatState::Paused,
    };
    Ok(wa::send_chat_state(&jid.to_string(), state)?)
}

struct Chats;

impl Plugin for Chats {
    fn manifest() -> Manifest {
        let base = "/sessions/{session}/chats";
        let route = |method: fn(&str, Capability, &str) -> Route, path: &str, cap, id: &str| {
            method(&format!("{base}{path}"), cap, id)
        };
        Manifest::new("chats", env!("CARGO_PKG_VERSION"))
            .route(
                route(Route::get, "", Capability::Read, "listChats")
                    .summary("List stored chats: pinned first, then latest message first (STORED)")
                    .query(
                        "archived",
                        "`true` or `false`: only (un)archived chats",
                        false,
                    )
                    .query("type", "`dm` or `group`", false)
                    .query(
                        "unread",
                        "`true`: only chats with unread messages; `false`: only read ones",
                        false,
                    )
                    .query(
                        "q",
                        "case-insensitive substring of the name, or digits of the number",
                        false,
                    )
                    .paged()
                    .response::<Page<ChatView<'static>>>(),
                list_chats,
            )
            .route(
                route(Route::get, "/{cid}", Capability::Read, "getChat")
                    .summary("One stored chat, by user JID, LID or group JID (STORED)")
                    .response::<ChatView<'static>>(),
                get_chat,
            )
            .route(
                route(Route::patch, "/{cid}", Capability::Send, "updateChat")
                    .summary("Archive, pin or mute a chat (STORED; LIVE with sync)")
                    .description(
                        "Partial: fields left out stay. Changes only the gateway's view unless \
                         `sync` is true, which also applies them on WhatsApp so the phone \
                         follows (501 when the session is not connected). Validation errors \
                         answer 422.",
                    )
                    .request::<ChatPatch>()
                    .response::<ChatView<'static>>(),
                update_chat,
            )
            .route(
                route(Route::delete, "/{cid}", Capability::Send, "deleteChat")
                    .summary("Delete a chat and its stored messages (STORED; LIVE with sync=true)")
                    .description(
                        "The chat comes back on new activity. `?sync=true` also deletes it on \
                         WhatsApp (501 when the session is not connected).",
                    )
                    .query("sync", "`true`: also delete the chat on WhatsApp", false)
                    .status(204),
                delete_chat,
            )
            .route(
                route(Route::post, "/{cid}/read", Capability::Send, "readChat")
                    .summary("Mark a chat read (STORED; LIVE with receipts)")
                    .description(
                        "Sets `unreadCount` to 0; idempotent. `receipts: true` also sends read \
                         receipts for the latest 500 unread incoming messages the gateway \
                         knows (501 when the session is not connected).",
                    )
                    .request::<ReadRequest>()
                    .response::<ChatView<'static>>(),
                read_chat,
            )
            .route(
                route(
                    Route::put,
                    "/{cid}/presence",
                    Capability::Send,
                    "setChatPresence",
                )
                .summary("Show typing or recording in a chat (LIVE)")
                .description(
                    "Lasts about 25 s on WhatsApp; send it again to keep it. The chat \
                         need not be stored.",
                )
                .request::<PresenceRequest>()
                .status(204),
                set_chat_presence,
            )
            .on("chats.upsert", events::chats_upsert)
            .on("chats.update", events::chats_update)
            .on("chats.delete", events::chats_delete)
            .on("contacts.upsert", events::contacts_upsert)
            .on("groups.upsert", events::groups_upsert)
            .on("lid.mapping", events::lid_mapping)
            .on("message", events::message)
            .on("message.status", events::message_status)
            .on("history.sync", events::history_sync)
    }
}

gateway_sdk::export!(Chats);
