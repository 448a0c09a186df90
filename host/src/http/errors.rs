//! Every layer's error mapped to the envelope, in one place: routing, authentication,
//! storage, the session manager, the engines, the sandbox's control API and realtime
//! streams. Internal
//! failures are logged with their detail here and answered as a bare `internal` — no
//! path, address or database message reaches a client (API.md §1.3).

use crate::auth::AuthError;
use crate::engines::EngineError;
use crate::engines::sandbox::ControlError;
use crate::realtime::RealtimeError;
use crate::routing::RouteError;
use crate::sessions::SessionError;
use crate::storage::StorageError;
use gateway_sdk::{ApiError, ErrorCode};

/// The answer for a failure inside the gateway: logged, never described to the caller.
fn internal(what: &str, detail: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %detail, "{what} failed");
    ApiError::internal("the request failed inside the gateway")
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match &e {
            RouteError::NotFound(_) => ApiError::not_found(e.to_string()),
            RouteError::MethodNotAllowed { allow, .. } => {
                let allow: Vec<_> = allow.iter().map(|m| m.as_str()).collect();
                ApiError::new(ErrorCode::MethodNotAllowed, e.to_string())
                    .with_detail("allow", allow)
            }
            RouteError::BadEncoding(p) => ApiError::invalid_field(p, e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match &e {
            AuthError::Missing | AuthError::Invalid(_) => {
                ApiError::new(ErrorCode::Unauthorized, e.to_string())
            }
            AuthError::MissingCapability(c) => {
                ApiError::forbidden(e.to_string()).with_detail("required", c.as_str())
            }
            AuthError::NotPlatformAdmin => ApiError::forbidden(e.to_string()),
        }
    }
}

/// A request refused by an organization quota: 409, `details.reason = quota_exceeded`.
pub(crate) fn quota_exceeded(message: String) -> ApiError {
    ApiError::conflict(message).with_detail("reason", "quota_exceeded")
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Invalid(m) => ApiError::validation(m),
            StorageError::Quota(m) => quota_exceeded(m),
            other => internal("storage", &other),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotConnected(m) => {
                tracing::debug!(reason = %m, "session not connected");
                ApiError::not_implemented("the session is not connected to WhatsApp")
            }
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::Invalid(m) => ApiError::validation(m),
            EngineError::Forbidden(m) => ApiError::forbidden(m),
            EngineError::RateLimited(m) => ApiError::new(ErrorCode::RateLimited, m),
            EngineError::Unsupported(m) => ApiError::not_implemented(m),
            EngineError::Failed(m) => internal("engine call", &m),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => ApiError::not_found("session not found"),
            SessionError::Invalid(m) => ApiError::validation(m),
            SessionError::Conflict(m) => ApiError::conflict(m),
            SessionError::Engine(e) => e.into(),
            SessionError::Storage(m) => internal("session storage", &m),
            SessionError::Quota(m) => quota_exceeded(m),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Conflict(m) => ApiError::conflict(m),
            ControlError::Invalid(m) => ApiError::validation(m),
            ControlError::Busy(m) => ApiError::new(ErrorCode::Unavailable, m),
        }
    }
}

impl From<RealtimeError> for ApiError {
    fn from(e: RealtimeError) -> Self {
        let message = e.to_string();
        match e {
            // A ticket request's mistakes are 422 (API.md §7.2).
            RealtimeError::Invalid { field, .. } => {
                ApiError::invalid_field(field, message).with_status(422)
            }
            RealtimeError::BadTicket => ApiError::new(ErrorCode::Unauthorized, message),
            RealtimeError::TooManyStreams { max } | RealtimeError::TooManyTickets { max } => {
                ApiError::new(ErrorCode::RateLimited, message).with_detail("max", max)
            }
            RealtimeError::NotWebSocket(_) => ApiError::validation(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_carry_their_detail() {
        let e: ApiError = StorageError::Corrupt("/data/gateway.redb: page 7".into()).into();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("redb"));
        let e: ApiError = EngineError::Failed("tls to 157.240.1.1 failed".into()).into();
        assert!(!e.message.contains("157.240"));
        let e: ApiError = SessionError::Storage("disk full".into()).into();
        assert!(!e.message.contains("disk"));
        let e: ApiError = SessionError::Engine(EngineError::NotConnected("down".into())).into();
        assert_eq!(e.http_status(), 501);
        let e: ApiError = StorageError::Invalid("keys must be 1 to 1024 bytes".into()).into();
        assert_eq!(e.http_status(), 400);
    }
}
