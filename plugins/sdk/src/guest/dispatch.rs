//! Dispatch: the WIT `endpoint` export implemented for every [`Plugin`], calling the
//! handler a request's operation id (or an event's name) is bound to.

use super::bindings::exports::wa::gateway::handler::Guest;
use super::bindings::wa::gateway::incoming;
use super::bindings::wa::gateway::types as wit;
use super::{Event, Manifest, Plugin, Request, Response};
use crate::error::{ApiError, ErrorCode};
use std::any::TypeId;
use std::sync::Mutex;

/// A plugin's manifest, built once per instance (and once per plugin type in native
/// tests): handlers are looked up on every call, schemas are generated only for `describe`.
pub(crate) fn manifest_of<P: Plugin>() -> &'static Manifest {
    static BUILT: Mutex<Vec<(TypeId, &'static Manifest)>> = Mutex::new(Vec::new());
    let id = TypeId::of::<P>();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, m)) = built.iter().find(|(t, _)| *t == id) {
        return m;
    }
    let m: &'static Manifest = Box::leak(Box::new(P::manifest()));
    built.push((id, m));
    m
}

/// Serves a request with the handler bound to its operation id (the in-memory host).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn serve(manifest: &Manifest, request: &Request) -> Result<Response, ApiError> {
    run(manifest.handler(request.operation_id()), request)
}

/// Serves a request with the handler of the route at index `route` of the manifest (the
/// gateway).
fn serve_route(manifest: &Manifest, route: u32, request: &Request) -> Result<Response, ApiError> {
    let handler = usize::try_from(route)
        .ok()
        .and_then(|i| manifest.handler_at(i));
    run(handler, request)
}

/// The host only routes declared operations here, so a missing handler is a bug: it
/// answers 500 and is logged.
fn run(handler: Option<&super::Handler>, request: &Request) -> Result<Response, ApiError> {
    match handler {
        Some(handler) => handler(request),
        None => {
            super::log::error(&format!(
                "operation {} is not bound to a handler",
                request.operation_id()
            ));
            Err(ApiError::internal(
                "this operation has no handler in the plugin",
            ))
        }
    }
}

/// Delivers an event to the handler bound to its name (or `*`).
pub(crate) fn deliver(manifest: &Manifest, event: &Event) -> Result<(), ApiError> {
    match manifest.event_handler(event.name()) {
        Some(handler) => handler(event),
        None => {
            super::log::warn(&format!("event {} has no handler", event.name()));
            Ok(())
        }
    }
}

impl<T: Plugin> Guest for T {
    fn describe() -> wit::Manifest {
        manifest_of::<T>().to_wit()
    }

    fn handle(route: u32, request: &incoming::Request) -> Result<wit::Response, wit::Error> {
        serve_route(manifest_of::<T>(), route, &Request::served(request)).map_err(to_wit_error)
    }

    fn on_event(event: wit::Event) -> Result<(), wit::Error> {
        deliver(manifest_of::<T>(), &Event::from_wit(event)).map_err(to_wit_error)
    }
}

/// An [`ApiError`] in the WIT shape the host turns back into the envelope.
pub(crate) fn to_wit_error(e: ApiError) -> wit::Error {
    let code = match e.code {
        ErrorCode::ValidationError => wit::ErrorCode::ValidationError,
        ErrorCode::Unauthorized => wit::ErrorCode::Unauthorized,
        ErrorCode::Forbidden => wit::ErrorCode::Forbidden,
        ErrorCode::NotFound => wit::ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed => wit::ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict => wit::ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge => wit::ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited => wit::ErrorCode::RateLimited,
        ErrorCode::Internal | ErrorCode::RequestTimeout => wit::ErrorCode::Internal,
        ErrorCode::NotImplemented => wit::ErrorCode::NotImplemented,
        ErrorCode::Unavailable => wit::ErrorCode::Unavailable,
    };
    let details = if e.details.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(e.details).to_string()
    };
    wit::Error {
        code,
        message: e.message,
        details,
        status: e.status,
    }
}
