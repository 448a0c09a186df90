//! Every conversion between the host's types and the WIT types plugins see, in one place:
//! capabilities, the error record a plugin answers with, session records, and the errors
//! of the storage, engine and session-manager layers as the WIT variants carry them.
//! Internal failures keep their detail in the log and reach plugins as a generic message.

use super::wa::gateway::session_control as sc;
use super::wa::gateway::storage as st;
use super::wa::gateway::whatsapp_types::WhatsappError;
use super::wit;
use crate::auth::Capability;
use crate::engines::EngineError;
use crate::sessions::{SessionError, SessionRecord};
use crate::storage::StorageError;
use gateway_sdk::{ApiError, ErrorCode};

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
        SessionError::Conflict(m) => sc::SessionError::Conflict(m),
        SessionError::Engine(EngineError::NotConnected(m)) => sc::SessionError::NotConnected(m),
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

pub(crate) fn whatsapp_error(e: EngineError) -> WhatsappError {
    match e {
        EngineError::NotConnected(m) => WhatsappError::NotConnected(m),
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
