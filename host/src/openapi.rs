//! The self-description served on the public listener: `GET /openapi.json` (OpenAPI 3.1),
//! composed from the host's own routes and every loaded plugin's manifest and rebuilt when
//! the plugin catalog changes, and `GET /docs`, a page that renders it without fetching
//! anything from the internet.

use crate::app::App;
use crate::auth::Capability;
use crate::http::Response;
use crate::http::envelope::bytes_response;
use crate::plugins::{BuiltinRoute, Catalog, RouteTarget};
use crate::routing::{Method, RouteTemplate};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The document for one catalog generation, built once.
#[derive(Default)]
pub struct OpenApiCache {
    cached: Mutex<Option<(u64, bytes::Bytes)>>,
}

impl OpenApiCache {
    fn get(&self, catalog: &Catalog) -> bytes::Bytes {
        let mut c = self.cached.lock().expect("lock");
        if let Some((generation, doc)) = c.as_ref()
            && *generation == catalog.generation
        {
            return doc.clone();
        }
        let doc =
            bytes::Bytes::from(serde_json::to_vec_pretty(&document(catalog)).unwrap_or_default());
        *c = Some((catalog.generation, doc.clone()));
        doc
    }
}

/// Answers the public non-API paths (`/openapi.json`, `/docs`), or `None`.
pub fn serve_public(app: &Arc<App>, method: &http::Method, path: &str) -> Option<Response> {
    if method != http::Method::GET {
        return None;
    }
    match path {
        "/openapi.json" => {
            let catalog = app.plugins.catalog();
            Some(bytes_response(
                200,
                "application/json",
                app.openapi.get(&catalog),
            ))
        }
        "/docs" | "/docs/" => Some(bytes_response(200, "text/html; charset=utf-8", DOCS_PAGE)),
        _ => None,
    }
}

fn capability_name(c: Capability) -> &'static str {
    match c {
        Capability::PlatformAdmin => "platform_admin (super_admin JWT)",
        other => other.as_str(),
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The documented failures of every route, by status.
fn error_statuses(
    method: Method,
    target: &RouteTarget,
    template: &RouteTemplate,
) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("400", "Bad input (validation_error)"),
        ("401", "Missing or invalid credential (unauthorized)"),
        (
            "403",
            "The credential lacks the route's capability (forbidden)",
        ),
        (
            "404",
            "Unknown resource, or another organization's (not_found)",
        ),
        ("413", "Body over the configured limit (payload_too_large)"),
        ("500", "The request failed inside the gateway (internal)"),
        (
            "503",
            "The gateway is at capacity or shutting down (unavailable)",
        ),
    ];
    if template.has_param("session") && target.spec().is_some() {
        v.push((
            "501",
            "A LIVE call on a session that is not connected (not_implemented)",
        ));
    }
    let writes = method != Method::Get;
    if writes && target.spec().is_some() {
        v.push((
            "409",
            "The resource's state forbids it, or an organization quota is full (conflict; `details.reason` `quota_exceeded`)",
        ));
        v.push((
            "422",
            "A body the contract answers with 422: a chat or webhook update, a reused Idempotency-Key (validation_error)",
        ));
        v.push((
            "429",
            "Over the session's send rate or queue (rate_limited); `Retry-After` says when to retry",
        ));
    }
    match target {
        RouteTarget::Builtin(BuiltinRoute::CreateRealtimeTicket) => {
            v.push((
                "422",
                "A bad ticket request: unknown field, unknown event name, another organization's session, an `after` that is not an event id (validation_error)",
            ));
            v.push((
                "429",
                "The organization holds too many unused tickets (rate_limited)",
            ));
        }
        RouteTarget::Builtin(BuiltinRoute::CreateAdminRealtimeTicket) => {
            v.push((
                "422",
                "A bad ticket request: unknown field, unknown event name, a session not of the organization named (validation_error)",
            ));
        }
        RouteTarget::Builtin(BuiltinRoute::RealtimeStream) => {
            v.push((
                "429",
                "The organization has `realtime.max_streams_per_org` streams open (rate_limited); the ticket stays usable until it expires",
            ));
        }
        _ => {}
    }
    if matches!(target, RouteTarget::Builtin(BuiltinRoute::CreateApiKey)) {
        v.push((
            "409",
            "The organization has as many keys as it may (conflict, `details.reason` `quota_exceeded`)",
        ));
    }
    v
}

