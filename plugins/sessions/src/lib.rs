//! The `sessions` plugin: the 11 session operations of API.md §2, on top of the host's
//! session-control interface (which scopes every call to the caller's organization).

mod qr;

use gateway_sdk::session_control::{self as sc, Session, SessionOptions};
use gateway_sdk::{
    ApiError, Capability, Manifest, Page, Plugin, Request, RequestExt, Response, Route, json,
};
use serde::{Deserialize, Serialize};

/// The session object of API.md §2 (plus `statusReason`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionView {
    id: String,
    organization_id: String,
    label: Option<String>,
    status: String,
    status_reason: Option<String>,
    phone_number: Option<String>,
    wa_jid: Option<String>,
    wa_lid: Option<String>,
    gateway_id: String,
    is_admin_session: bool,
    auto_read: bool,
    presence_typing: bool,
    rate_per_min: u32,
    rate_per_hour: u32,
    created_by_user_id: String,
    created_at: u64,
    updated_at: u64,
    last_connected_at: Option<u64>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView {
            id: s.id,
            organization_id: s.organization_id,
            label: s.label,
            status: s.status,
            status_reason: s.status_reason,
            phone_number: s.phone_number,
            wa_jid: s.wa_jid,
            wa_lid: s.wa_lid,
            gateway_id: s.gateway_id,
            is_admin_session: s.is_admin_session,
            auto_read: s.auto_read,
            presence_typing: s.presence_typing,
            rate_per_min: s.rate_per_min,
            rate_per_hour: s.rate_per_hour,
            created_by_user_id: s.created_by_user_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            last_connected_at: s.last_connected_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    label: Option<String>,
    auto_read: Option<bool>,
    presence_typing: Option<bool>,
    #[serde(default)]
    start: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairingBody {
    phone: serde_json::Value,
}

fn session_schema() -> serde_json::Value {
    let s = |t: &str| json!({"type": t});
    let ns = json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "required": ["id", "organizationId", "status", "gatewayId", "createdAt", "updatedAt"],
        "properties": {
            "id": {"type": "string", "description": "ULID"},
            "organizationId": s("string"),
            "label": ns,
            "status": {"type": "string", "enum": ["stopped", "starting", "scan_qr_code", "working", "failed"]},
            "statusReason": ns,
            "phoneNumber": ns,
            "waJid": ns,
            "waLid": ns,
            "gatewayId": s("string"),
            "isAdminSession": s("boolean"),
            "autoRead": s("boolean"),
            "presenceTyping": s("boolean"),
            "ratePerMin": s("integer"),
            "ratePerHour": s("integer"),
            "createdByUserId": s("string"),
            "createdAt": s("integer"),
            "updatedAt": s("integer"),
            "lastConnectedAt": {"type": ["integer", "null"]}
        }
    })
}

fn code_schema() -> serde_json::Value {
    json!({"type": "object", "required": ["code", "expiresAt"],
           "properties": {"code": {"type": "string"}, "expiresAt": {"type": "integer"}}})
}

fn op(method: &str, path: &str, id: &str, summary: &str) -> Route {
    Route::new(method, path, Capability::Manage, id).summary(summary)
}

struct Sessions;

impl Plugin for Sessions {
    fn manifest() -> Manifest {
        let session = session_schema();
        Manifest::new("sessions", env!("CARGO_PKG_VERSION"))
            .route(
                op("GET", "/sessions", "listSessions", "List the organization's sessions")
                    .query("limit", "Page size, 1-200 (default 50)", false)
                    .query("cursor", "nextCursor of the previous page", false)
                    .response_schema(json!({"type": "object", "properties": {
                        "data": {"type": "array", "items": session.clone()},
                        "nextCursor": {"type": ["string", "null"]}}})),
            )
            .route(
                op("POST", "/sessions", "createSession", "Create a session (stopped, or connecting with start: true)")
                    .request_schema(json!({"type": "object", "additionalProperties": false, "properties": {
                        "label": {"type": "string", "maxLength": 100},
                        "autoRead": {"type": "boolean"},
                        "presenceTyping": {"type": "boolean"},
                        "start": {"type": "boolean"}}}))
                    .response_schema(session.clone())
                    .status(201),
            )
            .route(op("GET", "/sessions/{session}", "getSession", "Get a session").response_schema(session.clone()))
            .route(op("DELETE", "/sessions/{session}", "deleteSession", "Delete a session and its stored data").status(204))
            .route(op("POST", "/sessions/{session}:start", "startSession", "Start connecting (no-op when started)").response_schema(session.clone()))
            .route(op("POST", "/sessions/{session}:stop", "stopSession", "Disconnect, keeping the pairing (no-op when stopped)").response_schema(session.clone()))
            .route(op("POST", "/sessions/{session}:restart", "restartSession", "Stop then start, keeping the pairing").response_schema(session.clone()))
            .route(op("POST", "/sessions/{session}:logout", "logoutSession", "Unlink the device; the session row stays").response_schema(session.clone()))
            .route(
                op("GET", "/sessions/{session}/qr", "sessionQR", "The QR code to scan (starts pairing; 404 until a code exists)")
                    .query("format", "`png` for an image/png answer", false)
                    .response_schema(code_schema()),
            )
            .route(
                op("POST", "/sessions/{session}/pairing-code", "sessionPairingCode", "A code to type on the phone instead of scanning")
                    .request_schema(json!({"type": "object", "required": ["phone"], "properties": {
                        "phone": {"type": "string", "pattern": "^[0-9]{7,15}$", "description": "digits with country code, no +"}}}))
                    .response_schema(code_schema()),
            )
            .route(
                Route::get("/admin/sessions", Capability::PlatformAdmin, "adminListSessions")
                    .summary("Every organization's sessions (super_admin only)")
                    .query("limit", "Page size, 1-200 (default 50)", false)
                    .query("cursor", "nextCursor of the previous page", false)
                    .response_schema(json!({"type": "object", "properties": {
                        "data": {"type": "array", "items": session.clone()},
                        "nextCursor": {"type": ["string", "null"]}}})),
            )
            .route(
                op("GET", "/sessions/{session}/me", "sessionMe", "The paired account (404 when never paired)")
                    .response_schema(json!({"type": "object", "properties": {
                        "sessionId": {"type": "string"}, "status": {"type": "string"}, "connected": {"type": "boolean"},
                        "phoneNumber": {"type": ["string", "null"]}, "waJid": {"type": ["string", "null"]},
                        "waLid": {"type": ["string", "null"]}, "pushName": {"type": ["string", "null"]}}})),
            )
    }

