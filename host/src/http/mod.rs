//! HTTP: the hyper server both listeners run on (limits, timeouts, graceful shutdown), the
//! API listener's serving threads (one per core),
//! one place error envelopes are written, request ids, and the `/api/v1` pipeline.

pub mod api;
mod apikeys;
pub(crate) mod body;
pub mod envelope;
mod errors;
mod media;
mod per_core;
pub mod request_id;
mod server;

pub use per_core::ServingThreads;
pub use server::{Listener, ServerLimits, connection_slots, serve};

use bytes::Bytes;
use http_body_util::Full;

/// Every response body the gateway writes.
pub type Body = Full<Bytes>;
pub type Response = http::Response<Body>;
