//! What a plugin is written with: the WIT bindings, the [`Plugin`] trait that the
//! `export!` macro wires to them, and small helpers for requests, answers, storage and
//! WhatsApp errors.

mod manifest;
mod reply;
mod request;
pub mod store;

pub use manifest::{Manifest, Route};
pub use reply::{bytes, created, json, no_content, ok};
pub use request::{PageRequest, RequestExt};

/// The generated WIT bindings (`wa:gateway/plugin`).
#[allow(unsafe_code, unreachable_pub, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wa:gateway/plugin",
        pub_export_macro: true,
        default_bindings_module: "gateway_sdk::guest::bindings",
        generate_all,
    });
}

use crate::error::{ApiError, ErrorCode};
pub use bindings::export;
use bindings::exports::wa::gateway::endpoint::Guest;
pub use bindings::wa::gateway::session_control;
pub use bindings::wa::gateway::types::{
    Caller, Capability, Error as WitError, ErrorCode as WitErrorCode, Event, Request, Response,
};
pub use bindings::wa::gateway::whatsapp_types::WhatsappError;
pub use bindings::wa::gateway::{whatsapp_read, whatsapp_send};

/// An endpoint plugin. Implement it on a unit struct and pass that to
/// `gateway_sdk::export!`.
pub trait Plugin {
    /// The routes and event subscriptions, read once at load.
    fn manifest() -> Manifest;
    /// Serves one request for a declared route.
    fn handle(request: Request) -> Result<Response, ApiError>;
    /// Receives one subscribed event.
    fn on_event(_event: Event) -> Result<(), ApiError> {
        Ok(())
    }
}

impl<T: Plugin> Guest for T {
    fn describe() -> bindings::wa::gateway::types::Manifest {
        T::manifest().into_wit()
    }

    fn handle(request: Request) -> Result<Response, WitError> {
        T::handle(request).map_err(to_wit_error)
    }

    fn on_event(event: Event) -> Result<(), WitError> {
        T::on_event(event).map_err(to_wit_error)
    }
}

fn to_wit_error(e: ApiError) -> WitError {
    let code = match e.code {
        ErrorCode::ValidationError => WitErrorCode::ValidationError,
        ErrorCode::Unauthorized => WitErrorCode::Unauthorized,
        ErrorCode::Forbidden => WitErrorCode::Forbidden,
        ErrorCode::NotFound => WitErrorCode::NotFound,
        ErrorCode::MethodNotAllowed => WitErrorCode::MethodNotAllowed,
        ErrorCode::Conflict => WitErrorCode::Conflict,
        ErrorCode::PayloadTooLarge => WitErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited => WitErrorCode::RateLimited,
        ErrorCode::Internal | ErrorCode::RequestTimeout => WitErrorCode::Internal,
        ErrorCode::NotImplemented => WitErrorCode::NotImplemented,
        ErrorCode::Unavailable => WitErrorCode::Unavailable,
    };
    let details = if e.details.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(e.details).to_string()
    };
    WitError {
        code,
        message: e.message,
        details,
        status: e.status,
    }
}

/// A failed live call, in the envelope's terms: not connected is 501 (API.md §1.5).
impl From<WhatsappError> for ApiError {
    fn from(e: WhatsappError) -> Self {
        match e {
            WhatsappError::NotConnected(m) => ApiError::not_implemented(if m.is_empty() {
                "session is not connected".to_owned()
            } else {
                m
            }),
            WhatsappError::NotFound(m) => ApiError::not_found(m),
            WhatsappError::Invalid(m) => ApiError::validation(m),
            WhatsappError::Forbidden(m) => ApiError::forbidden(m),
            WhatsappError::RateLimited(m) => ApiError::new(ErrorCode::RateLimited, m),
            WhatsappError::Unsupported(m) => ApiError::not_implemented(m),
            WhatsappError::Failed(m) => ApiError::internal(m),
        }
    }
}

impl From<session_control::SessionError> for ApiError {
    fn from(e: session_control::SessionError) -> Self {
        use session_control::SessionError as E;
        match e {
            E::NotFound => ApiError::not_found("session not found"),
            E::Invalid(m) => ApiError::validation(m),
            E::Conflict(m) => ApiError::conflict(m),
            E::NotConnected(m) => {
                ApiError::not_implemented(format!("session is not connected: {m}"))
            }
            E::Failed(m) => ApiError::internal(m),
        }
    }
}

/// Structured logs, tagged by the host with the plugin's name and request id.
pub mod log {
    use super::bindings::wa::gateway::log::{Level, write};

    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}
