//! The guest SDK for wa-gateway plugins, and the pieces the host shares with them.
//!
//! The shared pieces — the error envelope ([`error`]), JIDs and phone numbers ([`jid`]),
//! cursor pagination ([`paging`]) and the storage limits ([`limits`]) — compile
//! everywhere, so host and plugins agree on one form. With the default `guest` feature the
//! crate also carries the WIT bindings and what a plugin component is written with
//! ([`guest`]), and on the host target an in-memory host to test plugins natively
//! ([`testing`]); see the README's "Writing a plugin".

pub mod canonical;
pub mod error;
pub mod jid;
pub mod limits;
pub mod media_types;
pub mod packed;
pub mod paging;

#[cfg(feature = "guest")]
pub mod guest;
#[cfg(all(feature = "guest", not(target_arch = "wasm32")))]
pub mod testing;

pub use error::{ApiError, ErrorCode};
pub use jid::{Jid, JidError};
pub use paging::{
    DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, decode_cursor, encode_cursor, page_sorted,
    parse_limit,
};

#[cfg(feature = "guest")]
pub use guest::{
    Caller, Capability, Event, IntoResponse, Json, Manifest, Plugin, Request, Response, Route,
    bytes, chats, events, groups, log, media, outbox, platform_admin, sessions, store, webhooks,
    whatsapp,
};

/// Re-exported for `#[derive(JsonSchema)]` on request and response types.
pub use schemars::{self, JsonSchema};
/// Re-exported so plugins need not depend on `serde_json` just to build answers.
pub use serde_json::{self, json};
