//! `wa:gateway/platform-admin`: what only a platform admin may do to a session — change
//! its send rates and admin flag, start and read backfills. Every function reads as
//! `not-found` for any other caller, as `session-control.list-all-sessions` does; the
//! host runs admin routes scoped to the session's own organization (the admin `{session}`
//! rule in `http::api`), so the organization here is that session's.

use super::InstanceState;
use super::convert::{
    backfill_error, backfill_job, backfill_scope, session as to_wit, session_error,
};
use super::wa::gateway::platform_admin::{BackfillJob, BackfillScope, Host, SessionLimits};
use super::wa::gateway::session_control::{Session, SessionError};
use crate::auth::Capability;

/// The call's organization and principal, when the caller is a platform admin.
struct AdminCall {
    organization: String,
    principal: String,
}

impl InstanceState {
    fn admin_call(&self) -> Result<AdminCall, SessionError> {
        match self.call() {
            Some(c) if c.capabilities.contains(Capability::PlatformAdmin) => Ok(AdminCall {
                organization: c.organization.to_string(),
                principal: c.principal.to_string(),
            }),
            // Reads as absent, like another organization's data.
            _ => Err(SessionError::NotFound),
        }
    }
}

impl Host for InstanceState {
    async fn update_session(
        &mut self,
        id: String,
        limits: SessionLimits,
    ) -> Result<Session, SessionError> {
        let c = self.admin_call()?;
        let limits = crate::sessions::SessionLimits {
            rate_per_min: limits.rate_per_min,
            rate_per_hour: limits.rate_per_hour,
            is_admin_session: limits.is_admin_session,
        };
        let r = self
            .services
            .sessions
            .update_limits(&c.organization, &id, &limits)
            .map_err(session_error)?;
        tracing::info!(
            session = %id,
            organization = %c.organization,
            principal = %c.principal,
            rate_per_min = r.rate_per_min,
            rate_per_hour = r.rate_per_hour,
            is_admin_session = r.is_admin_session,
            "platform admin changed a session"
        );
        Ok(to_wit(&r))
    }

    async fn start_backfill(
        &mut self,
        id: String,
        scope: Vec<BackfillScope>,
    ) -> Result<BackfillJob, SessionError> {
        let c = self.admin_call()?;
        let scope: Vec<_> = scope.into_iter().map(backfill_scope).collect();
        self.services
            .backfills
            .start(&c.organization, &id, &scope, &c.principal)
            .map(backfill_job)
            .map_err(backfill_error)
    }

    async fn backfill_status(&mut self, id: String) -> Result<Option<BackfillJob>, SessionError> {
        let c = self.admin_call()?;
        self.services
            .backfills
            .status(&c.organization, &id)
            .map(|j| j.map(backfill_job))
            .map_err(backfill_error)
    }
}
