//! An in-memory host for testing plugins natively (`cargo test` on the host target, no
//! wasm, no gateway): storage with the host's ordering, scoping, limits and atomicity,
//! fake WhatsApp and session-control interfaces, and a harness that routes requests to a
//! plugin's handlers the way the gateway does (capability 403, unknown session 404).
//!
//! ```ignore
//! let host = TestHost::new::<Notes>();
//! let session = host.add_session();
//! let created = host.post(&format!("/sessions/{session}/notes"), json!({"text": "hi"}));
//! assert_eq!(created.status, 201);
//! ```
//!
//! State is per thread (each `#[test]` runs on its own thread); [`TestHost::new`] resets it.

pub(crate) mod chats;
pub(crate) mod events;
pub(crate) mod groups;
pub(crate) mod log;
pub(crate) mod media;
pub(crate) mod outbox;
pub(crate) mod platform_admin;
mod routing;
pub(crate) mod sessions;
pub(crate) mod storage;
pub(crate) mod webhooks;
pub(crate) mod whatsapp;

pub use chats::ChatsWorld;
pub use events::{EmittedEvent, EventBusWorld};
pub use groups::{FakeGroup, GroupsWorld};
pub use media::MediaWorld;
pub use outbox::{OutboxItem, OutboxWorld};
pub use platform_admin::{BackfillCounts, PlatformAdminWorld};
pub use sessions::SessionWorld;
pub use whatsapp::{FakeContact, WhatsappWorld};

use crate::error::ApiError;
use crate::guest::bindings::wa::gateway::types as wit;
use crate::guest::{Capability, Event, Manifest, Plugin, Request, dispatch};
use serde_json::Value;
use std::cell::RefCell;

/// The storage scope of the call in progress: its session's, else its organization's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    Session(String),
    Organization(String),
}

/// Who the call in progress is for.
#[derive(Debug, Clone)]
pub(crate) struct CallScope {
    pub(crate) organization: String,
    /// `user:test` for requests, `event` for event deliveries.
    pub(crate) principal: String,
    pub(crate) capabilities: Vec<Capability>,
    pub(crate) session: Option<String>,
}

impl CallScope {
    pub(crate) fn storage_scope(&self) -> Scope {
        match &self.session {
            Some(s) => Scope::Session(s.clone()),
            None => Scope::Organization(self.organization.clone()),
        }
    }
}

thread_local! {
    static CALL: RefCell<Option<CallScope>> = const { RefCell::new(None) };
}

/// The scope of the call in progress (`None` outside a call: host interfaces then fail,
/// as the gateway's do).
pub(crate) fn current_call() -> Option<CallScope> {
    CALL.with_borrow(|c| c.clone())
}

fn set_call(call: Option<CallScope>) {
    CALL.with_borrow_mut(|c| *c = call);
}

/// A plugin under test, served by the in-memory host.
pub struct TestHost {
    manifest: &'static Manifest,
    organization: String,
    capabilities: Vec<Capability>,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("plugin", &self.manifest.name())
            .field("organization", &self.organization)
            .finish()
    }
}

