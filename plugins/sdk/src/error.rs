//! The error envelope of the HTTP contract (API.md §1.3): the codes, their statuses, and
//! the one writer of `{"error": {"code", "message", "details"}}` that host and plugins share.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Every envelope code the gateway answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationError,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    Internal,
    NotImplemented,
    Unavailable,
    /// The request head or body did not arrive in time (ours; hosts only).
    RequestTimeout,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::ValidationError,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::NotImplemented,
        ErrorCode::Unavailable,
        ErrorCode::RequestTimeout,
    ];

    /// The HTTP status the contract gives this code.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::ValidationError => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::NotImplemented => 501,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The wire name (`not_found`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RequestTimeout => "request_timeout",
        }
    }

    /// The code a bare status stands for, used when something answers a non-2xx status
    /// without saying why.
    pub fn for_status(status: u16) -> ErrorCode {
        match status {
            400 | 422 => ErrorCode::ValidationError,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 | 410 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            408 => ErrorCode::RequestTimeout,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            429 => ErrorCode::RateLimited,
            501 => ErrorCode::NotImplemented,
            503 => ErrorCode::Unavailable,
            400..=499 => ErrorCode::ValidationError,
            _ => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request, as the caller will see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
    /// Overrides `code.status()` where the contract allows another status (422).
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Map::new(),
            status: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotImplemented, message)
    }

    /// A validation error that names the offending input in `details.field`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(message).with_detail("field", field)
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The status to answer with: the override when it is an error status, else the code's.
    pub fn http_status(&self) -> u16 {
        match self.status {
            Some(s) if (400..600).contains(&s) => s,
            _ => self.code.status(),
        }
    }

    /// The envelope body, `{"error": {"code", "message", "details"}}`.
    pub fn envelope(&self) -> Value {
        serde_json::json!({
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "details": Value::Object(self.details.clone()),
            }
        })
    }

    /// The envelope as the bytes of a response body.
    pub fn envelope_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.envelope()).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error","details":{}}}"#.to_vec()
        })
    }

    /// Reads an envelope back (clients and tests).
    pub fn from_envelope(body: &[u8]) -> Option<ApiError> {
        #[derive(Deserialize)]
        struct Outer {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: ErrorCode,
            message: String,
            details: Map<String, Value>,
        }
        let outer: Outer = serde_json::from_slice(body).ok()?;
        Some(ApiError {
            code: outer.error.code,
            message: outer.error.message,
            details: outer.error.details,
            status: None,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_code_message_and_object_details() {
        let err = ApiError::not_found("session not found");
        let v = err.envelope();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "session not found");
        assert!(v["error"]["details"].as_object().unwrap().is_empty());
        assert_eq!(err.http_status(), 404);
    }

    #[test]
    fn round_trips_through_bytes() {
        let err = ApiError::invalid_field("phone", "phone must be digits");
        let back = ApiError::from_envelope(&err.envelope_bytes()).unwrap();
        assert_eq!(back.code, ErrorCode::ValidationError);
        assert_eq!(back.details["field"], "phone");
    }

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let s = serde_json::to_value(code).unwrap();
            assert_eq!(s, code.as_str());
            assert_eq!(ErrorCode::for_status(code.status()), code);
        }
    }

    #[test]
    fn status_override_only_for_error_statuses() {
        let e = ApiError::validation("x").with_status(422);
        assert_eq!(e.http_status(), 422);
        let e = ApiError::validation("x").with_status(200);
        assert_eq!(e.http_status(), 400);
    }
}
