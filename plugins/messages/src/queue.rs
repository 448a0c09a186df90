//! Handing message writes to the session's outbox (API.md §6.3) — the `async` flag, the
//! Idempotency-Key, the request fingerprint and the 200/202 answer — and the outbox's own
//! routes: getOutboxItem, listOutbox, cancelOutboxItem.

use crate::model::SendResultView;
use crate::store::MessageStore;
use gateway_sdk::outbox::{self, Outbound, SendMode, SendStatus, SubmitOptions, Submitted};
use gateway_sdk::{ApiError, Json, Page, Request, Response, canonical, parse_limit};
use serde_json::Value;

/// `?async=true` answers 202 at once; the default waits for the send.
fn mode(req: &Request) -> Result<SendMode, ApiError> {
    match req.query("async").map(str::trim) {
        None | Some("") | Some("false") => Ok(SendMode::Synchronous),
        Some("true") => Ok(SendMode::Asynchronous),
        Some(_) => Err(ApiError::invalid_field(
            "async",
            "async must be true or false",
        )),
    }
}

/// The longest Idempotency-Key accepted.
const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header: 1–255 visible ASCII characters.
fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(key) = req.header("idempotency-key") else {
        return Ok(None);
    };
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Submits a validated message. `input` is what the caller asked for (the body, and the
/// path and query values that name a target): with the operation, session and `async`
/// flag it is the fingerprint an Idempotency-Key is held to.
pub(crate) fn submit(
    req: &Request,
    message: &Outbound,
    input: &Value,
) -> Result<Submitted, ApiError> {
    let mode = mode(req)?;
    let idempotency_key = idempotency_key(req)?;
    let fingerprint = canonical::fingerprint(
        req.operation_id(),
        req.session_id()?,
        mode == SendMode::Asynchronous,
        input,
    );
    let options = SubmitOptions {
        mode,
        idempotency_key,
        fingerprint,
    };
    Ok(outbox::submit(message, &options)?)
}

/// Checks the `async` flag and the Idempotency-Key before any other work, so a bad
/// header is refused whatever the body holds.
pub(crate) fn check_headers(req: &Request) -> Result<(), ApiError> {
    mode(req)?;
    idempotency_key(req)?;
    Ok(())
}

/// The answer to an accepted write: the status the outbox decided (200 sent or failed,
/// 202 pending; replays repeat the first answer's) with the SendResult.
pub(crate) fn answer(submitted: &Submitted) -> Response {
    let body = serde_json::to_vec(&SendResultView::of(submitted)).unwrap_or_default();
    let status = match submitted.http_status {
        s @ (200 | 202) => s,
        _ => 200,
    };
    gateway_sdk::bytes(status, "application/json", body)
}

fn outbox_id<'r>(req: &'r Request) -> Result<&'r str, ApiError> {
    let id = req.param("outboxId")?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field("outboxId", "not an outbox id"));
    }
    Ok(id)
}

pub(crate) fn get_outbox_item(req: &Request) -> Result<Json<SendResultView>, ApiError> {
    let id = outbox_id(req)?;
    match outbox::get(id)? {
        Some(r) => Ok(Json(SendResultView::new(&r, false))),
        None => Err(ApiError::not_found(format!(
            "no outbox item {id} in this session"
        ))),
    }
}

pub(crate) fn list_outbox(req: &Request) -> Result<Json<Page<SendResultView>>, ApiError> {
    let status = match req.query("status").filter(|s| !s.is_empty()) {
        Some(s) => Some(SendStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "status must be pending, sent, delivered, read or failed",
            )
        })?),
        None => None,
    };
    let limit = parse_limit(req.query("limit"))?;
    let cursor = req.query("cursor").filter(|c| !c.is_empty());
    let (items, next_cursor) = outbox::list(status, cursor, limit)?;
    Ok(Json(Page {
        data: items
            .iter()
            .map(|r| SendResultView::new(r, false))
            .collect(),
        next_cursor,
    }))
}

/// Cancels a pending item; its stored message (or waiting action) follows at once.
pub(crate) fn cancel_outbox_item(req: &Request) -> Result<Json<SendResultView>, ApiError> {
    let id = outbox_id(req)?;
    let result = outbox::cancel(id)?;
    let mut store = MessageStore::new();
    store.take_change(&result.wa_message_id)?;
    if let Some(mut m) = store.find(&result.chat, &result.wa_message_id)? {
        m.acknowledge_send(&result);
        store.save(&mut m)?;
    }
    store.commit()?;
    Ok(Json(SendResultView::new(&result, false)))
}
