//! Builders for the manifest a plugin declares: its routes (with schemas for OpenAPI) and
//! the events it subscribes to.

use super::Capability;
use super::bindings::wa::gateway::types as wit;
use serde_json::Value;

/// What a plugin declares about itself.
#[derive(Debug, Clone)]
pub struct Manifest {
    name: String,
    version: String,
    routes: Vec<Route>,
    events: Vec<String>,
}

impl Manifest {
    /// `name` is `[a-z0-9-]`; `version` is usually `env!("CARGO_PKG_VERSION")`.
    pub fn new(name: &str, version: &str) -> Self {
        Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            routes: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Subscribes to an event name (`*` for all).
    pub fn event(mut self, name: &str) -> Self {
        self.events.push(name.to_owned());
        self
    }

    pub(crate) fn into_wit(self) -> wit::Manifest {
        wit::Manifest {
            name: self.name,
            version: self.version,
            routes: self.routes.into_iter().map(Route::into_wit).collect(),
            events: self.events,
        }
    }
}

/// One endpoint.
#[derive(Debug, Clone)]
pub struct Route {
    inner: wit::Route,
}

impl Route {
    pub fn new(method: &str, path: &str, capability: Capability, operation_id: &str) -> Self {
        Route {
            inner: wit::Route {
                method: method.to_owned(),
                path: path.to_owned(),
                capability,
                operation_id: operation_id.to_owned(),
                summary: String::new(),
                description: None,
                request_schema: None,
                response_schema: None,
                success_status: None,
                query_params: Vec::new(),
            },
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
        self.inner.summary = summary.to_owned();
        self
    }

    pub fn description(mut self, description: &str) -> Self {
        self.inner.description = Some(description.to_owned());
        self
    }

    /// JSON Schema of the request body.
    pub fn request_schema(mut self, schema: Value) -> Self {
        self.inner.request_schema = Some(schema.to_string());
        self
    }

    /// JSON Schema of the success body.
    pub fn response_schema(mut self, schema: Value) -> Self {
        self.inner.response_schema = Some(schema.to_string());
        self
    }

    /// The success status when it is not 200.
    pub fn status(mut self, status: u16) -> Self {
        self.inner.success_status = Some(status);
        self
    }

    pub fn query(mut self, name: &str, description: &str, required: bool) -> Self {
        self.inner.query_params.push(wit::QueryParam {
            name: name.to_owned(),
            description: description.to_owned(),
            required,
        });
        self
    }

    fn into_wit(self) -> wit::Route {
        self.inner
    }
}
