//! Reading a request: path and query values, the JSON body, the page asked for.

use super::Request;
use crate::error::ApiError;
use crate::paging::{decode_cursor, parse_limit};
use serde::de::DeserializeOwned;

/// The page a list request asks for (API.md §1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The decoded cursor: where the previous page stopped.
    pub after: Option<Vec<u8>>,
}

/// Accessors on the generated [`Request`].
pub trait RequestExt {
    /// A path parameter (already percent-decoded).
    fn param(&self, name: &str) -> Result<&str, ApiError>;
    /// The first value of a query parameter.
    fn query(&self, name: &str) -> Option<&str>;
    /// A header value by lower-case name.
    fn header(&self, name: &str) -> Option<&str>;
    /// The session the route is about; the host has checked it is the caller's.
    fn session_id(&self) -> Result<&str, ApiError>;
    /// The body parsed as JSON; an empty body reads as `{}`.
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError>;
    /// `limit` and `cursor` from the query.
    fn page(&self) -> Result<PageRequest, ApiError>;
}

impl RequestExt for Request {
    fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no parameter '{name}'")))
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn session_id(&self) -> Result<&str, ApiError> {
        self.session
            .as_deref()
            .ok_or_else(|| ApiError::internal("route has no session"))
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            ApiError::validation(format!("request body is not valid: {e}"))
                .with_detail("line", e.line())
                .with_detail("column", e.column())
        })
    }

    fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = parse_limit(self.query("limit"))?;
        let after = match self.query("cursor").filter(|c| !c.is_empty()) {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        Ok(PageRequest { limit, after })
    }
}
