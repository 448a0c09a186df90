//! The `/api/v1` pipeline: route → authenticate → authorize → tenancy → body → handler,
//! then one access-log line and the request metrics. Every failure on the way is an
//! [`ApiError`] written by the envelope layer. The realtime stream is the one route whose
//! credential is not a header: its ticket is checked by `realtime::routes` instead.

use super::envelope::error_response;
use super::{Response, apikeys, body, media, request_id};
use crate::app::App;
use crate::auth::{Caller, Capability, Credential, Principal};
use crate::hostapi::CallContext;
use crate::hostapi::convert::api_error;
use crate::hostapi::incoming::{ServedRequest, query_pairs};
use crate::metrics::{FaultLabels, LatencyLabels, RequestLabels};
use crate::plugins::{
    BLOB_HEADER, BuiltinRoute, HOST_OWNER, LoadedPlugin, PluginAnswer, PluginFault, RouteTarget,
};
use bytes::Bytes;
use gateway_sdk::{ApiError, ErrorCode};
use http::HeaderValue;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const PREFIX: &str = "/api/v1";

/// What the access log and metrics record about one request.
#[derive(Default)]
struct Trace {
    route: Option<Arc<str>>,
    owner: Option<Arc<str>>,
    organization: Option<Arc<str>>,
}

/// Serves one request of the public listener.
pub async fn handle(app: Arc<App>, req: http::Request<Incoming>) -> Response {
    let started = Instant::now();
    let request_id = request_id::from_headers(req.headers());
    let method = crate::metrics::method_label(req.method());
    let mut trace = Trace::default();
    let mut resp = match dispatch(&app, req, &request_id, &mut trace).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(request_id::HEADER, v);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    // The labels are built once and moved on: a metric family clones them only the first
    // time it sees them.
    let counted = RequestLabels {
        method,
        route: trace.route.unwrap_or_else(|| Arc::from("unmatched")),
        status,
        plugin: trace.owner.unwrap_or_else(|| Arc::from(HOST_OWNER)),
    };
    app.metrics.requests.get_or_create(&counted).inc();
    let timed = LatencyLabels {
        route: counted.route,
        plugin: counted.plugin,
    };
    app.metrics
        .latency
        .get_or_create(&timed)
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: crate::logs::ACCESS_TARGET,
        method,
        route = &*timed.route,
        status,
        // Whole microseconds: `0.248`, not `0.24819300000000002`.
        duration_ms = elapsed.as_micros() as f64 / 1000.0,
        request_id,
        org = trace.organization.as_deref().unwrap_or("-"),
        plugin = &*timed.plugin,
        "request"
    );
    resp
}