fn builtin_route_doc(h: BuiltinRoute) -> (&'static str, Option<Value>, Value, u16) {
    let key = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "permissions": {"type": "array", "items": {"type": "string", "enum": ["read", "send", "manage"]}},
        "prefix": {"type": "string"}, "createdAt": {"type": "integer"}, "createdBy": {"type": "string"},
        "lastUsedAt": {"type": ["integer", "null"]}}});
    match h {
        BuiltinRoute::ListApiKeys => (
            "List the organization's API keys (never their secrets)",
            None,
            json!({"type": "object", "properties": {"data": {"type": "array", "items": key}, "nextCursor": {"type": ["string", "null"]}}}),
            200,
        ),
        BuiltinRoute::CreateApiKey => (
            "Mint an API key; the secret (`key`) is shown only in this answer",
            Some(
                json!({"type": "object", "required": ["name", "permissions"], "additionalProperties": false, "properties": {
                "name": {"type": "string", "maxLength": 100},
                "permissions": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["read", "send", "manage"]}}}}),
            ),
            {
                let mut k = key.clone();
                k["properties"]["key"] =
                    json!({"type": "string", "description": "the secret, wa_…"});
                k
            },
            201,
        ),
        BuiltinRoute::RevokeApiKey => ("Revoke an API key", None, json!({}), 204),
        BuiltinRoute::CreateRealtimeTicket => (
            "Mint a single-use ticket (valid 30 s) that opens a realtime event stream",
            Some(
                json!({"type": "object", "additionalProperties": false, "properties": {
                "events": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "string"},
                           "description": "event names, `*` or `prefix.*` (default `[\"*\"]`)"},
                "sessionId": {"type": "string", "description": "only this session's events"},
                "after": {"type": "string", "description": "resume after this event id (`evt_…`)"}}}),
            ),
            json!({"type": "object", "required": ["ticket", "url", "expiresAt"], "properties": {
                "ticket": {"type": "string", "description": "rtt_…"},
                "url": {"type": "string", "description": "the stream's ws:// or wss:// URL, ticket included"},
                "expiresAt": {"type": "integer"}}}),
            200,
        ),
        BuiltinRoute::CreateAdminRealtimeTicket => (
            "Mint a platform admin's ticket for one organization's, one session's or every organization's events (super_admin only)",
            Some(
                json!({"type": "object", "additionalProperties": false, "properties": {
                "organization": {"type": "string", "description": "only this organization's events"},
                "sessionId": {"type": "string", "description": "only this session's events (any organization)"},
                "events": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "string"},
                           "description": "event names, `*` or `prefix.*` (default `[\"*\"]`)"}}}),
            ),
            json!({"type": "object", "required": ["ticket", "url", "expiresAt"], "properties": {
                "ticket": {"type": "string", "description": "rtt_…"},
                "url": {"type": "string", "description": "the stream's ws:// or wss:// URL, ticket included"},
                "expiresAt": {"type": "integer"}}}),
            200,
        ),
        BuiltinRoute::RealtimeStream => (
            "Open the realtime event stream (a WebSocket upgrade; the ticket is the credential)",
            None,
            json!({}),
            101,
        ),
        BuiltinRoute::UploadMedia => (
            "Upload a media file (the raw body, `content-type` its MIME type) to send by id within 24 h",
            Some(json!({"type": "string", "format": "binary"})),
            json!({"type": "object", "required": ["id", "mimetype", "size", "sha256", "expiresAt"], "properties": {
                "id": {"type": "string", "description": "med_…"},
                "mimetype": {"type": "string"}, "size": {"type": "integer"},
                "sha256": {"type": "string"}, "fileName": {"type": ["string", "null"]},
                "expiresAt": {"type": "integer"}}}),
            201,
        ),
    }
}

