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