/// An answer, as the gateway would write it: errors become the envelope.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON (`null` when empty).
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The envelope's `error.code`, when the answer is an error.
    pub fn error_code(&self) -> Option<String> {
        ApiError::from_envelope(&self.body).map(|e| e.code.as_str().to_owned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl TestHost {
    /// A fresh in-memory host (empty storage, no sessions, WhatsApp connected and empty)
    /// serving plugin `P`, for organization `org_test` with read, send and manage.
    pub fn new<P: Plugin>() -> TestHost {
        storage::reset();
        whatsapp::reset();
        sessions::reset();
        log::reset();
        outbox::reset();
        media::reset();
        chats::reset();
        groups::reset();
        platform_admin::reset();
        let manifest = dispatch::manifest_of::<P>();
        events::reset(manifest.name());
        set_call(None);
        TestHost {
            manifest,
            organization: "org_test".into(),
            capabilities: vec![Capability::Read, Capability::Send, Capability::Manage],
        }
    }

    /// Calls as another organization and with other capabilities from now on.
    pub fn caller(mut self, organization: &str, capabilities: &[Capability]) -> TestHost {
        self.organization = organization.to_owned();
        self.capabilities = capabilities.to_vec();
        self
    }

    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// Creates a paired, working session of the caller's organization; returns its id.
    pub fn add_session(&self) -> String {
        sessions::add_working(&self.organization)
    }

    /// The fake session registry, to set sessions up or look at them.
    pub fn sessions(&self) -> SessionWorld {
        SessionWorld
    }

    /// The fake WhatsApp, to add contacts or drop the connection.
    pub fn whatsapp(&self) -> WhatsappWorld {
        WhatsappWorld
    }

    /// The `whatsapp-chats` calls the plugin made (chat states, receipts, settings,
    /// deletions); they share the fake connection of [`TestHost::whatsapp`].
    pub fn chats(&self) -> ChatsWorld {
        ChatsWorld
    }

    /// The fake groups (`whatsapp-groups` and the group look-ups of `whatsapp-read`).
    pub fn groups(&self) -> GroupsWorld {
        GroupsWorld
    }

    /// The fake `platform-admin` backfills, to finish them or look at them.
    pub fn platform_admin(&self) -> PlatformAdminWorld {
        PlatformAdminWorld
    }

    /// The events the plugin emitted through `event-bus`, and its emit grant.
    pub fn event_bus(&self) -> EventBusWorld {
        EventBusWorld
    }

    /// Every event the plugin emitted so far, in order.
    pub fn emitted(&self) -> Vec<EmittedEvent> {
        EventBusWorld.emitted()
    }

    /// The fake outbox: submitted items, the session's link, receipts and failures
    /// (published to the plugin as `message.status`).
    pub fn outbox(&self) -> OutboxWorld<'_> {
        OutboxWorld { host: self }
    }

    /// The fake media store: message media to download, uploaded files.
    pub fn media(&self) -> MediaWorld {
        MediaWorld
    }

    /// Log lines the plugin wrote, as `level: message`.
    pub fn logs(&self) -> Vec<String> {
        log::lines()
    }

    /// Every item of a cursor list, following `nextCursor` from `path` (which may carry
    /// a query, `limit` included) until the last page; each page must answer 200 and hold
    /// at most `limit` items.
    pub fn collect_pages(&self, path: &str) -> Vec<Value> {
        let limit = path
            .split_once('?')
            .map(|(_, q)| routing::query_pairs(q))
            .and_then(|q| q.into_iter().find(|(k, _)| k == "limit"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(crate::DEFAULT_LIMIT as usize);
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut next = path.to_owned();
        loop {
            let r = self.get(&next);
            assert_eq!(
                r.status,
                200,
                "{next}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let page = r.json();
            let data = page["data"].as_array().expect("a list answer has data");
            assert!(
                data.len() <= limit,
                "{next}: {} items over limit {limit}",
                data.len()
            );
            items.extend(data.iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => next = format!("{path}{sep}cursor={c}"),
                None => return items,
            }
        }
    }

    pub fn get(&self, path: &str) -> TestResponse {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> TestResponse {
        self.request("POST", path, Some(body))
    }

    pub fn put(&self, path: &str, body: Value) -> TestResponse {
        self.request("PUT", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.request("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> TestResponse {
        self.request("DELETE", path, None)
    }

    /// Routes `method path?query` to the plugin as the gateway would: 404/405 for unknown
    /// routes, 403 without the route's capability, 404 for a session that is not the
    /// caller's; then the handler, its errors written as the envelope.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> TestResponse {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.request_bytes(method, path, body)
    }

    /// As [`TestHost::request`], with request headers (lower-case names).
    pub fn request_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> TestResponse {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        Self::answer(self.route_and_call(method, path, headers, body))
    }

    /// As [`TestHost::request`], with a raw body.
    pub fn request_bytes(&self, method: &str, path: &str, body: Vec<u8>) -> TestResponse {
        Self::answer(self.route_and_call(method, path, Vec::new(), body))
    }

    /// The answer as the gateway writes it: errors become the envelope.
    fn answer(result: Result<wit::Response, ApiError>) -> TestResponse {
        match result {
            Ok(r) => TestResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            },
            Err(e) => TestResponse {
                status: e.http_status(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: e.envelope_bytes(),
            },
        }
    }

    fn route_and_call(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<wit::Response, ApiError> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let (route, params) = routing::find(self.manifest, method, path)?;
        if !self.capabilities.contains(&route.capability) {
            return Err(ApiError::forbidden(
                "the caller lacks the route's capability",
            ));
        }
        let session = params
            .iter()
            .find(|(k, _)| k == "session")
            .map(|(_, v)| v.clone());
        // The gateway's admin `{session}` rule: on platform-admin routes the session is
        // found in any organization, and the call runs as that organization.
        let platform_route = route.capability == Capability::PlatformAdmin;
        let mut organization = self.organization.clone();
        if let Some(s) = &session {
            let found = match sessions::organization_of(s) {
                Some(org) if platform_route || org == self.organization => Some(org),
                _ => None,
            };
            organization = found.ok_or_else(|| {
                ApiError::not_found("session not found").with_detail("session", s.clone())
            })?;
        }
        let request = Request::whole(wit::Request {
            method: method.to_owned(),
            route: route.path().to_owned(),
            operation_id: route.operation_id().to_owned(),
            path: path.to_owned(),
            params,
            query: routing::query_pairs(query),
            headers,
            body,
            caller: wit::Caller {
                organization: organization.clone(),
                principal: "user:test".into(),
                capabilities: self.capabilities.clone(),
            },
            session: session.clone(),
            request_id: "test".into(),
        });
        set_call(Some(CallScope {
            organization,
            principal: "user:test".into(),
            capabilities: self.capabilities.clone(),
            session,
        }));
        let answer = dispatch::serve(self.manifest, &request);
        set_call(None);
        answer
    }

    /// Delivers an event of `session` to the plugin, as the gateway does for subscribers.
    pub fn event(&self, session: &str, name: &str, payload: Value) -> Result<(), ApiError> {
        self.event_at(session, name, payload, 1_719_662_400_000)
    }

    /// As [`TestHost::event`], published at `timestamp` (epoch ms), for plugins that order
    /// changes by when they happened.
    pub fn event_at(
        &self,
        session: &str,
        name: &str,
        payload: Value,
        timestamp: u64,
    ) -> Result<(), ApiError> {
        let event = Event::from_wit(wit::Event {
            id: format!("evt_test_{name}"),
            name: name.to_owned(),
            session: session.to_owned(),
            organization: self.organization.clone(),
            timestamp,
            payload: payload.to_string(),
        });
        set_call(Some(CallScope {
            organization: self.organization.clone(),
            principal: "event".into(),
            capabilities: Vec::new(),
            session: Some(session.to_owned()),
        }));
        let result = dispatch::deliver(self.manifest, &event);
        set_call(None);
        result
    }
}
