//! Every conversion between the host's types and the WIT types plugins see, in one place:
//! capabilities, the error record a plugin answers with, session records, and the errors
//! of the storage, engine and session-manager layers as the WIT variants carry them.
//! Internal failures keep their detail in the log and reach plugins as a generic message.

use super::wa::gateway::platform_admin as pa;
use super::wa::gateway::session_control as sc;
use super::wa::gateway::storage as st;
use super::wa::gateway::whatsapp_types::{GroupInfo, GroupParticipant, WhatsappError};
use super::wit;
use crate::auth::Capability;
use crate::backfill::{BackfillError, BackfillJob, BackfillScope};
use crate::engines::{self, EngineError};
use crate::sessions::{SessionError, SessionRecord};
use crate::storage::StorageError;
use gateway_sdk::{ApiError, ErrorCode};

/// What a plugin (and so a client) learns about a LIVE call on a disconnected session;
/// why it is disconnected is the session's `statusReason`, not engine error text.
const NOT_CONNECTED: &str = "the session is not connected to WhatsApp";

pub(crate) fn capability(c: wit::Capability) -> Capability {
    match c {
        wit::Capability::Read => Capability::Read,
        wit::Capability::Send => Capability::Send,
        wit::Capability::Manage => Capability::Manage,
        wit::Capability::PlatformAdmin => Capability::PlatformAdmin,
    }
}

pub(crate) fn wit_capability(c: Capability) -> wit::Capability {
    match c {
        Capability::Read => wit::Capability::Read,
        Capability::Send => wit::Capability::Send,
        Capability::Manage => wit::Capability::Manage,
        Capability::PlatformAdmin => wit::Capability::PlatformAdmin,
    }
}

/// The error a plugin answered, as the envelope will carry it. Details must be a JSON
/// object (else dropped); a status override must stay within its code's class.
pub(crate) fn api_error(e: wit::Error) -> ApiError {
    let code = match e.code {
        wit::ErrorCode::ValidationError => ErrorCode::ValidationError,
        wit::ErrorCode::Unauthorized => ErrorCode::Unauthorized,
        wit::ErrorCode::Forbidden => ErrorCode::Forbidden,
        wit::ErrorCode::NotFound => ErrorCode::NotFound,
        wit::ErrorCode::MethodNotAllowed => ErrorCode::MethodNotAllowed,
        wit::ErrorCode::Conflict => ErrorCode::Conflict,
        wit::ErrorCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
        wit::ErrorCode::RateLimited => ErrorCode::RateLimited,
        wit::ErrorCode::Internal => ErrorCode::Internal,
        wit::ErrorCode::NotImplemented => ErrorCode::NotImplemented,
        wit::ErrorCode::Unavailable => ErrorCode::Unavailable,
    };
    let details = if e.details.trim().is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str::<serde_json::Value>(&e.details) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    };
    let mut err = ApiError::new(code, e.message);
    err.details = details;
    err.status = e
        .status
        .filter(|s| (400..600).contains(s) && (s / 100) == (code.status() / 100));
    err
}

pub(crate) fn session(r: &SessionRecord) -> sc::Session {
    sc::Session {
        id: r.id.clone(),
        organization_id: r.organization_id.clone(),
        label: r.label.clone(),
        status: r.status.as_str().to_owned(),
        status_reason: r.status_reason.clone(),
        phone_number: r.phone_number.clone(),
        wa_jid: r.wa_jid.clone(),
        wa_lid: r.wa_lid.clone(),
        push_name: r.push_name.clone(),
        gateway_id: r.gateway_id.clone(),
        is_admin_session: r.is_admin_session,
        auto_read: r.auto_read,
        presence_typing: r.presence_typing,
        rate_per_min: r.rate_per_min,
        rate_per_hour: r.rate_per_hour,
        created_by_user_id: r.created_by_user_id.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        last_connected_at: r.last_connected_at,
    }
}