async fn dispatch(
    app: &Arc<App>,
    req: http::Request<Incoming>,
    request_id: &str,
    trace: &mut Trace,
) -> Result<Response, ApiError> {
    let path = req.uri().path();
    if let Some(resp) = crate::openapi::serve_public(app, req.method(), path) {
        return Ok(resp);
    }
    let sub = path
        .strip_prefix(PREFIX)
        .filter(|s| s.starts_with('/'))
        .ok_or_else(|| ApiError::not_found(format!("no route for {path}")))?
        .to_owned();
    let limits = &app.config.limits;
    check_head_size(req.headers(), limits.max_header_bytes)?;
    let catalog = app.plugins.catalog();
    let matched = catalog.routes.find(req.method().as_str(), &sub);
    // Media uploads stream to disk under their own limit; every other body is read whole.
    let upload = matches!(
        &matched,
        Ok(m) if matches!(m.target, RouteTarget::Builtin(BuiltinRoute::UploadMedia))
    );
    let max_body = if upload {
        limits.max_media_bytes
    } else {
        limits.max_body_bytes
    };
    if let Some(len) = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max_body
    {
        return Err(body::refuse_declared(req.into_body(), len, max_body).await);
    }
    let matched = matched?;
    let target = matched.target.clone();
    trace.route = Some(matched.template.shared());
    trace.owner = Some(target.shared_owner());
    if let RouteTarget::Builtin(route) = &target
        && route.own_authentication()
    {
        // The realtime stream: its ticket stands for the credential (API.md §7.4).
        return Ok(crate::realtime::routes::connect(
            app,
            req,
            &mut trace.organization,
        )?);
    }

    let credential = Credential::from_headers(req.headers())?;
    let caller = app.auth.authenticate(credential).await?;
    trace.organization = Some(caller.organization.clone());
    authorize(&caller, target.capability())?;
    // A realtime stream outlives the request that minted its ticket: it ends when the
    // minting JWT does (within the verifier's leeway).
    let ticket_jwt_expiry = match (&target, &caller.principal) {
        (
            RouteTarget::Builtin(
                BuiltinRoute::CreateRealtimeTicket | BuiltinRoute::CreateAdminRealtimeTicket,
            ),
            Principal::User(_),
        ) => crate::auth::jwt::verified_expiry(credential.token()).map(|exp| {
            exp.saturating_add(app.config.auth.leeway_secs)
                .saturating_mul(1000)
        }),
        _ => None,
    };

    let platform_route = target.capability() == Capability::PlatformAdmin;
    let (session, organization) = match matched
        .params
        .iter()
        .find(|(k, _)| k == "session")
        .map(|(_, v)| v.clone())
    {
        Some(id) => {
            let record = resolve_session(app, &caller, &id, platform_route)?;
            // The caller's own organization (all but a platform admin's calls) is shared.
            let organization = if *record.organization_id == *caller.organization {
                caller.organization.clone()
            } else {
                tracing::info!(
                    principal = %caller.principal,
                    session = %id,
                    organization = %record.organization_id,
                    request_id,
                    "platform admin acts on another organization's session"
                );
                Arc::from(record.organization_id.as_str())
            };
            (Some(id), organization)
        }
        None => (None, caller.organization.clone()),
    };
    let params = matched.params;
    let template = matched.template.clone();

    if upload {
        let session =
            session.ok_or_else(|| ApiError::internal("the upload route has no session"))?;
        // Boxed so the rare upload's large future does not size every request's.
        return Box::pin(media::upload(&app.media, &session, req, limits)).await;
    }
    let (parts, incoming) = req.into_parts();
    let body = body::read(
        incoming,
        limits.max_body_bytes,
        Duration::from_millis(limits.body_read_timeout_ms),
    )
    .await?;

    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let ticket_call = || crate::realtime::routes::TicketCall {
        caller: &caller,
        credential_expires_at: ticket_jwt_expiry,
        host,
        body: &body,
    };
    match target {
        RouteTarget::Builtin(BuiltinRoute::CreateRealtimeTicket) => {
            Ok(crate::realtime::routes::create_ticket(app, ticket_call())?)
        }
        RouteTarget::Builtin(BuiltinRoute::CreateAdminRealtimeTicket) => Ok(
            crate::realtime::routes::create_admin_ticket(app, ticket_call())?,
        ),
        RouteTarget::Builtin(route) => apikeys::handle(
            app.auth.api_keys(),
            route,
            &caller,
            &params,
            &query_pairs(parts.uri.query()),
            &body,
        ),
        RouteTarget::Plugin { plugin, route } => {
            let ctx = CallContext {
                organization,
                created_by: caller.created_by().clone(),
                principal: caller.principal_text().clone(),
                capabilities: caller.capabilities,
                session,
                request_id: request_id.to_owned(),
                event_depth: 0,
            };
            // Handed over as the HTTP layer has it: the plugin's WIT strings are built
            // only for the parts it reads (`hostapi::incoming`).
            let request = ServedRequest {
                method: parts.method,
                route: template,
                operation_id: plugin.manifest.routes[route].operation_id.clone(),
                path: sub,
                params,
                uri: parts.uri,
                headers: parts.headers,
                body,
            };
            call_plugin(app, &plugin, ctx, route, request).await
        }
    }
}

/// The `{session}` of a request: the caller's organization's (another's reads as not
/// found, API.md §1.2). On platform-admin routes (`/admin/…`, whose callers are platform
/// admins) it is found in any organization, and the call is then scoped to that
/// session's organization (API.md §8).
fn resolve_session(
    app: &App,
    caller: &Caller,
    id: &str,
    platform_route: bool,
) -> Result<Arc<crate::sessions::SessionRecord>, ApiError> {
    let registry = app.sessions.registry();
    let found = if platform_route {
        registry.get(id)
    } else {
        registry.get_owned(id, &caller.organization)
    };
    found.ok_or_else(|| ApiError::not_found("session not found").with_detail("session", id))
}

/// Refuses callers without the route's capability; `/admin` routes need a platform admin.
fn authorize(caller: &Caller, needed: Capability) -> Result<(), ApiError> {
    if caller.capabilities.contains(needed) {
        return Ok(());
    }
    Err(match needed {
        Capability::PlatformAdmin => crate::auth::AuthError::NotPlatformAdmin.into(),
        c => crate::auth::AuthError::MissingCapability(c).into(),
    })
}

/// Request heads over the configured size are refused with 431 in the envelope.
fn check_head_size(headers: &http::HeaderMap, max: usize) -> Result<(), ApiError> {
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request headers are larger than {max} bytes"),
        )
        .with_status(431)
        .with_detail("maxBytes", max));
    }
    Ok(())
}

