//! The guest SDK for wa-gateway plugins, and the pieces the host shares with them.
//!
//! The shared pieces — the error envelope ([`error`]), JIDs and phone numbers ([`jid`]) and
//! cursor pagination ([`paging`]) — compile everywhere, so host and plugins agree on one
//! form. With the default `guest` feature the crate also carries the WIT bindings and the
//! helpers a plugin component is written with ([`guest`]); see the README's "Writing a
//! plugin".

pub mod error;
pub mod jid;
pub mod paging;

#[cfg(feature = "guest")]
pub mod guest;

pub use error::{ApiError, ErrorCode};
pub use jid::{Jid, JidError};
pub use paging::{DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor, parse_limit};

#[cfg(feature = "guest")]
pub use guest::*;

/// Re-exported so plugins need not depend on `serde_json` just to build answers.
pub use serde_json::{self, json};