/// Builds the OpenAPI 3.1 document for a catalog.
pub fn document(catalog: &Catalog) -> Value {
    // Routes sharing a path shape share one path item, keyed by the first template seen.
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut shapes: BTreeMap<String, String> = BTreeMap::new();
    for (method, template, target) in catalog.routes.routes() {
        let shape: String = {
            let mut s = template.as_str().to_owned();
            for p in template.params() {
                s = s.replace(&format!("{{{p}}}"), "{}");
            }
            s
        };
        let key = shapes
            .entry(shape)
            .or_insert_with(|| template.as_str().to_owned())
            .clone();
        let key_template = RouteTemplate::parse(&key).expect("stored templates are valid");
        let mut parameters: Vec<Value> = key_template
            .params()
            .iter()
            .map(|p| {
                let description = match p.as_str() {
                    "session" => "The session id (a ULID); another organization's answers 404",
                    "lid" => "A LID (`…@lid`) or phone JID; `@` may be sent as `%40`",
                    "jid" => "A JID (`…@s.whatsapp.net` or `…@lid`); `@` may be sent as `%40`",
                    _ => "Path parameter",
                };
                json!({"name": p, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
            })
            .collect();
        let (summary, description, request, response, status, owner, operation_id, capability) =
            match target {
                RouteTarget::Builtin(h) => {
                    let (summary, request, response, status) = builtin_route_doc(*h);
                    (
                        summary.to_owned(),
                        None,
                        request,
                        response,
                        status,
                        "host".to_owned(),
                        h.operation_id().to_owned(),
                        h.capability(),
                    )
                }
                RouteTarget::Plugin { plugin, route } => {
                    let r = &plugin.manifest.routes[*route];
                    for (name, desc, required) in &r.query_params {
                        parameters.push(json!({"name": name, "in": "query", "required": required, "description": desc, "schema": {"type": "string"}}));
                    }
                    (
                        r.summary.clone(),
                        r.description.clone(),
                        r.request_schema.clone(),
                        r.response_schema.clone().unwrap_or(json!({})),
                        r.success_status,
                        plugin.name().to_owned(),
                        r.operation_id.clone(),
                        r.capability,
                    )
                }
            };
        let mut responses = Map::new();
        let success = if status == 204 {
            json!({"description": "Done; no body"})
        } else if status == 101 {
            json!({"description": "Switching Protocols: then one text frame per event envelope (API.md §7.4)"})
        } else {
            json!({"description": "Success", "content": {"application/json": {"schema": response}}})
        };
        responses.insert(status.to_string(), success);
        if operation_id == "sessionQR" {
            responses[&status.to_string()]["content"]["image/png"] =
                json!({"schema": {"type": "string", "contentMediaType": "image/png"}});
        }
        for (code, desc) in error_statuses(method, target, template) {
            responses.insert(code.to_owned(), error_response(desc));
        }
        if method == Method::Post || method == Method::Put || method == Method::Patch {
            responses.insert(
                "405".into(),
                error_response("Route exists, method does not (method_not_allowed)"),
            );
        }
        let mut op = json!({
            "operationId": operation_id,
            "summary": summary,
            "tags": [owner],
            "x-plugin": owner,
            "x-capability": capability.as_str(),
            "description": format!(
                "{}Requires the `{}` capability.",
                description.map(|d| format!("{d}\n\n")).unwrap_or_default(),
                capability_name(capability)
            ),
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": []}, {"apiKey": []}],
        });
        if let Some(schema) = request {
            // An upload is the file itself, of any type; everything else takes JSON.
            let content_type = if operation_id == "uploadMedia" {
                "*/*"
            } else {
                "application/json"
            };
            op["requestBody"] =
                json!({"required": true, "content": {content_type: {"schema": schema}}});
        }
        if operation_id == "realtimeStream" {
            // The ticket stands for the credential (browsers cannot set headers on an upgrade).
            op["security"] = json!([]);
            op["description"] = json!(
                "A WebSocket upgrade (RFC 6455). The server sends one text frame per event envelope matching the ticket's                  filters; with `after`, the buffered newer events first, or a `stream.gap` frame when `after` is no longer                  buffered. Close codes: 4001 the minting credential was revoked or expired, 4008 the client fell too far behind."
            );
            op["parameters"]
                .as_array_mut()
                .expect("parameters is a list")
                .push(json!({"name": "ticket", "in": "query", "required": true,
                             "description": "a ticket from createRealtimeTicket (rtt_…)", "schema": {"type": "string"}}));
        }
        if operation_id == "uploadMedia" {
            op["parameters"]
                .as_array_mut()
                .expect("parameters is a list")
                .push(json!({"name": "filename", "in": "query", "required": false,
                             "description": "the file's name, for documents", "schema": {"type": "string"}}));
        }
        paths
            .entry(key)
            .or_default()
            .insert(method.as_str().to_lowercase(), op);
    }
    let plugins: Vec<Value> = catalog
        .plugins
        .values()
        .map(|p| json!({"name": p.name(), "description": format!("Plugin {} {}", p.name(), p.manifest.version)}))
        .chain(std::iter::once(json!({"name": "host", "description": "Served by the gateway itself"})))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wa-gateway API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Multi-tenant WhatsApp REST gateway. Every non-2xx answer is the error envelope. \
                            Lists take `limit` (1-200, default 50) and an opaque `cursor`. Timestamps are epoch milliseconds.",
        },
        "servers": [{"url": "/api/v1"}],
        "tags": plugins,
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message", "details"],
                        "properties": {
                            "code": {"type": "string", "enum": gateway_sdk::ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()},
                            "message": {"type": "string"},
                            "details": {"type": "object"}
                        }
                    }}
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A dashboard login JWT, or an API key (`wa_…`) as a bearer token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
            }
        }
    })
}

/// Renders `/openapi.json` in the browser with no external assets.
const DOCS_PAGE: &str = include_str!("openapi/docs.html");
