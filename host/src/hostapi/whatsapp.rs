//! `wa:gateway/whatsapp-read` and `whatsapp-send`: live calls bound to the request's
//! session. The session was checked against the caller's organization before the plugin
//! ran; calls outside a session route fail.

use super::HostState;
use super::wa::gateway::whatsapp_read::{self, BlockedContact, OnWhatsapp, Picture};
use super::wa::gateway::whatsapp_send;
use super::wa::gateway::whatsapp_types::WhatsappError;
use crate::engines::EngineError;
use gateway_sdk::Jid;

fn error(e: EngineError) -> WhatsappError {
    match e {
        EngineError::NotConnected(m) => WhatsappError::NotConnected(m),
        EngineError::NotFound(m) => WhatsappError::NotFound(m),
        EngineError::Invalid(m) => WhatsappError::Invalid(m),
        EngineError::Forbidden(m) => WhatsappError::Forbidden(m),
        EngineError::RateLimited(m) => WhatsappError::RateLimited(m),
        EngineError::Unsupported(m) => WhatsappError::Unsupported(m),
        EngineError::Failed(m) => {
            tracing::warn!(error = %m, "live WhatsApp call failed");
            WhatsappError::Failed(m)
        }
    }
}

impl HostState {
    fn session(&self) -> Result<String, WhatsappError> {
        self.call()
            .and_then(|c| c.session.clone())
            .ok_or_else(|| WhatsappError::Failed("live calls need a session route".into()))
    }

    fn jid(raw: &str) -> Result<Jid, WhatsappError> {
        gateway_sdk::jid::parse_person(raw).map_err(|e| WhatsappError::Invalid(e.to_string()))
    }
}

impl whatsapp_read::Host for HostState {
    async fn check_phone(&mut self, phone: String) -> Result<OnWhatsapp, WhatsappError> {
        let session = self.session()?;
        let r = self
            .services
            .sessions
            .engine()
            .check_phone(&session, &phone)
            .await
            .map_err(error)?;
        Ok(OnWhatsapp {
            query: r.query,
            is_on_whatsapp: r.is_on_whatsapp,
            jid: r.jid,
            lid: r.lid,
        })
    }

    async fn profile_picture(&mut self, jid: String) -> Result<Option<Picture>, WhatsappError> {
        let session = self.session()?;
        let jid = Self::jid(&jid)?;
        let p = self
            .services
            .sessions
            .engine()
            .profile_picture(&session, &jid)
            .await
            .map_err(error)?;
        Ok(p.map(|p| Picture {
            id: p.id,
            url: p.url,
            kind: p.kind,
            direct_path: p.direct_path,
        }))
    }

    async fn about(&mut self, jid: String) -> Result<String, WhatsappError> {
        let session = self.session()?;
        let jid = Self::jid(&jid)?;
        self.services
            .sessions
            .engine()
            .about(&session, &jid)
            .await
            .map_err(error)
    }

    async fn blocklist(&mut self) -> Result<Vec<BlockedContact>, WhatsappError> {
        let session = self.session()?;
        let list = self
            .services
            .sessions
            .engine()
            .blocklist(&session)
            .await
            .map_err(error)?;
        Ok(list
            .into_iter()
            .map(|b| BlockedContact {
                jid: b.jid,
                lid: b.lid,
                blocked_at: b.blocked_at,
            })
            .collect())
    }
}

impl whatsapp_send::Host for HostState {
    async fn block(&mut self, jid: String) -> Result<(), WhatsappError> {
        let session = self.session()?;
        let jid = Self::jid(&jid)?;
        self.services
            .sessions
            .engine()
            .block(&session, &jid)
            .await
            .map_err(error)
    }

    async fn unblock(&mut self, jid: String) -> Result<(), WhatsappError> {
        let session = self.session()?;
        let jid = Self::jid(&jid)?;
        self.services
            .sessions
            .engine()
            .unblock(&session, &jid)
            .await
            .map_err(error)
    }
}
