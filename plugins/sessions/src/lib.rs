//! The `sessions` plugin: the 11 session operations of API.md §2, on top of the host's
//! session-control interface (which scopes every call to the caller's organization).

mod qr;
#[cfg(test)]
mod tests;

use gateway_sdk::sessions::{self, Session, SessionOptions, SessionView};
use gateway_sdk::{
    ApiError, Capability, IntoResponse, Json, JsonSchema, Manifest, Page, Plugin, Request,
    Response, Route, page_sorted,
};
use serde::{Deserialize, Serialize};

/// The body of createSession.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateSession {
    #[schemars(length(max = 100))]
    label: Option<String>,
    auto_read: Option<bool>,
    presence_typing: Option<bool>,
    /// Connect at once.
    #[serde(default)]
    start: bool,
}

/// The body of sessionPairingCode.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PairingCodeRequest {
    /// Digits with country code, no `+`. Read as any JSON value so a number is refused
    /// naming the field, like any other bad phone.
    #[schemars(with = "String", regex(pattern = "^[1-9][0-9]{6,14}$"))]
    phone: serde_json::Value,
}

/// A QR code or pair code with its expiry.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CodeView {
    code: String,
    /// Epoch ms.
    expires_at: u64,
}

/// The paired account of a session.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Me {
    session_id: String,
    status: String,
    connected: bool,
    phone_number: Option<String>,
    wa_jid: Option<String>,
    wa_lid: Option<String>,
    push_name: Option<String>,
}

type SessionAnswer = Result<Json<SessionView>, ApiError>;

fn session_answer(s: Session) -> SessionAnswer {
    Ok(Json(SessionView::from(s)))
}

fn page_of(mut all: Vec<Session>, req: &Request) -> Result<Json<Page<SessionView>>, ApiError> {
    let page = req.page()?;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let p = page_sorted(&all, |s| s.id.as_bytes(), &page);
    Ok(Json(p.map(|s| SessionView::from(s.clone()))))
}

fn list_sessions(req: &Request) -> Result<Json<Page<SessionView>>, ApiError> {
    page_of(sessions::list()?, req)
}

fn create_session(req: &Request) -> SessionAnswer {
    let b: CreateSession = req.json()?;
    if b.label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(ApiError::invalid_field(
            "label",
            "label must be at most 100 characters",
        ));
    }
    session_answer(sessions::create(&SessionOptions {
        label: b.label,
        auto_read: b.auto_read,
        presence_typing: b.presence_typing,
        start: b.start,
    })?)
}

fn get_session(req: &Request) -> SessionAnswer {
    session_answer(sessions::get(req.session_id()?)?)
}

fn delete_session(req: &Request) -> Result<(), ApiError> {
    Ok(sessions::delete(req.session_id()?)?)
}

fn start_session(req: &Request) -> SessionAnswer {
    session_answer(sessions::start(req.session_id()?)?)
}

fn stop_session(req: &Request) -> SessionAnswer {
    session_answer(sessions::stop(req.session_id()?)?)
}

fn restart_session(req: &Request) -> SessionAnswer {
    session_answer(sessions::restart(req.session_id()?)?)
}

fn logout_session(req: &Request) -> SessionAnswer {
    session_answer(sessions::logout(req.session_id()?)?)
}

fn session_qr(req: &Request) -> Result<Response, ApiError> {
    let format = req.query("format").unwrap_or("json");
    if !matches!(format, "json" | "png") {
        return Err(ApiError::invalid_field(
            "format",
            "format must be json or png",
        ));
    }
    let Some(code) = sessions::qr(req.session_id()?)? else {
        return Err(ApiError::not_found(
            "no QR code yet; pairing is starting, retry shortly",
        ));
    };
    if format == "png" {
        let png = qr::render_png(&code.code)?;
        return Ok(gateway_sdk::bytes(200, "image/png", png));
    }
    let view = CodeView {
        code: code.code,
        expires_at: code.expires_at,
    };
    Ok(Json(view).into_response(200))
}

