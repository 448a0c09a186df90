//! The request a `lazy-plugin` reads on demand (`wa:gateway/incoming`, WIT 0.1.5): the
//! host keeps the request in the instance's store for the length of the call and copies a
//! part into the plugin only when the plugin asks for it, instead of lowering every
//! header, parameter and the body into every call.

use super::InstanceState;
use super::wit;
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

/// The host side of an `incoming.request` handle: there is one per call, the request the
/// store holds while `handle` runs.
pub struct ServedRequest;

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
    fn served(&self) -> wasmtime::Result<&wit::Request> {
        self.request
            .as_ref()
            .ok_or_else(|| wasmtime::format_err!("no request is being served"))
    }
}

impl Host for InstanceState {}

impl HostRequest for InstanceState {
    fn method(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.method.clone())
    }

    fn route(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.route.clone())
    }

    fn operation_id(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.operation_id.clone())
    }

    fn path(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.path.clone())
    }

    fn params(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.served()?.params.clone())
    }

    fn query(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.served()?.query.clone())
    }

    fn headers(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.served()?.headers.clone())
    }

    fn body(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.served()?.body.clone())
    }

    fn caller(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<wit::Caller> {
        Ok(self.served()?.caller.clone())
    }

    fn session(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<Option<String>> {
        Ok(self.served()?.session.clone())
    }

    fn request_id(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<String> {
        Ok(self.served()?.request_id.clone())
    }

    fn drop(&mut self, _: Resource<ServedRequest>) -> wasmtime::Result<()> {
        Ok(())
    }
}
