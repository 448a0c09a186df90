//! `platform-admin` against the in-memory session registry: rate changes with the host's
//! ranges, and backfill jobs that stay `running` until the test finishes them
//! ([`PlatformAdminWorld::finish_backfill`]), one at a time per session. Every call reads
//! as not found without the platform-admin capability, as on the gateway.

use super::current_call;
use super::sessions::with_owned;
use crate::guest::Capability;
use crate::guest::bindings::wa::gateway::platform_admin::{
    BackfillJob, BackfillScope, SessionLimits,
};
use crate::guest::bindings::wa::gateway::session_control::{Session, SessionError};
use std::cell::RefCell;
use std::collections::BTreeMap;

const NOW: u64 = 1_719_662_400_000;

thread_local! {
    /// Jobs by session, oldest first.
    static JOBS: RefCell<BTreeMap<String, Vec<BackfillJob>>> = const { RefCell::new(BTreeMap::new()) };
}

pub(crate) fn reset() {
    JOBS.with_borrow_mut(BTreeMap::clear);
}

/// The handle tests drive backfills with.
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdminWorld;

/// What a finished backfill read.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackfillCounts {
    pub contacts: u32,
    pub groups: u32,
    pub group_members: u32,
    pub chats: u32,
}

impl PlatformAdminWorld {
    /// Ends the session's running backfill: `succeeded` with `counts`, or `failed` with
    /// `error`. No-op when none runs.
    pub fn finish_backfill(&self, session: &str, counts: BackfillCounts, error: Option<&str>) {
        JOBS.with_borrow_mut(|jobs| {
            if let Some(job) = jobs
                .get_mut(session)
                .and_then(|v| v.last_mut())
                .filter(|j| j.status == "running")
            {
                job.status = if error.is_some() {
                    "failed"
                } else {
                    "succeeded"
                }
                .into();
                job.error = error.map(str::to_owned);
                job.contacts = counts.contacts;
                job.groups = counts.groups;
                job.group_members = counts.group_members;
                job.chats = counts.chats;
                job.finished_at = Some(NOW + 1_000);
            }
        });
    }

    /// Every backfill of the session, oldest first.
    pub fn backfills(&self, session: &str) -> Vec<BackfillJob> {
        JOBS.with_borrow(|jobs| jobs.get(session).cloned().unwrap_or_default())
    }
}

/// The caller's principal, when it is a platform admin.
fn admin() -> Result<String, SessionError> {
    match current_call() {
        Some(c) if c.capabilities.contains(&Capability::PlatformAdmin) => Ok(c.principal),
        _ => Err(SessionError::NotFound),
    }
}

fn in_range(name: &str, value: Option<u32>, max: u32) -> Result<(), SessionError> {
    match value {
        Some(v) if !(1..=max).contains(&v) => {
            Err(SessionError::Invalid(format!("{name} must be 1-{max}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn update_session(id: &str, limits: SessionLimits) -> Result<Session, SessionError> {
    admin()?;
    with_owned(id, |s| {
        in_range("ratePerMin", limits.rate_per_min, 1_000)?;
        in_range("ratePerHour", limits.rate_per_hour, 60_000)?;
        if let Some(v) = limits.rate_per_min {
            s.rate_per_min = v;
        }
        if let Some(v) = limits.rate_per_hour {
            s.rate_per_hour = v;
        }
        if let Some(v) = limits.is_admin_session {
            s.is_admin_session = v;
        }
        Ok(s.clone())
    })
}

pub(crate) fn start_backfill(
    id: &str,
    scope: &[BackfillScope],
) -> Result<BackfillJob, SessionError> {
    let principal = admin()?;
    let session = with_owned(id, |s| Ok(s.clone()))?;
    if session.status != "working" {
        return Err(SessionError::NotConnected(
            "the session is not connected to WhatsApp".into(),
        ));
    }
    let mut scope: Vec<BackfillScope> = if scope.is_empty() {
        vec![
            BackfillScope::Contacts,
            BackfillScope::Groups,
            BackfillScope::Chats,
        ]
    } else {
        scope.to_vec()
    };
    scope.sort_by_key(|s| *s as u8);
    scope.dedup();
    JOBS.with_borrow_mut(|jobs| {
        let list = jobs.entry(id.to_owned()).or_default();
        if let Some(running) = list.last().filter(|j| j.status == "running") {
            return Err(SessionError::Conflict(format!(
                "backfill {} is still running",
                running.id
            )));
        }
        let job = BackfillJob {
            id: format!("01JBF{:021}", list.len() + 1),
            session_id: id.to_owned(),
            organization_id: session.organization_id.clone(),
            status: "running".into(),
            scope,
            contacts: 0,
            groups: 0,
            group_members: 0,
            chats: 0,
            started_at: NOW,
            finished_at: None,
            error: None,
            requested_by: principal,
        };
        list.push(job.clone());
        Ok(job)
    })
}

pub(crate) fn backfill_status(id: &str) -> Result<Option<BackfillJob>, SessionError> {
    admin()?;
    with_owned(id, |_| Ok(()))?;
    Ok(JOBS.with_borrow(|jobs| jobs.get(id).and_then(|v| v.last().cloned())))
}
