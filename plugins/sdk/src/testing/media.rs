//! `media` in memory, for native plugin tests.
//!
//! Tests put the bytes a message's media would have ([`MediaWorld::set_blob`]) and the
//! files uploaded with uploadMedia ([`MediaWorld::add_upload`], which the outbox fake
//! checks `media.id` against). `download` hands out a handle per call, as the host does,
//! and is LIVE: it needs the session connected.

use super::current_call;
use super::outbox::{Link, link};
use crate::canonical::hex;
use crate::guest::bindings::wa::gateway::media::Blob;
use crate::guest::bindings::wa::gateway::whatsapp_types::{MessageKey, WhatsappError};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

struct File {
    mimetype: String,
    bytes: Vec<u8>,
    file_name: Option<String>,
}

#[derive(Default)]
struct Store {
    /// (session, chat, message id) → the message's media.
    blobs: BTreeMap<(String, String, String), File>,
    /// (session, `med_…`): files uploaded with uploadMedia.
    uploads: BTreeSet<(String, String)>,
    /// Handles given out, in order.
    handles: Vec<String>,
}

thread_local! {
    static STORE: RefCell<Store> = RefCell::new(Store::default());
}

pub(crate) fn reset() {
    STORE.with_borrow_mut(|s| *s = Store::default());
}

pub(crate) fn upload_exists(session: &str, id: &str) -> bool {
    STORE.with_borrow(|s| s.uploads.contains(&(session.to_owned(), id.to_owned())))
}

/// The handle tests set media up with.
#[derive(Debug, Clone, Copy)]
pub struct MediaWorld;

impl MediaWorld {
    /// The bytes of the media of message `id` in `chat` of `session`.
    pub fn set_blob(
        &self,
        session: &str,
        chat: &str,
        id: &str,
        mimetype: &str,
        bytes: &[u8],
        file_name: Option<&str>,
    ) {
        let file = File {
            mimetype: mimetype.to_owned(),
            bytes: bytes.to_vec(),
            file_name: file_name.map(str::to_owned),
        };
        STORE.with_borrow_mut(|s| {
            s.blobs
                .insert((session.to_owned(), chat.to_owned(), id.to_owned()), file)
        });
    }

    /// A file uploaded to `session` with uploadMedia (the host route; its bytes never
    /// reach a plugin); returns its `med_…` id.
    pub fn add_upload(&self, session: &str) -> String {
        STORE.with_borrow_mut(|s| {
            let id = format!("med_01J{:023}", s.uploads.len() + 1);
            s.uploads.insert((session.to_owned(), id.clone()));
            id
        })
    }

    /// The handles `download` has given out, oldest first.
    pub fn handles(&self) -> Vec<String> {
        STORE.with_borrow(|s| s.handles.clone())
    }
}

pub(crate) fn download(message: &MessageKey) -> Result<Blob, WhatsappError> {
    let session = current_call()
        .and_then(|c| c.session)
        .ok_or_else(|| WhatsappError::Failed("live calls need a session route".into()))?;
    if link(&session) != Link::Connected {
        return Err(WhatsappError::NotConnected(
            "session is not connected".into(),
        ));
    }
    STORE.with_borrow_mut(|s| {
        let key = (session, message.chat.clone(), message.id.clone());
        let file = s.blobs.get(&key).ok_or_else(|| {
            WhatsappError::NotFound(
                "the media is gone from WhatsApp's servers and the phone did not re-upload it"
                    .into(),
            )
        })?;
        let blob = Blob {
            handle: format!("blob_{}", s.handles.len() + 1),
            mimetype: file.mimetype.clone(),
            size: file.bytes.len() as u64,
            file_name: file.file_name.clone(),
            sha256: hex(&Sha256::digest(&file.bytes)),
        };
        s.handles.push(blob.handle.clone());
        Ok(blob)
    })
}