pub(crate) fn session_error(e: SessionError) -> sc::SessionError {
    match e {
        SessionError::NotFound => sc::SessionError::NotFound,
        SessionError::Invalid(m) => sc::SessionError::Invalid(m),
        SessionError::Conflict(m) | SessionError::Quota(m) => sc::SessionError::Conflict(m),
        SessionError::Engine(EngineError::NotConnected(m)) => {
            tracing::debug!(reason = %m, "session not connected");
            sc::SessionError::NotConnected(NOT_CONNECTED.into())
        }
        SessionError::Engine(EngineError::Invalid(m)) => sc::SessionError::Invalid(m),
        SessionError::Engine(e) => {
            tracing::warn!(error = %e, "engine call failed");
            sc::SessionError::Failed("the WhatsApp engine failed".into())
        }
        SessionError::Storage(m) => {
            tracing::error!(error = %m, "session storage failed");
            sc::SessionError::Failed("storage failed".into())
        }
    }
}

/// Why a backfill could not start or be read, as `platform-admin` reports it.
pub(crate) fn backfill_error(e: BackfillError) -> sc::SessionError {
    match e {
        BackfillError::NotFound => sc::SessionError::NotFound,
        BackfillError::Running(id) => {
            sc::SessionError::Conflict(format!("backfill {id} is still running"))
        }
        BackfillError::NotConnected(m) => {
            tracing::debug!(reason = %m, "backfill of a session that is not connected");
            sc::SessionError::NotConnected(NOT_CONNECTED.into())
        }
        BackfillError::Storage(m) => {
            tracing::error!(error = %m, "backfill storage failed");
            sc::SessionError::Failed("storage failed".into())
        }
    }
}

pub(crate) fn backfill_scope(s: pa::BackfillScope) -> BackfillScope {
    match s {
        pa::BackfillScope::Contacts => BackfillScope::Contacts,
        pa::BackfillScope::Groups => BackfillScope::Groups,
        pa::BackfillScope::Chats => BackfillScope::Chats,
    }
}

fn wit_backfill_scope(s: BackfillScope) -> pa::BackfillScope {
    match s {
        BackfillScope::Contacts => pa::BackfillScope::Contacts,
        BackfillScope::Groups => pa::BackfillScope::Groups,
        BackfillScope::Chats => pa::BackfillScope::Chats,
    }
}

/// A backfill job in the WIT's terms.
pub(crate) fn backfill_job(j: BackfillJob) -> pa::BackfillJob {
    pa::BackfillJob {
        id: j.id,
        session_id: j.session_id,
        organization_id: j.organization_id,
        status: j.status.as_str().to_owned(),
        scope: j.scope.into_iter().map(wit_backfill_scope).collect(),
        contacts: j.contacts,
        groups: j.groups,
        group_members: j.group_members,
        chats: j.chats,
        started_at: j.started_at,
        finished_at: j.finished_at,
        error: j.error,
        requested_by: j.requested_by,
    }
}

/// A group's metadata in the WIT's terms.
pub(crate) fn group_info(g: engines::GroupInfo) -> GroupInfo {
    GroupInfo {
        jid: g.jid,
        subject: g.subject,
        description: g.description,
        owner: g.owner,
        created_at: g.created_at,
        announce: g.announce,
        locked: g.locked,
        join_approval: g.join_approval,
        members_can_add: g.members_can_add,
        size: g.size,
        participants: g
            .participants
            .into_iter()
            .map(|p| GroupParticipant {
                jid: p.jid,
                lid: p.lid,
                role: p.role,
                tag: p.tag,
            })
            .collect(),
    }
}

pub(crate) fn whatsapp_error(e: EngineError) -> WhatsappError {
    match e {
        EngineError::NotConnected(m) => {
            tracing::debug!(reason = %m, "session not connected");
            WhatsappError::NotConnected(NOT_CONNECTED.into())
        }
        EngineError::NotFound(m) => WhatsappError::NotFound(m),
        EngineError::Invalid(m) => WhatsappError::Invalid(m),
        EngineError::Forbidden(m) => WhatsappError::Forbidden(m),
        EngineError::RateLimited(m) => WhatsappError::RateLimited(m),
        EngineError::Unsupported(m) => WhatsappError::Unsupported(m),
        EngineError::Failed(m) => {
            tracing::warn!(error = %m, "live WhatsApp call failed");
            WhatsappError::Failed("the WhatsApp call failed".into())
        }
    }
}

