//! Media bytes the host streams (`media`): a plugin answers with a blob handle, never
//! with the bytes.
//!
//! [`download`] makes a message's media available for the answer being built; [`answer`]
//! is that answer: 200, `x-gateway-blob: <handle>`, an empty body. The host replaces it
//! with the bytes and sets `content-type`, `content-length`, `content-disposition` and
//! `x-media-sha256` from the blob it holds (API.md §W).

use super::Response;
use super::bindings::wa::gateway::media as wit;
use super::bindings::wa::gateway::whatsapp_types::{MessageKey, WhatsappError};

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::media as imp;
#[cfg(target_arch = "wasm32")]
use wit as imp;

pub use wit::Blob;

/// The header naming the blob the host streams in place of the body.
pub const BLOB_HEADER: &str = "x-gateway-blob";

/// Makes the media of a received or sent message downloadable in this call's answer.
/// `not-found` when WhatsApp no longer has it and the phone will not re-upload it.
pub fn download(message: &MessageKey) -> Result<Blob, WhatsappError> {
    imp::download(message)
}

/// The 200 answer that streams `blob`: its handle in [`BLOB_HEADER`], no body.
pub fn answer(blob: &Blob) -> Response {
    Response {
        status: 200,
        headers: vec![(BLOB_HEADER.to_owned(), blob.handle.clone())],
        body: Vec::new(),
    }
}