fn session_pairing_code(req: &Request) -> Result<Json<CodeView>, ApiError> {
    let b: PairingCodeRequest = req.json()?;
    let phone = b
        .phone
        .as_str()
        .ok_or_else(|| ApiError::invalid_field("phone", "phone must be a string of digits"))?;
    let digits = gateway_sdk::jid::parse_phone(phone, false)
        .map_err(|e| ApiError::invalid_field("phone", e.to_string()))?;
    let code = sessions::request_pairing_code(req.session_id()?, &digits)?;
    Ok(Json(CodeView {
        code: code.code,
        expires_at: code.expires_at,
    }))
}

fn session_me(req: &Request) -> Result<Json<Me>, ApiError> {
    let s = sessions::get(req.session_id()?)?;
    if s.wa_jid.is_none() {
        return Err(ApiError::not_found("session has never been paired"));
    }
    Ok(Json(Me {
        session_id: s.id,
        connected: s.status == "working",
        status: s.status,
        phone_number: s.phone_number,
        wa_jid: s.wa_jid,
        wa_lid: s.wa_lid,
        push_name: s.push_name,
    }))
}

/// A session route: every one needs `manage`.
fn op(method: fn(&str, Capability, &str) -> Route, path: &str, id: &str, summary: &str) -> Route {
    method(path, Capability::Manage, id).summary(summary)
}

struct Sessions;

impl Plugin for Sessions {
    fn manifest() -> Manifest {
        let one = "/sessions/{session}";
        Manifest::new("sessions", env!("CARGO_PKG_VERSION"))
            .route(
                op(
                    Route::get,
                    "/sessions",
                    "listSessions",
                    "List the organization's sessions",
                )
                .paged()
                .response::<Page<SessionView>>(),
                list_sessions,
            )
            .route(
                op(
                    Route::post,
                    "/sessions",
                    "createSession",
                    "Create a session (stopped, or connecting with start: true)",
                )
                .request::<CreateSession>()
                .response::<SessionView>()
                .status(201),
                create_session,
            )
            .route(
                op(Route::get, one, "getSession", "Get a session").response::<SessionView>(),
                get_session,
            )
            .route(
                op(
                    Route::delete,
                    one,
                    "deleteSession",
                    "Delete a session and its stored data",
                )
                .status(204),
                delete_session,
            )
            .route(
                op(
                    Route::post,
                    "/sessions/{session}:start",
                    "startSession",
                    "Start connecting (no-op when started)",
                )
                .response::<SessionView>(),
                start_session,
            )
            .route(
                op(
                    Route::post,
                    "/sessions/{session}:stop",
                    "stopSession",
                    "Disconnect, keeping the pairing (no-op when stopped)",
                )
                .response::<SessionView>(),
                stop_session,
            )
            .route(
                op(
                    Route::post,
                    "/sessions/{session}:restart",
                    "restartSession",
                    "Stop then start, keeping the pairing",
                )
                .response::<SessionView>(),
                restart_session,
            )
            .route(
                op(
                    Route::post,
                    "/sessions/{session}:logout",
                    "logoutSession",
                    "Unlink the device; the session row stays",
                )
                .response::<SessionView>(),
                logout_session,
            )
            .route(
                op(
                    Route::get,
                    "/sessions/{session}/qr",
                    "sessionQR",
                    "The QR code to scan (starts pairing; 404 until a code exists)",
                )
                .query("format", "`png` for an image/png answer", false)
                .response::<CodeView>(),
                session_qr,
            )
            .route(
                op(
                    Route::post,
                    "/sessions/{session}/pairing-code",
                    "sessionPairingCode",
                    "A code to type on the phone instead of scanning",
                )
                .request::<PairingCodeRequest>()
                .response::<CodeView>(),
                session_pairing_code,
            )
            .route(
                op(
                    Route::get,
                    "/sessions/{session}/me",
                    "sessionMe",
                    "The paired account (404 when never paired)",
                )
                .response::<Me>(),
                session_me,
            )
    }
}

gateway_sdk::export!(Sessions);
