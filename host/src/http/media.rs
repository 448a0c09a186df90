//! `POST /sessions/{session}/media`: a file streamed to the session's media store as it
//! arrives, within `limits.max_media_bytes` and `limits.body_read_timeout_ms`; the answer
//! names it (`med_…`) for sends within a day.

use super::Response;
use super::envelope::json_response;
use crate::config::LimitsConfig;
use crate::media::{MediaError, MediaStore, media_type};
use gateway_sdk::ApiError;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;
use std::time::Duration;

pub(super) async fn upload(
    store: &MediaStore,
    session: &str,
    req: http::Request<Incoming>,
    limits: &LimitsConfig,
) -> Result<Response, ApiError> {
    let mimetype = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(media_type)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "content-type",
                "send the file's MIME type as content-type (image/jpeg, application/pdf…)",
            )
        })?;
    let file_name = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == "filename")
            .map(|(_, v)| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    let body = req.into_body();
    let chunks = Box::pin(futures::stream::unfold(body, |mut body| async move {
        loop {
            match body.frame().await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some((Ok::<_, hyper::Error>(data), body)),
                    Err(_) => continue, // trailers
                },
                Err(e) => return Some((Err(e), body)),
            }
        }
    }));
    let timeout = Duration::from_millis(limits.body_read_timeout_ms);
    let saved = tokio::time::timeout(
        timeout,
        store.save_stream(session, &mimetype, file_name.as_deref(), chunks),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            gateway_sdk::ErrorCode::RequestTimeout,
            format!(
                "the upload did not arrive within {} ms",
                timeout.as_millis()
            ),
        )
    })?;
    let media = match saved {
        Ok(m) => m,
        Err(MediaError::TooLarge(max)) => return Err(super::body::too_large(max)),
        Err(MediaError::Invalid(m)) => return Err(ApiError::validation(m)),
        Err(e) => {
            tracing::error!(session, error = %e, "cannot store an upload");
            return Err(ApiError::internal("the request failed inside the gateway"));
        }
    };
    Ok(json_response(
        201,
        &json!({
            "id": media.id,
            "mimetype": media.mimetype,
            "size": media.size,
            "sha256": media.sha256,
            "fileName": media.file_name,
            "expiresAt": media.expires_at,
        }),
    ))
}