pub(crate) fn storage_error(e: StorageError) -> st::StorageError {
    match e {
        StorageError::Invalid(m) => st::StorageError::Invalid(m),
        // The SDK recognises the marker and answers 409 `quota_exceeded`.
        StorageError::Quota(m) => {
            st::StorageError::Invalid(format!("{}{m}", gateway_sdk::limits::QUOTA_EXCEEDED))
        }
        other => {
            tracing::error!(error = %other, "plugin storage failed");
            st::StorageError::Failed("storage failed".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_keep_details_and_a_sane_status() {
        let e = api_error(wit::Error {
            code: wit::ErrorCode::ValidationError,
            message: "bad".into(),
            details: r#"{"field":"phone"}"#.into(),
            status: Some(422),
        });
        assert_eq!(e.http_status(), 422);
        assert_eq!(e.details["field"], "phone");
        let e = api_error(wit::Error {
            code: wit::ErrorCode::NotFound,
            message: "x".into(),
            details: "not json".into(),
            status: Some(200),
        });
        assert_eq!(e.http_status(), 404);
        assert!(e.details.is_empty());
    }

    #[test]
    fn internal_failures_reach_plugins_without_their_detail() {
        let WhatsappError::Failed(m) =
            whatsapp_error(EngineError::Failed("socket 10.0.0.3:443 reset".into()))
        else {
            panic!("failed stays failed")
        };
        assert!(!m.contains("10.0.0.3"));
        let sc::SessionError::Failed(m) =
            session_error(SessionError::Storage("redb: /data/gateway.redb io".into()))
        else {
            panic!("storage is a failure")
        };
        assert!(!m.contains("redb"));
        for c in [
            Capability::Read,
            Capability::Send,
            Capability::Manage,
            Capability::PlatformAdmin,
        ] {
            assert_eq!(capability(wit_capability(c)), c);
        }
    }
}

/// A message key from a plugin, checked: a chat JID, an id, an author JID if any.
pub(crate) fn message_ref(
    key: &super::wa::gateway::whatsapp_types::MessageKey,
) -> Result<crate::engines::MessageRef, String> {
    let chat = gateway_sdk::Jid::parse(&key.chat)
        .map_err(|e| format!("message chat: {e}"))?
        .to_non_device()
        .to_string();
    if key.id.is_empty() || key.id.len() > 128 || !key.id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("message id must be 1-128 visible ASCII characters".into());
    }
    let sender = match key.sender.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            gateway_sdk::jid::parse_person(s)
                .map_err(|e| format!("message sender: {e}"))?
                .to_non_device()
                .to_string(),
        ),
        None => None,
    };
    Ok(crate::engines::MessageRef {
        chat,
        id: key.id.clone(),
        sender,
    })
}

/// The outbox's records in WIT terms and back.
pub(crate) mod outbox {
    use super::super::wa::gateway::outbox as w;
    use super::message_ref;
    use crate::engines::{MediaKind, MessageRef};
    use crate::outbox::{
        OutboxError, OutboxItem, SendMode, SendStatus, StoredContent, StoredMediaSource,
    };

    pub(crate) fn mode(m: w::SendMode) -> SendMode {
        match m {
            w::SendMode::Synchronous => SendMode::Sync,
            w::SendMode::Asynchronous => SendMode::Async,
        }
    }

    pub(crate) fn status(s: w::SendStatus) -> SendStatus {
        match s {
            w::SendStatus::Pending => SendStatus::Pending,
            w::SendStatus::Sent => SendStatus::Sent,
            w::SendStatus::Delivered => SendStatus::Delivered,
            w::SendStatus::Read => SendStatus::Read,
            w::SendStatus::Failed => SendStatus::Failed,
        }
    }

    fn wit_status(s: SendStatus) -> w::SendStatus {
        match s {
            SendStatus::Pending => w::SendStatus::Pending,
            SendStatus::Sent => w::SendStatus::Sent,
            SendStatus::Delivered => w::SendStatus::Delivered,
            SendStatus::Read => w::SendStatus::Read,
            SendStatus::Failed => w::SendStatus::Failed,
        }
    }

