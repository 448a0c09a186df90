//! One request routed to the plugin: path and query values, headers, the JSON body, the
//! caller, the session and the page asked for. Served by the gateway, each part is copied
//! into the plugin the first time it is read (`wa:gateway/incoming`), so a handler pays
//! only for what it reads.

use super::Caller;
use super::bindings::wa::gateway::incoming;
use super::bindings::wa::gateway::types as wit;
use crate::error::ApiError;
use crate::paging::PageRequest;
use serde::de::DeserializeOwned;
use std::cell::OnceCell;

/// A request the host routed here. The host has authenticated the caller, checked the
/// route's capability and, for `{session}` routes, that the session is the caller's.
pub struct Request<'a> {
    from: Source<'a>,
}

enum Source<'a> {
    /// Served by the gateway: the parts read so far.
    Host(&'a incoming::Request, Box<Parts>),
    /// Built whole (the in-memory host of native tests).
    #[cfg(not(target_arch = "wasm32"))]
    Whole(Box<wit::Request>),
}

/// The parts of a served request, each fetched from the host once.
#[derive(Default)]
struct Parts {
    method: OnceCell<String>,
    route: OnceCell<String>,
    operation_id: OnceCell<String>,
    path: OnceCell<String>,
    params: OnceCell<Vec<(String, String)>>,
    query: OnceCell<Vec<(String, String)>>,
    headers: OnceCell<Vec<(String, String)>>,
    body: OnceCell<Vec<u8>>,
    caller: OnceCell<Caller>,
    session: OnceCell<Option<String>>,
    request_id: OnceCell<String>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    /// The request the gateway is serving, read on demand.
    pub(crate) fn served(handle: &'a incoming::Request) -> Self {
        Request {
            from: Source::Host(handle, Box::default()),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn whole(request: wit::Request) -> Request<'static> {
        Request {
            from: Source::Whole(Box::new(request)),
        }
    }

    /// One part: from the host the first time it is read, or from the whole request.
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))]
    fn part<T>(
        &self,
        cell: impl FnOnce(&Parts) -> &OnceCell<T>,
        fetch: impl FnOnce(&incoming::Request) -> T,
        whole: impl FnOnce(&wit::Request) -> &T,
    ) -> &T {
        match &self.from {
            Source::Host(handle, parts) => cell(parts).get_or_init(|| fetch(handle)),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Whole(request) => whole(request),
        }
    }

    /// Upper-case HTTP method.
    pub fn method(&self) -> &str {
        self.part(|p| &p.method, |h| h.method(), |r| &r.method)
    }

    /// The matched route template (`/sessions/{session}/notes`).
    pub fn route(&self) -> &str {
        self.part(|p| &p.route, |h| h.route(), |r| &r.route)
    }

    pub fn operation_id(&self) -> &str {
        self.part(
            |p| &p.operation_id,
            |h| h.operation_id(),
            |r| &r.operation_id,
        )
    }

    /// The path below `/api/v1`, as sent (still percent-encoded).
    pub fn path(&self) -> &str {
        self.part(|p| &p.path, |h| h.path(), |r| &r.path)
    }

    /// A path parameter, percent-decoded (`%40` arrives as `@`).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.part(|p| &p.params, |h| h.params(), |r| &r.params)
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no parameter '{name}'")))
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query_pairs()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every query parameter in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        self.part(|p| &p.query, |h| h.query(), |r| &r.query)
    }

    /// A header value by name (case-insensitive). Credentials are never passed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.part(|p| &p.headers, |h| h.headers(), |r| &r.headers)
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body(&self) -> &[u8] {
        self.part(|p| &p.body, |h| h.body(), |r| &r.body)
    }

    /// The body parsed as JSON; an empty body reads as `{}`. A body that does not fit `T`
    /// is a validation error naming the line and column.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body = self.body();
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        serde_json::from_slice(body).map_err(|e| {
            ApiError::validation(format!("request body is not valid: {e}"))
                .with_detail("line", e.line())
                .with_detail("column", e.column())
        })
    }

    pub fn caller(&self) -> &Caller {
        self.part(|p| &p.caller, |h| h.caller(), |r| &r.caller)
    }

    /// The session the route is about; the host has checked it is the caller's.
    pub fn session_id(&self) -> Result<&str, ApiError> {
        self.part(|p| &p.session, |h| h.session(), |r| &r.session)
            .as_deref()
            .ok_or_else(|| ApiError::internal("route has no session"))
    }

    /// Echoed in the `x-request-id` response header; put it in your logs.
    pub fn request_id(&self) -> &str {
        self.part(|p| &p.request_id, |h| h.request_id(), |r| &r.request_id)
    }

    /// `limit` and `cursor` from the query (API.md §1.6).
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        PageRequest::parse(self.query("limit"), self.query("cursor"))
    }
}
