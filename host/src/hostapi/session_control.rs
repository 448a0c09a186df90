//! `wa:gateway/session-control`: the session manager, restricted to the caller's
//! organization (another organization's session reads as not found).

use super::HostState;
use super::wa::gateway::session_control::{Code, Host, Session, SessionError, SessionOptions};
use crate::sessions::{CreateSession, SessionError as ManagerError, SessionRecord};

fn to_wit(r: &SessionRecord) -> Session {
    Session {
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

fn error(e: ManagerError) -> SessionError {
    match e {
        ManagerError::NotFound => SessionError::NotFound,
        ManagerError::Invalid(m) => SessionError::Invalid(m),
        ManagerError::Conflict(m) => SessionError::Conflict(m),
        ManagerError::Engine(crate::engines::EngineError::NotConnected(m)) => {
            SessionError::NotConnected(m)
        }
        ManagerError::Engine(e) => {
            tracing::warn!(error = %e, "engine call failed");
            SessionError::Failed(e.to_string())
        }
        ManagerError::Storage(m) => {
            tracing::error!(error = %m, "session storage failed");
            SessionError::Failed("storage failed".into())
        }
    }
}

impl HostState {
    /// The caller's organization and principal, or an error outside a call.
    fn org(&self) -> Result<(String, String), SessionError> {
        self.call()
            .map(|c| (c.organization.to_string(), c.created_by.clone()))
            .ok_or_else(|| SessionError::Failed("no request in progress".into()))
    }
}

impl Host for HostState {
    async fn list_sessions(&mut self) -> Result<Vec<Session>, SessionError> {
        let (org, _) = self.org()?;
        Ok(self
            .services
            .sessions
            .list(&org)
            .iter()
            .map(|r| to_wit(r))
            .collect())
    }

    async fn list_all_sessions(&mut self) -> Result<Vec<Session>, SessionError> {
        let platform_admin = self
            .call()
            .is_some_and(|c| c.capabilities.contains(crate::auth::Capability::PlatformAdmin));
        if !platform_admin {
            // Reads as absent, like another organization's data.
            return Err(SessionError::NotFound);
        }
        Ok(self
            .services
            .sessions
            .registry()
            .list(None)
            .iter()
            .map(|r| to_wit(r))
            .collect())
    }

    async fn create(&mut self, options: SessionOptions) -> Result<Session, SessionError> {
        let (org, by) = self.org()?;
        let opts = CreateSession {
            label: options.label,
            auto_read: options.auto_read,
            presence_typing: options.presence_typing,
            start: options.start,
        };
        let r = self
            .services
            .sessions
            .create(&org, &by, opts)
            .await
            .map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn get(&mut self, id: String) -> Result<Session, SessionError> {
        let (org, _) = self.org()?;
        let r = self.services.sessions.get(&org, &id).map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn delete(&mut self, id: String) -> Result<(), SessionError> {
        let (org, _) = self.org()?;
        self.services
            .sessions
            .delete(&org, &id)
            .await
            .map_err(error)
    }

    async fn start(&mut self, id: String) -> Result<Session, SessionError> {
        let (org, _) = self.org()?;
        let r = self.services.sessions.start(&org, &id).await.map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn stop(&mut self, id: String) -> Result<Session, SessionError> {
        let (org, _) = self.org()?;
        let r = self.services.sessions.stop(&org, &id).await.map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn restart(&mut self, id: String) -> Result<Session, SessionError> {
        let (org, _) = self.org()?;
        let r = self
            .services
            .sessions
            .restart(&org, &id)
            .await
            .map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn logout(&mut self, id: String) -> Result<Session, SessionError> {
        let (org, _) = self.org()?;
        let r = self
            .services
            .sessions
            .logout(&org, &id)
            .await
            .map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn qr(&mut self, id: String) -> Result<Option<Code>, SessionError> {
        let (org, _) = self.org()?;
        let code = self.services.sessions.qr(&org, &id).await.map_err(error)?;
        Ok(code.map(|c| Code {
            code: c.code,
            expires_at: c.expires_at,
        }))
    }

    async fn request_pairing_code(
        &mut self,
        id: String,
        phone: String,
    ) -> Result<Code, SessionError> {
        let (org, _) = self.org()?;
        let c = self
            .services
            .sessions
            .pairing_code(&org, &id, &phone)
            .await
            .map_err(error)?;
        Ok(Code {
            code: c.code,
            expires_at: c.expires_at,
        })
    }
}