async fn call_plugin(
    app: &Arc<App>,
    plugin: &Arc<LoadedPlugin>,
    ctx: CallContext,
    route: usize,
    request: ServedRequest,
) -> Result<Response, ApiError> {
    let request_id = ctx.request_id.clone();
    // Boxed: the plugin call's future (the wasm call inside) is most of a request's
    // future, and every future awaiting it would otherwise carry it and copy it along.
    match Box::pin(plugin.handle(ctx, route, request)).await {
        Ok(Ok(answer)) => Ok(plugin_response(plugin, answer)),
        Ok(Err(e)) => Err(without_internals(api_error(e), plugin.name(), &request_id)),
        Err(fault) => Err(fault_error(app, plugin.name(), &request_id, &fault)),
    }
}

/// A plugin's `internal` error keeps its detail in the log, with the request id; the
/// caller gets no more than that something failed (API.md §1.3).
fn without_internals(e: ApiError, plugin: &str, request_id: &str) -> ApiError {
    if e.code != ErrorCode::Internal {
        return e;
    }
    tracing::error!(plugin, request_id, message = %e.message, details = %serde_json::Value::Object(e.details), "plugin answered internal");
    ApiError::internal("the request failed inside the gateway")
        .with_detail("requestId", request_id)
        .with_detail("plugin", plugin)
}

/// Logs a plugin fault with the plugin's name, counts it, and answers without internals.
pub(crate) fn fault_error(
    app: &App,
    plugin: &str,
    request_id: &str,
    fault: &PluginFault,
) -> ApiError {
    tracing::error!(plugin, request_id, kind = fault.kind(), error = %fault, "plugin call failed");
    app.metrics
        .plugin_faults
        .get_or_create(&FaultLabels {
            plugin: plugin.to_owned(),
            kind: fault.kind().to_owned(),
        })
        .inc();
    match fault {
        PluginFault::Capacity(_) => ApiError::new(
            ErrorCode::Unavailable,
            "the gateway is at capacity; retry shortly",
        ),
        _ => ApiError::internal("the request failed inside the gateway")
            .with_detail("requestId", request_id),
    }
    .with_detail("plugin", plugin)
}

fn plugin_response(plugin: &LoadedPlugin, answer: PluginAnswer) -> Response {
    let PluginAnswer {
        response: resp,
        blob,
    } = answer;
    if !(200..400).contains(&resp.status) {
        // Plugins report errors through `error`; a bare error status still gets the envelope.
        tracing::warn!(
            plugin = plugin.name(),
            status = resp.status,
            "plugin answered an error status without an error"
        );
        let code = ErrorCode::for_status(resp.status);
        return error_response(&ApiError::new(code, "the request failed").with_status(resp.status));
    }
    let names_blob = resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(BLOB_HEADER));
    if names_blob && blob.is_none() {
        tracing::error!(
            plugin = plugin.name(),
            "the answer names a media blob the call did not prepare"
        );
        return error_response(&ApiError::internal("the request failed inside the gateway"));
    }
    let has_body = !resp.body.is_empty() || blob.is_some();
    let body = match &blob {
        // The media the plugin prepared, streamed by the host: it never entered the plugin.
        Some(b) => Bytes::from_owner(SharedBytes(b.bytes.clone())),
        None => Bytes::from(resp.body),
    };
    let mut out = http::Response::new(super::Body::new(body));
    *out.status_mut() = http::StatusCode::from_u16(resp.status).unwrap_or(http::StatusCode::OK);
    for (k, v) in resp.headers {
        let Ok(name) = http::HeaderName::from_bytes(k.as_bytes()) else {
            continue;
        };
        if is_reserved_response_header(&name) || name.as_str() == BLOB_HEADER {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&v) {
            out.headers_mut().append(name, value);
        }
    }
    if let Some(b) = &blob {
        let set = |out: &mut Response, name: http::HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                out.headers_mut().insert(name, v);
            }
        };
        set(&mut out, http::header::CONTENT_TYPE, &b.mimetype);
        {
            use sha2::Digest as _;
            let digest = hex::encode(sha2::Sha256::digest(b.bytes.as_slice()));
            set(
                &mut out,
                http::HeaderName::from_static("x-media-sha256"),
                &digest,
            );
        }
        if let Some(name) = &b.file_name {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() && c != '"' && c != '\\' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            set(
                &mut out,
                http::header::CONTENT_DISPOSITION,
                &format!("attachment; filename=\"{safe}\""),
            );
        }
    }
    if has_body && !out.headers().contains_key(http::header::CONTENT_TYPE) {
        out.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    out
}

/// Media bytes shared with the engine's buffer, as a response body without a copy.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// Headers the host owns on every answer.
fn is_reserved_response_header(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "transfer-encoding"
            | "content-length"
            | "keep-alive"
            | "upgrade"
            | "x-request-id"
            | "set-cookie"
    )
}
