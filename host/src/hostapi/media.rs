//! `wa:gateway/media`: a message's media made downloadable in the call's answer. The
//! bytes stay in the host: the plugin gets a handle and answers with it in
//! `x-gateway-blob`; the host then streams the bytes itself.

use super::InstanceState;
use super::convert::{message_ref, whatsapp_error};
use super::wa::gateway::media::{Blob, Host};
use super::wa::gateway::whatsapp_types::{MessageKey, WhatsappError};
use sha2::{Digest, Sha256};

impl Host for InstanceState {
    async fn download(&mut self, message: MessageKey) -> Result<Blob, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let key = message_ref(&message).map_err(WhatsappError::Invalid)?;
        let blob = super::within(
            deadline,
            async {
                engine
                    .download_media(&session, &key)
                    .await
                    .map_err(whatsapp_error)
            },
            || WhatsappError::Failed("the media did not download in time".into()),
        )
        .await?;
        let handle = format!("blob_{}", ulid::Ulid::generate());
        let answer = Blob {
            handle: handle.clone(),
            mimetype: blob.mimetype.clone(),
            size: blob.bytes.len() as u64,
            file_name: blob.file_name.clone(),
            sha256: hex::encode(Sha256::digest(blob.bytes.as_slice())),
        };
        self.blobs.insert(handle, blob);
        Ok(answer)
    }
}
