//! The HTTP side of the two realtime routes: `POST /realtime/ticket` reads and checks the
//! ticket request; `GET /realtime?ticket=` checks the WebSocket handshake and the ticket,
//! answers 101 and hands the connection to a stream task. Failures are
//! [`RealtimeError`]s, written as envelopes by the HTTP layer.

use super::{Audience, RealtimeError};
use crate::app::App;
use crate::auth::Caller;
use crate::events::filter::{EventFilter, StreamFilter};
use crate::http::Response;
use crate::http::envelope::json_response;
use bytes::Bytes;
use http::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TicketRequest {
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TicketAnswer<'a> {
    ticket: &'a str,
    url: &'a str,
    expires_at: u64,
}

/// Event names the loaded plugins may emit (their `plugins.emits` grants), which a
/// filter may name besides the catalog.
fn emitted(app: &App) -> Vec<String> {
    app.plugins
        .catalog()
        .plugins
        .keys()
        .flat_map(|name| app.config.emits_for(name))
        .collect()
}

/// `evt_<ULID>`, the shape of every event id.
fn is_event_id(id: &str) -> bool {
    id.strip_prefix("evt_")
        .is_some_and(|u| u.len() == 26 && ulid::Ulid::from_string(u).is_ok())
}

/// A ticket request body: a JSON object (an empty body is `{}`) of the route's shape.
fn ticket_request<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, RealtimeError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    let invalid = |e: serde_json::Error| {
        RealtimeError::invalid("body", format!("request body is not valid: {e}"))
    };
    // An object only: serde would also read a struct from a JSON array.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    if !value.is_object() {
        return Err(RealtimeError::invalid(
            "body",
            "request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(invalid)
}

/// The `events` filter of a ticket request (default every event).
fn event_filter(app: &App, names: Option<&[String]>) -> Result<EventFilter, RealtimeError> {
    match names {
        None => Ok(EventFilter::all()),
        Some(names) => EventFilter::parse(names, &emitted(app))
            .map_err(|m| RealtimeError::invalid("events", m)),
    }
}

/// What a minted ticket opens, and for whom.
struct TicketSpec {
    audience: Audience,
    filter: StreamFilter,
    after: Option<String>,
}

/// A ticket request as the HTTP layer hands it over: the caller, when its credential
/// stops being valid (a JWT's `exp` plus leeway, epoch ms; the stream ends then), the
/// request's `Host` (for the stream URL when the listener has no usable address), and the
/// body.
pub(crate) struct TicketCall<'a> {
    pub caller: &'a Caller,
    pub credential_expires_at: Option<u64>,
    pub host: Option<&'a str>,
    pub body: &'a [u8],
}

/// Mints the ticket and writes the answer.
fn mint_answer(
    app: &App,
    call: &TicketCall<'_>,
    spec: TicketSpec,
) -> Result<Response, RealtimeError> {
    let (secret, ticket) = app.realtime.mint(
        spec.audience,
        call.caller.principal.clone(),
        call.credential_expires_at,
        spec.filter,
        spec.after,
    )?;
    let url = app.realtime.stream_url(&secret, call.host);
    Ok(json_response(
        200,
        &TicketAnswer {
            ticket: &secret,
            url: &url,
            expires_at: ticket.expires_at,
        },
    ))
}

