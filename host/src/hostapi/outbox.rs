//! `wa:gateway/outbox`: the request's session's send queue. Converts the plugin's
//! description of a message into an outbox submission (the chat JID normalised, inline
//! media set aside for the media store) and the host's items back into SendResults. A
//! sync submit may wait longer than the plugin's budget: its deadline is moved for the
//! wait and re-armed afterwards.

use super::InstanceState;
use super::convert::outbox as conv;
use super::wa::gateway::outbox::{
    Host, Outbound, OutboxError, SendResult, SendStatus, SubmitOptions, Submitted,
};
use crate::outbox::{SendMode, Submission};
use std::time::{Duration, Instant};

fn no_session() -> OutboxError {
    OutboxError::Failed("the outbox is only available on a session route".into())
}

/// Time a sync submit keeps for the plugin to answer once the send settled.
const AFTER_WAIT: Duration = Duration::from_millis(500);

impl InstanceState {
    fn outbox_scope(&self) -> Result<(crate::outbox::Outbox, String, String), OutboxError> {
        let call = self.call().ok_or_else(no_session)?;
        let session = call.session.clone().ok_or_else(no_session)?;
        let outbox = self
            .services
            .outbox
            .get()
            .cloned()
            .ok_or_else(|| OutboxError::Failed("the outbox is not running".into()))?;
        Ok((outbox, session, call.organization.to_string()))
    }
}

impl Host for InstanceState {
    async fn submit(
        &mut self,
        message: Outbound,
        options: SubmitOptions,
    ) -> Result<Submitted, OutboxError> {
        let (outbox, session, organization) = self.outbox_scope()?;
        let (chat, content, inline_media, reply_to) = conv::outbound(&message)?;
        if let Some(k) = &options.idempotency_key
            && !(1..=255).contains(&k.len())
        {
            return Err(OutboxError::Invalid(
                "Idempotency-Key must be 1-255 visible ASCII characters".into(),
            ));
        }
        if let Some(k) = &options.idempotency_key
            && !k.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(OutboxError::Invalid(
                "Idempotency-Key must be 1-255 visible ASCII characters".into(),
            ));
        }
        let mode = conv::mode(options.mode);
        let submission = Submission {
            session,
            organization,
            chat,
            content,
            inline_media,
            reply_to,
            mentions: message.mentions.clone(),
            forwarded: message.forwarded,
            mode,
            idempotency_key: options.idempotency_key.clone(),
            fingerprint: options.fingerprint.clone(),
        };
        // The sync wait does not count against the plugin's own budget.
        if mode == SendMode::Sync {
            self.deadline
                .set(Instant::now() + self.services.sync_timeout + AFTER_WAIT * 4);
        }
        let accepted = outbox.submit(submission).await;
        if mode == SendMode::Sync {
            self.deadline
                .set(Instant::now() + self.services.plugin_timeout);
        }
        let accepted = accepted.map_err(conv::error)?;
        Ok(Submitted {
            result: conv::send_result(&accepted.item),
            http_status: accepted.http_status,
            replayed: accepted.replayed,
        })
    }

    async fn get(&mut self, outbox_id: String) -> Result<Option<SendResult>, OutboxError> {
        let (outbox, session, _) = self.outbox_scope()?;
        Ok(outbox
            .get(&session, &outbox_id)
            .map_err(conv::error)?
            .map(|i| conv::send_result(&i)))
    }

    async fn list(
        &mut self,
        status: Option<SendStatus>,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<SendResult>, Option<String>), OutboxError> {
        let (outbox, session, _) = self.outbox_scope()?;
        let before = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(
                gateway_sdk::decode_cursor(&c)
                    .ok()
                    .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| {
                        OutboxError::Invalid("cursor is not one this gateway issued".into())
                    })?,
            ),
            None => None,
        };
        let limit = (limit as usize).clamp(1, gateway_sdk::MAX_LIMIT as usize);
        let (items, next) = outbox
            .list(&session, status.map(conv::status), before, limit)
            .map_err(conv::error)?;
        Ok((
            items.iter().map(conv::send_result).collect(),
            next.map(|seq| gateway_sdk::encode_cursor(&seq.to_be_bytes())),
        ))
    }

    async fn cancel(&mut self, outbox_id: String) -> Result<SendResult, OutboxError> {
        let (outbox, session, _) = self.outbox_scope()?;
        let item = outbox
            .cancel(&session, &outbox_id)
            .await
            .map_err(conv::error)?;
        Ok(conv::send_result(&item))
    }
}
