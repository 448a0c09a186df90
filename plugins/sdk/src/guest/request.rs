//! One request routed to the plugin: path and query values, headers, the JSON body, the
//! caller, the session and the page asked for.

use super::Caller;
use super::bindings::wa::gateway::types as wit;
use crate::error::ApiError;
use crate::paging::PageRequest;
use serde::de::DeserializeOwned;

/// A request the host routed here. The host has authenticated the caller, checked the
/// route's capability and, for `{session}` routes, that the session is the caller's.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::Request,
}

impl Request {
    pub(crate) fn from_wit(inner: wit::Request) -> Self {
        Request { inner }
    }

    /// Upper-case HTTP method.
    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// The matched route template (`/sessions/{session}/notes`).
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    pub fn operation_id(&self) -> &str {
        &self.inner.operation_id
    }

    /// The path below `/api/v1`, as sent (still percent-encoded).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// A path parameter, percent-decoded (`%40` arrives as `@`).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.inner
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no parameter '{name}'")))
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.inner
            .query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every query parameter in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.inner.query
    }

    /// A header value by name (case-insensitive). Credentials are never passed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// The body parsed as JSON; an empty body reads as `{}`. A body that does not fit `T`
    /// is a validation error naming the line and column.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.inner.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.inner.body
        };
        serde_json::from_slice(body).map_err(|e| {
            ApiError::validation(format!("request body is not valid: {e}"))
                .with_detail("line", e.line())
                .with_detail("column", e.column())
        })
    }

    pub fn caller(&self) -> &Caller {
        &self.inner.caller
    }

    /// The session the route is about; the host has checked it is the caller's.
    pub fn session_id(&self) -> Result<&str, ApiError> {
        self.inner
            .session
            .as_deref()
            .ok_or_else(|| ApiError::internal("route has no session"))
    }

    /// Echoed in the `x-request-id` response header; put it in your logs.
    pub fn request_id(&self) -> &str {
        &self.inner.request_id
    }

    /// `limit` and `cursor` from the query (API.md §1.6).
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        PageRequest::parse(self.query("limit"), self.query("cursor"))
    }
}
