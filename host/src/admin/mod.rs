//! The operator listener (loopback by default, optionally token-protected): health,
//! readiness, metrics, plugin list and reload, API key management for the CLI, and the
//! sandbox engine's control API.

mod sandbox;

use crate::app::App;
use crate::auth::Permission;
use crate::http::envelope::{bytes_response, empty_response, error_response, json_response};
use crate::http::{Response, body, request_id};
use crate::routing::{Method, RouteTable, RouteTableBuilder};
use gateway_sdk::{ApiError, ErrorCode};
use hyper::body::Incoming;
use serde::Deserialize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
enum AdminRoute {
    Health,
    Ready,
    Metrics,
    ListPlugins,
    ReloadPlugins,
    ListKeys,
    CreateKey,
    RevokeKey,
    Sandbox(sandbox::Control),
}

fn routes() -> &'static RouteTable<AdminRoute> {
    static TABLE: OnceLock<RouteTable<AdminRoute>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut b = RouteTableBuilder::default();
        let mut add = |m, p, r| b.add(m, p, r, "admin").expect("admin routes are valid");
        add(Method::Get, "/healthz", AdminRoute::Health);
        add(Method::Get, "/readyz", AdminRoute::Ready);
        add(Method::Get, "/metrics", AdminRoute::Metrics);
        add(Method::Get, "/admin/plugins", AdminRoute::ListPlugins);
        add(
            Method::Post,
            "/admin/plugins:reload",
            AdminRoute::ReloadPlugins,
        );
        add(Method::Get, "/admin/api-keys", AdminRoute::ListKeys);
        add(Method::Post, "/admin/api-keys", AdminRoute::CreateKey);
        add(
            Method::Delete,
            "/admin/api-keys/{id}",
            AdminRoute::RevokeKey,
        );
        for (m, p, c) in sandbox::Control::routes() {
            add(m, p, AdminRoute::Sandbox(c));
        }
        b.build().expect("admin routes do not conflict")
    })
}

pub async fn handle(app: Arc<App>, req: http::Request<Incoming>) -> Response {
    let request_id = request_id::from_headers(req.headers());
    let mut resp = match dispatch(&app, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(request_id::HEADER, v);
    }
    resp
}

fn authorized(app: &App, headers: &http::HeaderMap) -> bool {
    let Some(expected) = &app.config.admin.token else {
        return true;
    };
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison of equal-length byte strings.
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Refuses what a browser could send on someone's behalf. The operator API is for
/// programs: a request carrying `Origin` comes from a web page (CSRF) and is refused;
/// without a token, only loopback or IP `Host` names are answered, so a hostile page
/// cannot rebind its own name to 127.0.0.1 (DNS rebinding); a body must be JSON, which
/// no cross-site form can send.
fn from_a_program(app: &App, req: &http::Request<Incoming>) -> Result<(), ApiError> {
    let refuse = |m: &str| Err(ApiError::forbidden(m.to_owned()));
    if req.headers().contains_key(http::header::ORIGIN) {
        return refuse("the admin listener does not answer web pages (Origin is set)");
    }
    if app.config.admin.token.is_none() {
        let host = req
            .uri()
            .authority()
            .map(|a| a.host().to_owned())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(host_of)
            })
            .unwrap_or_default();
        if !is_local_host_name(&host) {
            return refuse(
                "without admin.token the admin listener answers only loopback or IP host names",
            );
        }
    }
    let has_body = !hyper::body::Body::is_end_stream(req.body());
    let json = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if has_body && !json {
        return Err(
            ApiError::validation("admin request bodies must be application/json").with_status(415),
        );
    }
    Ok(())
}

/// `host:port` or `[v6]:port` → the host part.
fn host_of(authority: &str) -> String {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_owned(),
    }
}

/// An IP literal or `localhost`: names no one else can point at this machine.
fn is_local_host_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok()
}

async fn dispatch(app: &Arc<App>, req: http::Request<Incoming>) -> Result<Response, ApiError> {
    from_a_program(app, &req)?;
    let path = req.uri().path().to_owned();
    let matched = routes().find(req.method().as_str(), &path)?;
    let route = *matched.target;
    let params = matched.params;
    // Probes stay open so orchestrators need no secret; everything else needs the token.
    if !matches!(route, AdminRoute::Health | AdminRoute::Ready) && !authorized(app, req.headers()) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "admin token required",
        ));
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    let limits = &app.config.limits;
    let body = body::read(
        req.into_body(),
        limits.max_body_bytes,
        Duration::from_millis(limits.body_read_timeout_ms),
    )
    .await?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match route {
        AdminRoute::Health => Ok(json_response(200, &serde_json::json!({"status": "ok"}))),
        AdminRoute::Ready => {
            let ready = app.is_ready();
            let plugins = app.plugins.catalog().plugins.len();
            let body = serde_json::json!({
                "status": if ready { "ready" } else { "not_ready" },
                "plugins": plugins,
                "database": app.db.is_healthy(),
            });
            if ready {
                Ok(json_response(200, &body))
            } else {
                Err(
                    ApiError::new(ErrorCode::Unavailable, "gateway is not ready")
                        .with_detail("plugins", plugins)
                        .with_detail("database", app.db.is_healthy()),
                )
            }
        }
        AdminRoute::Metrics => Ok(bytes_response(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics
                .render(app.sessions.registry(), app.sessions.events().queued()),
        )),
        AdminRoute::ListPlugins => Ok(json_response(
            200,
            &serde_json::json!({"data": app.plugins.status(), "generation": app.plugins.catalog().generation}),
        )),
        AdminRoute::ReloadPlugins => Ok(json_response(200, &app.reload_plugins().await)),
        AdminRoute::ListKeys => {
            let org = query
                .split('&')
                .find_map(|p| p.strip_prefix("organization="))
                .map(|o| {
                    percent_encoding::percent_decode_str(o)
                        .decode_utf8_lossy()
                        .into_owned()
                });
            Ok(json_response(
                200,
                &serde_json::json!({"data": app.auth.api_keys().list(org.as_deref())}),
            ))
        }
        AdminRoute::CreateKey => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Create {
                organization: String,
                name: String,
                permissions: Vec<Permission>,
            }
            let c: Create = parse(&body)?;
            let created =
                app.auth
                    .api_keys()
                    .create(&c.organization, &c.name, &c.permissions, "admin")?;
            Ok(json_response(
                201,
                &serde_json::json!({"key": created.key, "secret": created.secret}),
            ))
        }
        AdminRoute::RevokeKey => {
            if app.auth.api_keys().revoke(&param("id"), None)? {
                Ok(empty_response(204))
            } else {
                Err(ApiError::not_found("API key not found"))
            }
        }
        AdminRoute::Sandbox(control) => {
            let sandbox = app.sandbox.as_deref().ok_or_else(|| {
                ApiError::not_implemented("the sandbox engine is not running (engine.kind)")
            })?;
            sandbox::handle(
                sandbox,
                app.sessions.registry(),
                control,
                &param("session"),
                &body,
            )
        }
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(format!("request body is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{host_of, is_local_host_name};

    #[test]
    fn only_ip_and_localhost_names_are_local() {
        for h in [
            "127.0.0.1:8081",
            "localhost:8081",
            "[::1]:8081",
            "10.0.0.5",
            "LOCALHOST",
        ] {
            assert!(is_local_host_name(&host_of(h)), "{h}");
        }
        for h in [
            "evil.example:8081",
            "127.0.0.1.nip.io",
            "localhost.evil.example",
            "",
        ] {
            assert!(!is_local_host_name(&host_of(h)), "{h}");
        }
    }
}