    pub(crate) fn send_result(i: &OutboxItem) -> w::SendResult {
        w::SendResult {
            outbox_id: i.outbox_id.clone(),
            mode: match i.mode {
                SendMode::Sync => w::SendMode::Synchronous,
                SendMode::Async => w::SendMode::Asynchronous,
            },
            status: wit_status(i.status),
            timestamp: i.status_at,
            wa_message_id: i.wa_message_id.clone(),
            chat: i.chat.clone(),
            error_code: i.error_code.clone(),
            error: i.error.clone(),
        }
    }

    pub(crate) fn error(e: OutboxError) -> w::OutboxError {
        match e {
            OutboxError::Invalid(m) => w::OutboxError::Invalid(m),
            OutboxError::NotFound(m) => w::OutboxError::NotFound(m),
            OutboxError::NotConnected(m) => w::OutboxError::NotConnected(m),
            OutboxError::RateLimited {
                limit,
                rate_per_min,
                rate_per_hour,
                retry_after_ms,
            } => w::OutboxError::RateLimited(w::RateLimit {
                limit: limit.to_owned(),
                rate_per_min,
                rate_per_hour,
                retry_after_ms,
            }),
            OutboxError::KeyReused(id) => w::OutboxError::KeyReused(id),
            OutboxError::NotPending(m) => w::OutboxError::NotPending(m),
            OutboxError::Storage(m) => {
                tracing::error!(error = %m, "outbox storage failed");
                w::OutboxError::Failed("storage failed".into())
            }
        }
    }

    fn key(k: &w::MessageKey) -> Result<MessageRef, w::OutboxError> {
        message_ref(k).map_err(w::OutboxError::Invalid)
    }

    fn kind(k: w::MediaKind) -> MediaKind {
        match k {
            w::MediaKind::Image => MediaKind::Image,
            w::MediaKind::Video => MediaKind::Video,
            w::MediaKind::Audio => MediaKind::Audio,
            w::MediaKind::Document => MediaKind::Document,
            w::MediaKind::Sticker => MediaKind::Sticker,
        }
    }

    /// What the outbox stores for a message: the chat (normalised), the content (inline
    /// bytes set aside), and the message it replies to.
    #[allow(clippy::type_complexity)]
    pub(crate) fn outbound(
        m: &w::Outbound,
    ) -> Result<(String, StoredContent, Option<Vec<u8>>, Option<MessageRef>), w::OutboxError> {
        let to = m.to.trim();
        let chat = if !to.is_empty() && to.bytes().all(|b| b.is_ascii_digit()) {
            gateway_sdk::Jid::from_phone(to)
        } else {
            gateway_sdk::Jid::parse(to)
        }
        .map_err(|e| w::OutboxError::Invalid(format!("to: {e}")))?;
        if !(chat.is_person() || chat.is_group()) {
            return Err(w::OutboxError::Invalid(
                "to must be a user JID, a LID or a group JID".into(),
            ));
        }
        let chat = chat.to_non_device().to_string();
        let mut inline = None;
        let content = match &m.content {
            w::Content::Text(t) => StoredContent::Text { text: t.clone() },
            w::Content::Media(media) => {
                let source = match &media.source {
                    w::MediaSource::Upload(id) => StoredMediaSource::Upload { id: id.clone() },
                    w::MediaSource::Inline(bytes) => {
                        inline = Some(bytes.clone());
                        StoredMediaSource::Upload { id: String::new() }
                    }
                    w::MediaSource::Message(k) => StoredMediaSource::Message { message: key(k)? },
                };
                StoredContent::Media {
                    kind: kind(media.kind),
                    source,
                    mimetype: media.mimetype.clone(),
                    caption: media.caption.clone(),
                    file_name: media.file_name.clone(),
                    voice_note: media.voice_note,
                }
            }
            w::Content::Location(l) => StoredContent::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
            },
            w::Content::Contact(c) => StoredContent::Contact {
                name: c.name.clone(),
                vcard: c.vcard.clone(),
            },
            w::Content::Poll(p) => StoredContent::Poll {
                name: p.name.clone(),
                options: p.options.clone(),
                selectable_count: p.selectable_count,
            },
            w::Content::Reaction((k, emoji)) => StoredContent::Reaction {
                target: key(k)?,
                emoji: emoji.clone(),
            },
            w::Content::Edit((k, text)) => StoredContent::Edit {
                target: key(k)?,
                text: text.clone(),
            },
            w::Content::Revoke(k) => StoredContent::Revoke { target: key(k)? },
            w::Content::Vote((k, options)) => StoredContent::Vote {
                target: key(k)?,
                options: options.clone(),
            },
        };
        let reply_to = m.reply_to.as_ref().map(key).transpose()?;
        Ok((chat, content, inline, reply_to))
    }
}

