//! `session-control` against an in-memory registry that follows the gateway's session
//! lifecycle: `stopped` → (`start`) `scan_qr_code` until paired, `working` once paired;
//! stop, restart, logout (pairing lost) and delete, all scoped to the caller's organization.

use super::current_call;
use crate::guest::Capability;
use crate::guest::bindings::wa::gateway::session_control::{
    Code, Session, SessionError, SessionOptions,
};
use std::cell::RefCell;
use std::collections::BTreeMap;

const NOW: u64 = 1_719_662_400_000;

#[derive(Default)]
struct Registry {
    sessions: BTreeMap<String, Session>,
    next: u64,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

pub(crate) fn reset() {
    REGISTRY.with_borrow_mut(|r| *r = Registry::default());
}

/// The organization a session belongs to, while it exists.
pub(crate) fn organization_of(id: &str) -> Option<String> {
    REGISTRY.with_borrow(|r| r.sessions.get(id).map(|s| s.organization_id.clone()))
}

/// The handle tests set sessions up with.
#[derive(Debug, Clone, Copy)]
pub struct SessionWorld;

impl SessionWorld {
    /// Creates a stopped, unpaired session of `organization`; returns its id.
    pub fn add(&self, organization: &str, label: Option<&str>) -> String {
        REGISTRY.with_borrow_mut(|r| r.insert(organization, label.map(str::to_owned)))
    }

    /// Marks a session paired with `phone` (digits).
    pub fn pair(&self, id: &str, phone: &str) {
        REGISTRY.with_borrow_mut(|r| {
            if let Some(s) = r.sessions.get_mut(id) {
                s.phone_number = Some(phone.to_owned());
                s.wa_jid = Some(format!("{phone}@s.whatsapp.net"));
                s.wa_lid = Some(format!("{}@lid", phone.chars().rev().collect::<String>()));
                s.push_name = Some("Test Account".into());
            }
        })
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        REGISTRY.with_borrow(|r| r.sessions.get(id).cloned())
    }
}

pub(crate) fn add_working(organization: &str) -> String {
    let world = SessionWorld;
    let id = world.add(organization, Some("test"));
    world.pair(&id, "15550001111");
    REGISTRY.with_borrow_mut(|r| {
        if let Some(s) = r.sessions.get_mut(&id) {
            s.status = "working".into();
            s.last_connected_at = Some(NOW);
        }
    });
    id
}

impl Registry {
    fn insert(&mut self, organization: &str, label: Option<String>) -> String {
        self.next += 1;
        // 26 characters of Crockford base32, sorted by creation like a ULID.
        let id = format!("01J{:023}", self.next);
        self.sessions.insert(
            id.clone(),
            Session {
                id: id.clone(),
                organization_id: organization.to_owned(),
                label,
                status: "stopped".into(),
                status_reason: None,
                phone_number: None,
                wa_jid: None,
                wa_lid: None,
                push_name: None,
                gateway_id: "gw-test".into(),
                is_admin_session: false,
                auto_read: false,
                presence_typing: true,
                rate_per_min: 20,
                rate_per_hour: 600,
                created_by_user_id: "test".into(),
                created_at: NOW,
                updated_at: NOW,
                last_connected_at: None,
            },
        );
        id
    }
}

fn organization() -> Result<String, SessionError> {
    current_call()
        .map(|c| c.organization)
        .ok_or_else(|| SessionError::Failed("no request in progress".into()))
}

/// Runs `f` on a session of the caller's organization (another's reads as not found).
pub(crate) fn with_owned<T>(
    id: &str,
    f: impl FnOnce(&mut Session) -> Result<T, SessionError>,
) -> Result<T, SessionError> {
    let org = organization()?;
    REGISTRY.with_borrow_mut(|r| match r.sessions.get_mut(id) {
        Some(s) if s.organization_id == org => f(s),
        _ => Err(SessionError::NotFound),
    })
}

fn is_running(s: &Session) -> bool {
    matches!(s.status.as_str(), "starting" | "scan_qr_code" | "working")
}

fn start_now(s: &mut Session) {
    if !is_running(s) {
        s.status = if s.wa_jid.is_some() {
            "working"
        } else {
            "scan_qr_code"
        }
        .into();
        s.status_reason = None;
    }
}

pub(crate) fn list_sessions() -> Result<Vec<Session>, SessionError> {
    let org = organization()?;
    Ok(REGISTRY.with_borrow(|r| {
        r.sessions
            .values()
            .filter(|s| s.organization_id == org)
            .cloned()
            .collect()
    }))
}

pub(crate) fn list_all_sessions() -> Result<Vec<Session>, SessionError> {
    let admin = current_call().is_some_and(|c| c.capabilities.contains(&Capability::PlatformAdmin));
    if !admin {
        return Err(SessionError::NotFound);
    }
    Ok(REGISTRY.with_borrow(|r| r.sessions.values().cloned().collect()))
}

pub(crate) fn create(options: &SessionOptions) -> Result<Session, SessionError> {
    let org = organization()?;
    let label = options
        .label
        .as_ref()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(SessionError::Invalid(
            "label must be at most 100 characters".into(),
        ));
    }
    let id = REGISTRY.with_borrow_mut(|r| r.insert(&org, label));
    with_owned(&id, |s| {
        s.auto_read = options.auto_read.unwrap_or(false);
        s.presence_typing = options.presence_typing.unwrap_or(true);
        if options.start {
            start_now(s);
        }
        Ok(s.clone())
    })
}