    fn handle(req: Request) -> Result<Response, ApiError> {
        let view = |s: Session| gateway_sdk::ok(&SessionView::from(s));
        match req.operation_id.as_str() {
            "listSessions" | "adminListSessions" => {
                let page = req.page()?;
                let mut all = if req.operation_id == "adminListSessions" {
                    sc::list_all_sessions()?
                } else {
                    sc::list_sessions()?
                };
                all.sort_by(|a, b| a.id.cmp(&b.id));
                let start = match &page.after {
                    Some(after) => all.partition_point(|s| s.id.as_bytes() <= after.as_slice()),
                    None => 0,
                };
                let rest = &all[start..];
                let limit = page.limit as usize;
                let next_cursor = (rest.len() > limit)
                    .then(|| gateway_sdk::encode_cursor(rest[limit - 1].id.as_bytes()));
                let data: Vec<SessionView> = rest
                    .iter()
                    .take(limit)
                    .cloned()
                    .map(SessionView::from)
                    .collect();
                Ok(gateway_sdk::ok(&Page { data, next_cursor }))
            }
            "createSession" => {
                let b: CreateBody = req.json()?;
                if b.label.as_ref().is_some_and(|l| l.chars().count() > 100) {
                    return Err(ApiError::invalid_field(
                        "label",
                        "label must be at most 100 characters",
                    ));
                }
                let s = sc::create(&SessionOptions {
                    label: b.label,
                    auto_read: b.auto_read,
                    presence_typing: b.presence_typing,
                    start: b.start,
                })?;
                Ok(gateway_sdk::created(&SessionView::from(s)))
            }
            "getSession" => Ok(view(sc::get(req.session_id()?)?)),
            "deleteSession" => {
                sc::delete(req.session_id()?)?;
                Ok(gateway_sdk::no_content())
            }
            "startSession" => Ok(view(sc::start(req.session_id()?)?)),
            "stopSession" => Ok(view(sc::stop(req.session_id()?)?)),
            "restartSession" => Ok(view(sc::restart(req.session_id()?)?)),
            "logoutSession" => Ok(view(sc::logout(req.session_id()?)?)),
            "sessionQR" => {
                let format = req.query("format").unwrap_or("json");
                if !matches!(format, "json" | "png") {
                    return Err(ApiError::invalid_field(
                        "format",
                        "format must be json or png",
                    ));
                }
                let Some(code) = sc::qr(req.session_id()?)? else {
                    return Err(ApiError::not_found(
                        "no QR code yet; pairing is starting, retry shortly",
                    ));
                };
                if format == "png" {
                    let png = qr::render_png(&code.code)?;
                    return Ok(gateway_sdk::bytes(200, "image/png", png));
                }
                Ok(gateway_sdk::ok(
                    &json!({"code": code.code, "expiresAt": code.expires_at}),
                ))
            }
            "sessionPairingCode" => {
                let b: PairingBody = req.json()?;
                let phone = b.phone.as_str().ok_or_else(|| {
                    ApiError::invalid_field("phone", "phone must be a string of digits")
                })?;
                let digits = gateway_sdk::jid::parse_phone(phone, false)
                    .map_err(|e| ApiError::invalid_field("phone", e.to_string()))?;
                let code = sc::request_pairing_code(req.session_id()?, &digits)?;
                Ok(gateway_sdk::ok(
                    &json!({"code": code.code, "expiresAt": code.expires_at}),
                ))
            }
            "sessionMe" => {
                let s = sc::get(req.session_id()?)?;
                if s.wa_jid.is_none() {
                    return Err(ApiError::not_found("session has never been paired"));
                }
                Ok(gateway_sdk::ok(&json!({
                    "sessionId": s.id,
                    "status": s.status,
                    "connected": s.status == "working",
                    "phoneNumber": s.phone_number,
                    "waJid": s.wa_jid,
                    "waLid": s.wa_lid,
                    "pushName": s.push_name,
                })))
            }
            other => Err(ApiError::not_found(format!("unknown operation {other}"))),
        }
    }
}

gateway_sdk::export!(Sessions);