/// `POST /realtime/ticket`: mints a ticket for the caller (API.md §7.2).
pub(crate) fn create_ticket(app: &App, call: TicketCall<'_>) -> Result<Response, RealtimeError> {
    let caller = call.caller;
    let req: TicketRequest = ticket_request(call.body)?;
    let events = event_filter(app, req.events.as_deref())?;
    if let Some(id) = &req.session_id
        && app
            .sessions
            .registry()
            .get_owned(id, &caller.organization)
            .is_none()
    {
        return Err(RealtimeError::invalid(
            "sessionId",
            "sessionId is not a session of your organization",
        ));
    }
    if let Some(after) = &req.after
        && !is_event_id(after)
    {
        return Err(RealtimeError::invalid(
            "after",
            "after must be an event id (evt_<ULID>)",
        ));
    }
    let spec = TicketSpec {
        audience: Audience::from(&*caller.organization),
        filter: StreamFilter {
            events,
            session: req.session_id,
        },
        after: req.after,
    };
    mint_answer(app, &call, spec)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AdminTicketRequest {
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// `POST /admin/realtime/ticket` (API.md §8 adminEventsTicket): a platform admin's ticket
/// for the events of one organization, of one session (of any organization), or — with
/// neither — of every organization (the dashboard's event monitor).
pub(crate) fn create_admin_ticket(
    app: &App,
    call: TicketCall<'_>,
) -> Result<Response, RealtimeError> {
    let req: AdminTicketRequest = ticket_request(call.body)?;
    let events = event_filter(app, req.events.as_deref())?;
    let organization = req.organization.filter(|o| !o.is_empty());
    let session_org = match &req.session_id {
        Some(id) => {
            let record = app.sessions.registry().get(id).filter(|r| {
                organization
                    .as_deref()
                    .is_none_or(|o| r.organization_id == o)
            });
            let record = record.ok_or_else(|| {
                RealtimeError::invalid(
                    "sessionId",
                    "sessionId is not a session of that organization",
                )
            })?;
            Some(record.organization_id.clone())
        }
        None => None,
    };
    let audience = match organization.or(session_org) {
        Some(o) => Audience::Organization(o),
        None => Audience::Platform,
    };
    tracing::info!(principal = %call.caller.principal, %audience, "platform admin ticket minted");
    let spec = TicketSpec {
        audience,
        filter: StreamFilter {
            events,
            session: req.session_id,
        },
        after: None,
    };
    mint_answer(app, &call, spec)
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn header_has(req: &http::Request<Incoming>, name: http::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The `Sec-WebSocket-Key` of a well-formed WebSocket upgrade request (RFC 6455 §4.2.1).
fn websocket_key(req: &http::Request<Incoming>) -> Result<HeaderValue, RealtimeError> {
    if req.version() != http::Version::HTTP_11 {
        return Err(RealtimeError::NotWebSocket(
            "the stream is a WebSocket upgrade over HTTP/1.1",
        ));
    }
    if !header_has(req, UPGRADE, "websocket") || !header_has(req, CONNECTION, "upgrade") {
        return Err(RealtimeError::NotWebSocket(
            "this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket",
        ));
    }
    if req
        .headers()
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(RealtimeError::NotWebSocket(
            "Sec-WebSocket-Version must be 13",
        ));
    }
    req.headers()
        .get(http::header::SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
        .cloned()
        .ok_or(RealtimeError::NotWebSocket("Sec-WebSocket-Key is missing"))
}

/// `GET /realtime?ticket=`: the ticket is checked before anything else (401), then the
/// handshake (400, the ticket still unused), then the ticket is used and the stream
/// admitted (429 at the cap). `organization` is set for the access log once known.
pub(crate) fn connect(
    app: &App,
    mut req: http::Request<Incoming>,
    organization: &mut Option<Arc<str>>,
) -> Result<Response, RealtimeError> {
    let secret = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("ticket="))
        .map(|t| {
            percent_encoding::percent_decode_str(t)
                .decode_utf8_lossy()
                .into_owned()
        })
        .ok_or(RealtimeError::BadTicket)?;
    if !app.realtime.ticket_is_valid(&secret) {
        return Err(RealtimeError::BadTicket);
    }
    let key = websocket_key(&req)?;
    let sub = app.realtime.open(&secret)?;
    *organization = Some(Arc::from(sub.audience.to_string()));
    let upgrade = hyper::upgrade::on(&mut req);
    // The stream stays on the thread that serves its connection, as the connection would.
    tokio::spawn(super::stream::serve(
        upgrade,
        sub,
        app.realtime.config().clone(),
    ));
    let mut resp = http::Response::new(crate::http::Body::new(Bytes::new()));
    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(resp)
}
