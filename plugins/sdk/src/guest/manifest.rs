//! The manifest a plugin declares: each route bound to the function that serves it (with
//! request and response schemas derived from Rust types, for OpenAPI), and each event
//! subscription bound to the function that receives it.

use super::bindings::wa::gateway::types as wit;
use super::response::IntoResponse;
use super::schema;
use super::{Capability, Event, Request, Response};
use crate::error::ApiError;
use schemars::JsonSchema;
use std::fmt;

/// A route handler, as the dispatcher calls it.
pub type Handler = Box<dyn Fn(&Request) -> Result<Response, ApiError> + Send + Sync>;
/// An event handler, as the dispatcher calls it.
pub type EventHandler = Box<dyn Fn(&Event) -> Result<(), ApiError> + Send + Sync>;

/// What a plugin declares about itself: its routes and event subscriptions, each bound to
/// a handler.
pub struct Manifest {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) routes: Vec<(Route, Handler)>,
    pub(crate) events: Vec<(String, EventHandler)>,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("name", &self.name)
            .field("version", &self.version)
            .field(
                "routes",
                &self.routes.iter().map(|(r, _)| r).collect::<Vec<_>>(),
            )
            .field(
                "events",
                &self.events.iter().map(|(e, _)| e).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Manifest {
    /// `name` is `[a-z0-9-]` and names the component file (`name.wasm`); `version` is
    /// usually `env!("CARGO_PKG_VERSION")`.
    pub fn new(name: &str, version: &str) -> Self {
        Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            routes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Serves `route` with `handler`. A handler returns anything that
    /// [`IntoResponse`]: [`super::Json`] answers with the route's success status,
    /// `()` with an empty body (204 routes), a [`Response`] as it is.
    pub fn route<H, R>(mut self, route: Route, handler: H) -> Self
    where
        H: Fn(&Request) -> Result<R, ApiError> + Send + Sync + 'static,
        R: IntoResponse,
    {
        let status = route.success_status;
        let handler: Handler = Box::new(move |req| handler(req).map(|r| r.into_response(status)));
        self.routes.push((route, handler));
        self
    }

    /// Receives the event `name` (`*` for every event) with `handler`.
    pub fn on<H>(mut self, name: &str, handler: H) -> Self
    where
        H: Fn(&Event) -> Result<(), ApiError> + Send + Sync + 'static,
    {
        self.events.push((name.to_owned(), Box::new(handler)));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared routes, in order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|(r, _)| r)
    }

    /// The handler bound to an operation id.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn handler(&self, operation_id: &str) -> Option<&Handler> {
        self.routes
            .iter()
            .find(|(r, _)| r.operation_id == operation_id)
            .map(|(_, h)| h)
    }

    /// The handler of the route at this index of [`Manifest::routes`].
    pub(crate) fn handler_at(&self, index: usize) -> Option<&Handler> {
        self.routes.get(index).map(|(_, h)| h)
    }

    /// The handler for an event: the one bound to its name, else the `*` one.
    pub(crate) fn event_handler(&self, name: &str) -> Option<&EventHandler> {
        let bound = |n: &str| self.events.iter().find(|(e, _)| e == n).map(|(_, h)| h);
        bound(name).or_else(|| bound("*"))
    }

    /// The WIT form the host reads at load: schemas are generated here, once.
    pub(crate) fn to_wit(&self) -> wit::Manifest {
        let mut events: Vec<String> = self.events.iter().map(|(e, _)| e.clone()).collect();
        events.dedup();
        wit::Manifest {
            name: self.name.clone(),
            version: self.version.clone(),
            routes: self.routes.iter().map(|(r, _)| r.to_wit()).collect(),
            events,
        }
    }
}

/// One endpoint: method, path template, the capability it needs, a unique operation id,
/// documentation, and the types its request and success bodies have.
#[derive(Clone)]
pub struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) capability: Capability,
    pub(crate) operation_id: String,
    summary: String,
    description: Option<String>,
    request_schema: Option<fn() -> serde_json::Value>,
    response_schema: Option<fn() -> serde_json::Value>,
    pub(crate) success_status: u16,
    query: Vec<(String, String, bool)>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.operation_id)
    }
}

impl Route {
    fn new(method: &'static str, path: &str, capability: Capability, operation_id: &str) -> Self {
        Route {
            method,
            path: path.to_owned(),
            capability,
            operation_id: operation_id.to_owned(),
            summary: String::new(),
            description: None,
            request_schema: None,
            response_schema: None,
            success_status: 200,
            query: Vec::new(),
        }
    }

    pub fn get(path: &str, capability: Capability, operation_id: &str) -> Self {
        Self::new("GET", path, capability, operation_id)
    }

    pub fn post(path: &str, capability: Capability, operation_id: &str) -> Self {
        Self::new("POST", path, capability, operation_id)
    }

    pub fn put(path: &str, capability: Capability, operation_id: &str) -> Self {
        Self::new("PUT", path, capability, operation_id)
    }

    pub fn patch(path: &str, capability: Capability, operation_id: &str) -> Self {
        Self::new("PATCH", path, capability, operation_id)
    }

    pub fn delete(path: &str, capability: Capability, operation_id: &str) -> Self {
        Self::new("DELETE", path, capability, operation_id)
    }

    pub fn summary(mut self, summary: &str) -> Self {
        self.summary = summary.to_owned();
        self
    }

    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }

    /// The request body is a `T` (its JSON Schema is derived from the type).
    pub fn request<T: JsonSchema>(mut self) -> Self {
        self.request_schema = Some(schema::of::<T>);
        self
    }

    /// The success body is a `T` (its JSON Schema is derived from the type).
    pub fn response<T: JsonSchema>(mut self) -> Self {
        self.response_schema = Some(schema::of::<T>);
        self
    }

    /// The success status when it is not 200 (201 for creation, 204 for no body).
    pub fn status(mut self, status: u16) -> Self {
        self.success_status = status;
        self
    }

    /// A query parameter the route understands, for documentation.
    pub fn query(mut self, name: &str, description: &str, required: bool) -> Self {
        self.query
            .push((name.to_owned(), description.to_owned(), required));
        self
    }

    /// `limit` and `cursor`, the query parameters of every cursor list (API.md §1.6).
    pub fn paged(self) -> Self {
        self.query("limit", "page size, 1-200 (default 50)", false)
            .query("cursor", "nextCursor of the previous page", false)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn operation_id(&self) -> &str {
        &self.operation_id
    }

    pub fn method(&self) -> &str {
        self.method
    }

    fn to_wit(&self) -> wit::Route {
        wit::Route {
            method: self.method.to_owned(),
            path: self.path.clone(),
            capability: self.capability,
            operation_id: self.operation_id.clone(),
            summary: self.summary.clone(),
            description: self.description.clone(),
            request_schema: self.request_schema.map(|f| f().to_string()),
            response_schema: self.response_schema.map(|f| f().to_string()),
            success_status: (self.success_status != 200).then_some(self.success_status),
            query_params: self
                .query
                .iter()
                .map(|(name, description, required)| wit::QueryParam {
                    name: name.clone(),
                    description: description.clone(),
                    required: *required,
                })
                .collect(),
        }
    }
}
