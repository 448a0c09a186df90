//! The request a plugin serves, held by the host for the length of the call. A
//! `lazy-plugin` (`wa:gateway/incoming`, WIT 0.1.5) reads it on demand: the host copies a
//! part (headers, query, body, caller…) into the plugin only when the plugin asks for it.
//! A `plugin` (the older, whole-record world) gets every part lowered at once. Either way
//! the HTTP layer hands over what it already has (method, URI, header map, body) and the
//! WIT strings are built here, only for what is read.

use super::convert::wit_capability;
use super::{CallContext, InstanceState, wit};
use crate::routing::RouteTemplate;
use bytes::Bytes;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, Resource};

/// Bindings of the `lazy-plugin` world. Its imports other than `incoming` are the
/// `plugin` world's, so each host interface is implemented (and linked) once.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wa:gateway/lazy-plugin",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "wa:gateway/types": crate::hostapi::wa::gateway::types,
            "wa:gateway/whatsapp-types": crate::hostapi::wa::gateway::whatsapp_types,
            "wa:gateway/storage": crate::hostapi::wa::gateway::storage,
            "wa:gateway/whatsapp-read": crate::hostapi::wa::gateway::whatsapp_read,
            "wa:gateway/whatsapp-send": crate::hostapi::wa::gateway::whatsapp_send,
            "wa:gateway/whatsapp-groups": crate::hostapi::wa::gateway::whatsapp_groups,
            "wa:gateway/session-control": crate::hostapi::wa::gateway::session_control,
            "wa:gateway/whatsapp-chats": crate::hostapi::wa::gateway::whatsapp_chats,
            "wa:gateway/outbox": crate::hostapi::wa::gateway::outbox,
            "wa:gateway/media": crate::hostapi::wa::gateway::media,
            "wa:gateway/event-bus": crate::hostapi::wa::gateway::event_bus,
            "wa:gateway/webhook-delivery": crate::hostapi::wa::gateway::webhook_delivery,
            "wa:gateway/platform-admin": crate::hostapi::wa::gateway::platform_admin,
            "wa:gateway/log": crate::hostapi::wa::gateway::log,
            "wa:gateway/incoming.request": super::ServedRequest,
        },
    });
}

use bindings::wa::gateway::incoming::{Host, HostRequest};
pub use bindings::{LazyPlugin, LazyPluginPre};

/// The request of one plugin call, as the HTTP layer matched it. The caller, session and
/// request id are the call's ([`CallContext`]).
#[derive(Clone)]
pub struct ServedRequest {
    pub method: http::Method,
    pub route: Arc<RouteTemplate>,
    pub operation_id: String,
    /// The path under `/api/v1`, still percent-encoded.
    pub path: String,
    /// The route's parameters, decoded, in template order.
    pub params: Vec<(String, String)>,
    /// Read for its query string.
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl ServedRequest {
    fn caller(ctx: &CallContext) -> wit::Caller {
        wit::Caller {
            organization: ctx.organization.to_string(),
            principal: ctx.principal.to_string(),
            capabilities: ctx.capabilities.iter().map(wit_capability).collect(),
        }
    }

    /// The whole request, for a plugin on the `plugin` world.
    fn to_wit(&self, ctx: &CallContext) -> wit::Request {
        wit::Request {
            method: self.method.as_str().to_owned(),
            route: self.route.as_str().to_owned(),
            operation_id: self.operation_id.clone(),
            path: self.path.clone(),
            params: self.params.clone(),
            query: query_pairs(self.uri.query()),
            headers: plugin_headers(&self.headers),
            body: self.body.to_vec(),
            caller: Self::caller(ctx),
            session: ctx.session.clone(),
            request_id: ctx.request_id.clone(),
        }
    }
}

/// A query string as pairs: `a=1&b=x%40y` → `[("a","1"),("b","x@y")]`, `+` as space,
/// percent-decoded (lossy on bad UTF-8).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Request headers a plugin may see: never credentials or cookies.
fn plugin_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "authorization" | "x-api-key" | "cookie" | "proxy-authorization"
            )
        })
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// The handle passed to `handler.handle`. A borrow cannot outlive the call, so one fixed
/// representation is enough: every method reads the store's current request.
pub fn handle() -> Resource<ServedRequest> {
    Resource::new_borrow(0)
}

/// Adds `wa:gateway/incoming` to a linker that already has the `plugin` world's imports.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    bindings::wa::gateway::incoming::add_to_linker::<InstanceState, HasSelf<InstanceState>>(
        linker,
        |s| s,
    )
}

impl InstanceState {
    fn served(&self) -> wasmtime::Result<(&ServedRequest, &CallContext)> {
        match (&self.request, self.call()) {
            (Some(request), Some(ctx)) => Ok((request, ctx)),
            _ => Err(wasmtime::format_err!("no request is being served")),
        }
    }

    /// The served request whole, for a plugin on the `plugin` world.
    pub fn served_record(&self) -> wasmtime::Result<wit::Request> {
        let (request, ctx) = self.served()?;
        Ok(request.to_wit(ctx))
    }
}

impl Host for InstanceState {}

impl HostRequest for InstanceState {
    fn method(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.0.method.as_str().to_owned())
    }

    fn route(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.0.route.as_str().to_owned())
    }

    fn operation_id(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.0.operation_id.clone())
    }

    fn path(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.0.path.clone())
    }

    fn params(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.served()?.0.params.clone())
    }

    fn query(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(query_pairs(self.served()?.0.uri.query()))
    }

    fn headers(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(plugin_headers(&self.served()?.0.headers))
    }

    fn body(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.served()?.0.body.to_vec())
    }

    fn caller(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<wit::Caller> {
        Ok(ServedRequest::caller(self.served()?.1))
    }

    fn session(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Option<String>> {
        Ok(self.served()?.1.session.clone())
    }

    fn request_id(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.1.request_id.clone())
    }

    fn drop(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_pairs(Some("q=a+b&jid=1%40lid&x&limit=7")),
            vec![
                ("q".into(), "a b".into()),
                ("jid".into(), "1@lid".into()),
                ("x".into(), "".into()),
                ("limit".into(), "7".into())
            ]
        );
        assert!(query_pairs(None).is_empty());
    }

    #[test]
    fn plugins_never_see_credentials_or_cookies() {
        let mut headers = http::HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer x"),
            ("x-api-key", "k"),
            ("cookie", "c=1"),
            ("proxy-authorization", "p"),
            ("accept", "application/json"),
        ] {
            headers.insert(k, v.parse().unwrap());
        }
        assert_eq!(
            plugin_headers(&headers),
            vec![("accept".to_owned(), "application/json".to_owned())]
        );
    }
}
