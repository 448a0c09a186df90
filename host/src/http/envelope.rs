//! The one writer of answers: JSON success bodies and the error envelope of API.md §1.3.
//! Every non-2xx answer of the gateway passes through [`error_response`].

use super::{Body, Response};
use bytes::Bytes;
use gateway_sdk::{ApiError, ErrorCode};
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The envelope for an error, with `allow` on 405.
pub fn error_response(err: &ApiError) -> Response {
    let status = http::StatusCode::from_u16(err.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = http::Response::new(Body::new(Bytes::from(err.envelope_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, JSON);
    // A 429 that says when to come back says it in the header too (API.md §4–8 amendment 1).
    if err.http_status() == 429
        && let Some(ms) = err.details.get("retryAfterMs").and_then(|v| v.as_u64())
        && let Ok(v) = HeaderValue::from_str(&ms.div_ceil(1000).max(1).to_string())
    {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    if err.code == ErrorCode::MethodNotAllowed
        && let Some(allow) = err.details.get("allow").and_then(|a| a.as_array())
    {
        let list: Vec<&str> = allow.iter().filter_map(|m| m.as_str()).collect();
        if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
            resp.headers_mut().insert(ALLOW, v);
        }
    }
    resp
}

/// A JSON success answer.
pub fn json_response<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = http::Response::new(Body::new(Bytes::from(body)));
            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            resp.headers_mut().insert(CONTENT_TYPE, JSON);
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode answer");
            error_response(&ApiError::internal("internal error"))
        }
    }
}

/// An empty answer (204).
pub fn empty_response(status: u16) -> Response {
    let mut resp = http::Response::new(Body::default());
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NO_CONTENT);
    resp
}

/// A plain body with its content type (metrics text, HTML, images).
pub fn bytes_response(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(Body::new(body.into()));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
