//! `wa:gateway/whatsapp-read` and `whatsapp-send`: live calls bound to the request's
//! session (and the account's own identity, read from the session record). The session was checked against the caller's organization before the plugin
//! ran; calls outside a session route fail.

use super::InstanceState;
use super::convert::{group_info, whatsapp_error};
use super::wa::gateway::whatsapp_read::{self, BlockedContact, Identity, OnWhatsapp, Picture};
use super::wa::gateway::whatsapp_send;
use super::wa::gateway::whatsapp_types::{GroupInfo, WhatsappError};
use crate::engines::{Engine, EngineError};
use gateway_sdk::Jid;
use std::sync::Arc;

/// Runs a live call within the time the plugin has left.
pub(super) async fn bounded<T>(
    deadline: std::time::Instant,
    call: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, WhatsappError> {
    super::within(
        deadline,
        async { call.await.map_err(whatsapp_error) },
        || WhatsappError::Failed("WhatsApp did not answer in time".into()),
    )
    .await
}

impl InstanceState {
    /// The engine, the request's session and the call's deadline.
    pub(super) fn live(
        &self,
    ) -> Result<(Arc<dyn Engine>, String, std::time::Instant), WhatsappError> {
        let session = self
            .call()
            .and_then(|c| c.session.clone())
            .ok_or_else(|| WhatsappError::Failed("live calls need a session route".into()))?;
        Ok((
            self.services.sessions.engine().clone(),
            session,
            self.deadline.get(),
        ))
    }

    fn jid(raw: &str) -> Result<Jid, WhatsappError> {
        gateway_sdk::jid::parse_person(raw).map_err(|e| WhatsappError::Invalid(e.to_string()))
    }

    /// A group JID (`…@g.us`), or `invalid`.
    pub(super) fn group_jid(raw: &str) -> Result<Jid, WhatsappError> {
        gateway_sdk::jid::parse_group(raw).map_err(|e| WhatsappError::Invalid(e.to_string()))
    }
}

impl whatsapp_read::Host for InstanceState {
    async fn check_phone(&mut self, phone: String) -> Result<OnWhatsapp, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let r = bounded(deadline, engine.check_phone(&session, &phone)).await?;
        Ok(OnWhatsapp {
            query: r.query,
            is_on_whatsapp: r.is_on_whatsapp,
            jid: r.jid,
            lid: r.lid,
        })
    }

    async fn profile_picture(&mut self, jid: String) -> Result<Option<Picture>, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let jid = match Self::group_jid(&jid) {
            Ok(group) => group,
            Err(_) => Self::jid(&jid)?,
        };
        let p = bounded(deadline, engine.profile_picture(&session, &jid)).await?;
        Ok(p.map(|p| Picture {
            id: p.id,
            url: p.url,
            kind: p.kind,
            direct_path: p.direct_path,
        }))
    }

    async fn about(&mut self, jid: String) -> Result<String, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let jid = Self::jid(&jid)?;
        bounded(deadline, engine.about(&session, &jid)).await
    }

    async fn blocklist(&mut self) -> Result<Vec<BlockedContact>, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let list = bounded(deadline, engine.blocklist(&session)).await?;
        Ok(list
            .into_iter()
            .map(|b| BlockedContact {
                jid: b.jid,
                lid: b.lid,
                blocked_at: b.blocked_at,
            })
            .collect())
    }

    async fn self_identity(&mut self) -> Result<Option<Identity>, WhatsappError> {
        let (_, session, _) = self.live()?;
        let record = self.services.sessions.registry().get(&session);
        Ok(record.and_then(|r| {
            Some(Identity {
                jid: r.wa_jid.clone()?,
                lid: r.wa_lid.clone(),
                push_name: r.push_name.clone(),
            })
        }))
    }

    async fn group_metadata(&mut self, group: String) -> Result<GroupInfo, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let group = Self::group_jid(&group)?;
        bounded(deadline, engine.group_metadata(&session, &group))
            .await
            .map(group_info)
    }

    async fn invite_info(&mut self, code: String) -> Result<GroupInfo, WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        bounded(deadline, engine.invite_info(&session, &code))
            .await
            .map(group_info)
    }
}

impl whatsapp_send::Host for InstanceState {
    async fn block(&mut self, jid: String) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let jid = Self::jid(&jid)?;
        bounded(deadline, engine.block(&session, &jid)).await
    }

    async fn unblock(&mut self, jid: String) -> Result<(), WhatsappError> {
        let (engine, session, deadline) = self.live()?;
        let jid = Self::jid(&jid)?;
        bounded(deadline, engine.unblock(&session, &jid)).await
    }
}
