//! Reading a request body within the size limit and the read timeout.

use bytes::Bytes;
use gateway_sdk::{ApiError, ErrorCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::time::Duration;

/// The 413 answer for a body over `max` bytes.
pub(crate) fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {max} bytes"),
    )
    .with_detail("maxBytes", max)
}

/// The most of a refused body read and thrown away so the client hears the answer.
const LINGER_BYTES: u64 = 8 << 20;
/// How long a refused body is drained at most.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// The 413 for a body whose declared length is over `max`, answered once the client has
/// sent it (up to [`LINGER_BYTES`], within [`LINGER_TIME`]), as nginx's lingering close
/// does: closing a socket with unread data resets it, and a client still sending then
/// sees a broken pipe instead of the answer.
pub(crate) async fn refuse_declared(body: Incoming, declared: u64, max: u64) -> ApiError {
    if declared <= LINGER_BYTES {
        let drain = async {
            let mut body = body;
            while let Some(Ok(_)) = body.frame().await {}
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    }
    too_large(max)
}

/// Reads the whole body, refusing more than `max` bytes or taking longer than `timeout`.
pub(crate) async fn read(body: Incoming, max: u64, timeout: Duration) -> Result<Bytes, ApiError> {
    // Most requests (GET, DELETE, bodiless POST) have nothing to wait for: no timer needed.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    let limited = Limited::new(body, max as usize);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "request body did not arrive within {} ms",
                timeout.as_millis()
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(max)),
        Ok(Err(e)) => Err(ApiError::validation(format!(
            "request body could not be read: {e}"
        ))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}
