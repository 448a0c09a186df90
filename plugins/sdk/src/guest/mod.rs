//! What a plugin is written with: the [`Plugin`] trait whose manifest binds each route to
//! its handler, the dispatch that the `export!` macro wires to the WIT bindings, and
//! typed facades over the host interfaces (storage, WhatsApp, sessions, log). On the host
//! target the facades run against the in-memory host of [`crate::testing`], so a plugin's
//! logic is testable with plain `cargo test`.

pub(crate) mod dispatch;
mod event;
mod manifest;
mod request;
mod response;
pub mod schema;

pub mod chats;
pub mod events;
pub mod groups;
pub mod log;
pub mod media;
pub mod outbox;
pub mod platform_admin;
pub mod sessions;
pub mod store;
pub mod webhooks;
pub mod whatsapp;

pub use event::Event;
pub use manifest::{EventHandler, Handler, Manifest, Route};
pub use request::Request;
pub use response::{IntoResponse, Json, bytes};

/// The generated WIT bindings (`wa:gateway/lazy-plugin`). Plugins use the facades instead, so
/// their code also runs against the in-memory host in native tests.
#[allow(unsafe_code, unreachable_pub, clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wa:gateway/lazy-plugin",
        pub_export_macro: true,
        default_bindings_module: "gateway_sdk::guest::bindings",
        generate_all,
    });
}

pub use bindings::wa::gateway::types::{Caller, Capability, Response};

/// Exports a [`Plugin`] as the component's `endpoint` (`gateway_sdk::export!(MyPlugin)`).
/// On the host target it exports nothing (the plugin is served by [`crate::testing`]),
/// so the crate also builds natively for tests.
#[macro_export]
macro_rules! export {
    ($plugin:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::guest::bindings::export!($plugin with_types_in $crate::guest::bindings);
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::Manifest = <$plugin as $crate::Plugin>::manifest;
    };
}

/// An endpoint plugin. Implement it on a unit struct and pass that to
/// `gateway_sdk::export!`; the manifest binds every route (and event) to its handler, so
/// nothing links them by a string a typo could break.
pub trait Plugin: 'static {
    /// The routes with their handlers, and the events with theirs.
    fn manifest() -> Manifest;
}