pub(crate) fn get(id: &str) -> Result<Session, SessionError> {
    with_owned(id, |s| Ok(s.clone()))
}

pub(crate) fn delete(id: &str) -> Result<(), SessionError> {
    with_owned(id, |_| Ok(()))?;
    REGISTRY.with_borrow_mut(|r| r.sessions.remove(id));
    Ok(())
}

pub(crate) fn start(id: &str) -> Result<Session, SessionError> {
    with_owned(id, |s| {
        start_now(s);
        Ok(s.clone())
    })
}

pub(crate) fn stop(id: &str) -> Result<Session, SessionError> {
    with_owned(id, |s| {
        s.status = "stopped".into();
        s.status_reason = None;
        Ok(s.clone())
    })
}

pub(crate) fn restart(id: &str) -> Result<Session, SessionError> {
    stop(id)?;
    start(id)
}

pub(crate) fn logout(id: &str) -> Result<Session, SessionError> {
    with_owned(id, |s| {
        if s.wa_jid.is_none() && !is_running(s) {
            return Ok(s.clone());
        }
        s.phone_number = None;
        s.wa_jid = None;
        s.wa_lid = None;
        s.push_name = None;
        s.status = "stopped".into();
        s.status_reason = Some("logged out".into());
        Ok(s.clone())
    })
}

pub(crate) fn qr(id: &str) -> Result<Option<Code>, SessionError> {
    with_owned(id, |s| {
        if s.wa_jid.is_some() {
            return Err(SessionError::Invalid("session is already paired".into()));
        }
        start_now(s);
        Ok(Some(Code {
            code: format!("2@test-{}", s.id),
            expires_at: NOW + 60_000,
        }))
    })
}

pub(crate) fn request_pairing_code(id: &str, phone: &str) -> Result<Code, SessionError> {
    let digits =
        crate::jid::parse_phone(phone, false).map_err(|e| SessionError::Invalid(e.to_string()))?;
    with_owned(id, |s| {
        if s.wa_jid.is_some() {
            return Err(SessionError::Invalid("session is already paired".into()));
        }
        start_now(s);
        Ok(Code {
            code: format!("TEST-{}", &digits[digits.len().saturating_sub(4)..]),
            expires_at: NOW + 180_000,
        })
    })
}
