//! HTTP: the hyper server both listeners run on (limits, timeouts, graceful shutdown), the
//! one place error envelopes are written, request ids, and the `/api/v1` pipeline.

pub mod api;
mod apikeys;
pub(crate) mod body;
pub mod envelope;
mod errors;
mod media;
pub mod request_id;
mod server;

pub use server::{Listener, ServerLimits, serve};

use bytes::Bytes;
use http_body_util::Full;

/// Every response body the gateway writes.
pub type Body = Full<Bytes>;
pub type Response = http::Response<Body>;
