//! Success answers. Errors are returned as [`crate::ApiError`] so the host writes the one
//! envelope.

use super::Response;
use serde::Serialize;

/// `status` with a JSON body.
pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}

/// 200 with a JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Response {
    json(200, value)
}

/// 201 with a JSON body.
pub fn created<T: Serialize + ?Sized>(value: &T) -> Response {
    json(201, value)
}

/// 204, empty body.
pub fn no_content() -> Response {
    Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Any body with its content type (an image, say).
pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), content_type.to_owned())],
        body,
    }
}
