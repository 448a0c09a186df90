//! Success answers. A handler returns anything that [`IntoResponse`]; errors are returned
//! as [`crate::ApiError`] so the host writes the one envelope.

use super::Response;
use serde::Serialize;

/// Turns a handler's value into the answer; `status` is the route's declared success
/// status, so what a route declares and what it answers cannot drift apart.
pub trait IntoResponse {
    fn into_response(self, status: u16) -> Response;
}

/// A JSON body, answered with the route's success status.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self, status: u16) -> Response {
        let body = serde_json::to_vec(&self.0).unwrap_or_else(|_| b"null".to_vec());
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }
}

/// No body (204 routes, or any route whose answer says nothing more).
impl IntoResponse for () {
    fn into_response(self, status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// A response built by hand (another content type, an image), answered as it is.
impl IntoResponse for Response {
    fn into_response(self, _status: u16) -> Response {
        self
    }
}

/// Any body with its content type (an image, a body rendered in advance).
pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), content_type.to_owned())],
        body,
    }
}
