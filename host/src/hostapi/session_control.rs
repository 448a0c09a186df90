//! `wa:gateway/session-control`: the session manager, restricted to the caller's
//! organization (another organization's session reads as not found).

use super::InstanceState;
use super::convert::{session as to_wit, session_error as error};
use super::wa::gateway::session_control::{Code, Host, Session, SessionError, SessionOptions};
use crate::sessions::{CreateSession, SessionError as ManagerError};

/// What a session-control call needs, detached from the store so it can await.
struct Scope {
    sessions: std::sync::Arc<crate::sessions::SessionManager>,
    org: String,
    by: String,
    deadline: std::time::Instant,
}

impl Scope {
    /// Runs a manager operation within the plugin's deadline.
    async fn run<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, ManagerError>>,
    ) -> Result<T, SessionError> {
        super::within(self.deadline, async { op.await.map_err(error) }, || {
            SessionError::Failed("the session operation did not finish in time".into())
        })
        .await
    }
}

impl InstanceState {
    /// The caller's organization and principal, or an error outside a call.
    fn scope(&self) -> Result<Scope, SessionError> {
        let c = self
            .call()
            .ok_or_else(|| SessionError::Failed("no request in progress".into()))?;
        Ok(Scope {
            sessions: self.services.sessions.clone(),
            org: c.organization.to_string(),
            by: c.created_by.to_string(),
            deadline: self.deadline.get(),
        })
    }
}

impl Host for InstanceState {
    async fn list_sessions(&mut self) -> Result<Vec<Session>, SessionError> {
        let s = self.scope()?;
        Ok(s.sessions.list(&s.org).iter().map(|r| to_wit(r)).collect())
    }

    async fn list_all_sessions(&mut self) -> Result<Vec<Session>, SessionError> {
        let platform_admin = self.call().is_some_and(|c| {
            c.capabilities
                .contains(crate::auth::Capability::PlatformAdmin)
        });
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
        let s = self.scope()?;
        let opts = CreateSession {
            label: options.label,
            auto_read: options.auto_read,
            presence_typing: options.presence_typing,
            start: options.start,
        };
        let r = s.run(s.sessions.create(&s.org, &s.by, opts)).await?;
        Ok(to_wit(&r))
    }

    async fn get(&mut self, id: String) -> Result<Session, SessionError> {
        let s = self.scope()?;
        let r = s.sessions.get(&s.org, &id).map_err(error)?;
        Ok(to_wit(&r))
    }

    async fn delete(&mut self, id: String) -> Result<(), SessionError> {
        let s = self.scope()?;
        s.run(s.sessions.delete(&s.org, &id)).await
    }

    async fn start(&mut self, id: String) -> Result<Session, SessionError> {
        let s = self.scope()?;
        let r = s.run(s.sessions.start(&s.org, &id)).await?;
        Ok(to_wit(&r))
    }

    async fn stop(&mut self, id: String) -> Result<Session, SessionError> {
        let s = self.scope()?;
        let r = s.run(s.sessions.stop(&s.org, &id)).await?;
        Ok(to_wit(&r))
    }

    async fn restart(&mut self, id: String) -> Result<Session, SessionError> {
        let s = self.scope()?;
        let r = s.run(s.sessions.restart(&s.org, &id)).await?;
        Ok(to_wit(&r))
    }

    async fn logout(&mut self, id: String) -> Result<Session, SessionError> {
        let s = self.scope()?;
        let r = s.run(s.sessions.logout(&s.org, &id)).await?;
        Ok(to_wit(&r))
    }

    async fn qr(&mut self, id: String) -> Result<Option<Code>, SessionError> {
        let s = self.scope()?;
        let code = s.run(s.sessions.qr(&s.org, &id)).await?;
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
        let s = self.scope()?;
        let c = s.run(s.sessions.pairing_code(&s.org, &id, &phone)).await?;
        Ok(Code {
            code: c.code,
            expires_at: c.expires_at,
        })
    }
}