/// `webhook-delivery`: the webhook engine's model and errors as WIT records.
pub(crate) mod webhooks {
    use crate::hostapi::wa::gateway::webhook_delivery as wit;
    use crate::webhooks::model::{self, Backoff, DeliveryStatus};
    use crate::webhooks::{WebhookError, WebhookPatch};

    pub(crate) fn error(e: WebhookError) -> wit::DeliveryError {
        match e {
            WebhookError::Invalid { field, message } => {
                wit::DeliveryError::Invalid(wit::FieldError { field, message })
            }
            WebhookError::NotFound(m) => wit::DeliveryError::NotFound(m),
            WebhookError::Conflict(m) => wit::DeliveryError::Conflict(m),
            WebhookError::Storage(e) => wit::DeliveryError::Failed(e.to_string()),
        }
    }

    pub(crate) fn backoff(b: Backoff) -> wit::Backoff {
        match b {
            Backoff::Exponential => wit::Backoff::Exponential,
            Backoff::Linear => wit::Backoff::Linear,
            Backoff::Constant => wit::Backoff::Constant,
        }
    }

    pub(crate) fn retry_policy(p: wit::RetryPolicy) -> model::RetryPolicy {
        model::RetryPolicy {
            attempts: p.attempts,
            delay_seconds: p.delay_seconds,
            policy: match p.policy {
                wit::Backoff::Exponential => Backoff::Exponential,
                wit::Backoff::Linear => Backoff::Linear,
                wit::Backoff::Constant => Backoff::Constant,
            },
            max_delay_seconds: p.max_delay_seconds,
        }
    }

    pub(crate) fn webhook(w: &model::Webhook) -> wit::Webhook {
        wit::Webhook {
            id: w.id.clone(),
            organization_id: w.organization_id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            session_id: w.session_id.clone(),
            active: w.active,
            custom_headers: w.custom_headers.clone(),
            retry_policy: wit::RetryPolicy {
                attempts: w.retry_policy.attempts,
                delay_seconds: w.retry_policy.delay_seconds,
                policy: backoff(w.retry_policy.policy),
                max_delay_seconds: w.retry_policy.max_delay_seconds,
            },
            disabled_reason: w.disabled_reason.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }

    pub(crate) fn patch(p: wit::WebhookPatch) -> WebhookPatch {
        WebhookPatch {
            url: p.url,
            events: p.events,
            session_id: p.session_id,
            active: p.active,
            custom_headers: p.custom_headers,
            retry_policy: p.retry_policy.map(retry_policy),
            secret: p.secret,
        }
    }

    pub(crate) fn status(s: DeliveryStatus) -> wit::DeliveryStatus {
        match s {
            DeliveryStatus::Pending => wit::DeliveryStatus::Pending,
            DeliveryStatus::Retrying => wit::DeliveryStatus::Retrying,
            DeliveryStatus::Succeeded => wit::DeliveryStatus::Succeeded,
            DeliveryStatus::Dead => wit::DeliveryStatus::Dead,
        }
    }

    pub(crate) fn delivery(d: &model::Delivery) -> wit::Delivery {
        wit::Delivery {
            id: d.id.clone(),
            webhook_id: d.webhook_id.clone(),
            event_id: d.event_id.clone(),
            event: d.event.clone(),
            session_id: d.session_id.clone(),
            status: status(d.status),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            replay_of: d.replay_of.clone(),
            replayed_by: d.replayed_by.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }

    pub(crate) fn attempt(a: &model::Attempt) -> wit::Attempt {
        wit::Attempt {
            n: a.n,
            at: a.at,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
        }
    }
}
