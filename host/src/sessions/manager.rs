//! The session manager: create, start, stop, restart, log out and delete sessions through
//! the configured engine, and keep each record's status in step with the engine's events,
//! publishing `session.status` and `auth.qr` as it goes.

use super::registry::Change;
use super::{SessionRecord, SessionRegistry, SessionStatus};
use crate::clock::now_ms;
use crate::engines::{Account, Engine, EngineError, EngineEvent, PairingCode};
use crate::events::{EventBus, EventEnvelope};
use crate::storage::StorageError;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Options of `createSession`.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    pub label: Option<String>,
    pub auto_read: Option<bool>,
    pub presence_typing: Option<bool>,
    pub start: bool,
}

/// What a platform admin may change on a session; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct SessionLimits {
    pub rate_per_min: Option<u32>,
    pub rate_per_hour: Option<u32>,
    pub is_admin_session: Option<bool>,
}

impl SessionLimits {
    /// The allowed ranges (API.md §8).
    pub const RATE_PER_MIN: std::ops::RangeInclusive<u32> = 1..=1_000;
    pub const RATE_PER_HOUR: std::ops::RangeInclusive<u32> = 1..=60_000;

    fn check(&self) -> Result<(), SessionError> {
        for (name, value, range) in [
            ("ratePerMin", self.rate_per_min, Self::RATE_PER_MIN),
            ("ratePerHour", self.rate_per_hour, Self::RATE_PER_HOUR),
        ] {
            if let Some(v) = value
                && !range.contains(&v)
            {
                return Err(SessionError::Invalid(format!(
                    "{name} must be {}-{}",
                    range.start(),
                    range.end()
                )));
            }
        }
        Ok(())
    }
}

/// A session operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("session not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("storage: {0}")]
    Storage(String),
    /// An organization quota would be exceeded.
    #[error("{0}")]
    Quota(String),
}

impl From<StorageError> for SessionError {
    fn from(e: StorageError) -> Self {
        SessionError::Storage(e.to_string())
    }
}

pub struct SessionManager {
    registry: SessionRegistry,
    engine: Arc<dyn Engine>,
    events: EventBus,
    gateway_id: String,
    /// The latest QR code per session, until it expires or pairing completes.
    qr: Mutex<HashMap<String, PairingCode>>,
    /// One lock per session: its start/stop/delete never interleave, and one session's
    /// slow engine call never holds up another's.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    policy: SessionPolicy,
    /// Serialises creation, so the quota check and the insert are one step.
    creating: tokio::sync::Mutex<()>,
    /// Other owners of a session's data (its outbox, its media), told when it is deleted.
    on_delete: Mutex<Vec<OnDelete>>,
}

/// Removes a deleted session's data held outside the registry.
pub type OnDelete = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// What the operator configured for sessions.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// How long one engine lifecycle call may take before it fails.
    pub engine_timeout: Duration,
    /// Sessions one organization may have (`quotas.max_sessions_per_org`).
    pub max_per_org: Option<usize>,
    /// `ratePerMin` / `ratePerHour` of a new session (`messages.default_rate_per_*`).
    pub rate_per_min: u32,
    pub rate_per_hour: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            engine_timeout: Duration::from_secs(15),
            max_per_org: None,
            rate_per_min: 20,
            rate_per_hour: 600,
        }
    }
}

impl SessionManager {
    pub fn new(
        registry: SessionRegistry,
        engine: Arc<dyn Engine>,
        events: EventBus,
        gateway_id: String,
        policy: SessionPolicy,
    ) -> Arc<SessionManager> {
        Arc::new(SessionManager {
            registry,
            engine,
            events,
            gateway_id,
            qr: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            policy,
            creating: tokio::sync::Mutex::new(()),
            on_delete: Mutex::new(Vec::new()),
        })
    }

    /// Holds the session's lifecycle lock until the guard drops.
    async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("lock")
            .entry(id.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Runs an engine lifecycle call within the engine timeout.
    async fn engine_call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(self.policy.engine_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(EngineError::Failed(format!(
                "the engine did not finish {what} within {} ms",
                self.policy.engine_timeout.as_millis()
            ))),
        }
    }

    /// Registers another owner of session data to clean up on delete.
    pub fn on_delete(&self, purge: OnDelete) {
        self.on_delete.lock().expect("lock").push(purge);
    }

    pub fn registry(&self) -> &SessionRegistry {
        &self.registry
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    fn owned(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        self.registry
            .get_owned(id, org)
            .ok_or(SessionError::NotFound)
    }

    pub fn get(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        self.owned(org, id)
    }

    pub fn list(&self, org: &str) -> Vec<Arc<SessionRecord>> {
        self.registry.list(Some(org))
    }

    pub async fn create(
        &self,
        org: &str,
        created_by: &str,
        options: CreateSession,
    ) -> Result<Arc<SessionRecord>, SessionError> {
        let label = match options.label.map(|l| l.trim().to_owned()) {
            Some(l) if l.chars().count() > 100 => {
                return Err(SessionError::Invalid(
                    "label must be at most 100 characters".into(),
                ));
            }
            Some(l) if l.is_empty() => None,
            other => other,
        };
        let creating = self.creating.lock().await;
        if let Some(max) = self.policy.max_per_org
            && self.registry.list(Some(org)).len() >= max
        {
            return Err(SessionError::Quota(format!(
                "the organization has {max} sessions, the most it may (quotas.max_sessions_per_org)"
            )));
        }
        let now = now_ms();
        let record = SessionRecord {
            id: ulid::Ulid::generate().to_string(),
            organization_id: org.to_owned(),
            label,
            status: SessionStatus::Stopped,
            status_reason: None,
            phone_number: None,
            wa_jid: None,
            wa_lid: None,
            push_name: None,
            gateway_id: self.gateway_id.clone(),
            is_admin_session: false,
            auto_read: options.auto_read.unwrap_or(false),
            presence_typing: options.presence_typing.unwrap_or(true),
            rate_per_min: self.policy.rate_per_min,
            rate_per_hour: self.policy.rate_per_hour,
            created_by_user_id: created_by.to_owned(),
            created_at: now,
            updated_at: now,
            last_connected_at: None,
            want_running: false,
        };
        let id = record.id.clone();
        let saved = self.registry.save(record)?;
        drop(creating);
        tracing::info!(session = %id, org, "session created");
        if options.start {
            return self.start(org, &id).await;
        }
        Ok(saved)
    }

    /// Connects in the background; a no-op when already running.
    pub async fn start(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lock(id).await;
        let current = self.owned(org, id)?;
        if current.status.is_running() {
            return Ok(current);
        }
        self.start_locked(id).await
    }

    async fn start_locked(&self, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let rec = self.set_status(id, SessionStatus::Starting, None, |r| {
            r.want_running = true;
        })?;
        // On the app runtime: the engine starts the session's long-lived tasks, and a
        // request served on a per-core thread must not leave them there (`background`).
        let (engine, sid) = (self.engine.clone(), id.to_owned());
        let start = crate::background::run(async move { engine.start(&sid).await });
        if let Err(e) = self.engine_call("start", start).await {
            let reason = e.to_string();
            return self.set_status(id, SessionStatus::Failed, Some(reason), |_| {});
        }
        Ok(rec)
    }

    /// Disconnects, keeping the pairing; a no-op when stopped.
    pub async fn stop(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lock(id).await;
        let current = self.owned(org, id)?;
        if current.status == SessionStatus::Stopped && !current.want_running {
            return Ok(current);
        }
        self.stop_locked(id).await
    }

    async fn stop_locked(&self, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        // Mark first so late events of the old connection are ignored.
        self.registry.update(id, |r| r.want_running = false)?;
        self.engine_call("stop", self.engine.stop(id)).await?;
        self.qr.lock().expect("lock").remove(id);
        self.set_status(id, SessionStatus::Stopped, None, |_| {})
    }

    /// Stop then start, keeping the pairing.
    pub async fn restart(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lock(id).await;
        self.owned(org, id)?;
        self.stop_locked(id).await?;
        self.start_locked(id).await
    }

    /// Unlinks the device (pairing lost) and keeps the row; a no-op when not paired.
    pub async fn logout(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lock(id).await;
        let current = self.owned(org, id)?;
        if !current.is_paired() && !current.status.is_running() {
            return Ok(current);
        }
        self.registry.update(id, |r| r.want_running = false)?;
        self.engine_call("logout", self.engine.logout(id)).await?;
        self.qr.lock().expect("lock").remove(id);
        let rec = self.set_status(id, SessionStatus::Stopped, Some("logged out".into()), |r| {
            clear_account(r);
        })?;
        Ok(rec)
    }

    /// Changes what only a platform admin may: the send rates (`ratePerMin` 1–1000,
    /// `ratePerHour` 1–60 000) and the admin flag. The outbox reads the new rates on its
    /// next send.
    pub fn update_limits(
        &self,
        org: &str,
        id: &str,
        limits: &SessionLimits,
    ) -> Result<Arc<SessionRecord>, SessionError> {
        self.owned(org, id)?;
        limits.check()?;
        self.registry
            .update(id, |r| {
                if let Some(v) = limits.rate_per_min {
                    r.rate_per_min = v;
                }
                if let Some(v) = limits.rate_per_hour {
                    r.rate_per_hour = v;
                }
                if let Some(v) = limits.is_admin_session {
                    r.is_admin_session = v;
                }
            })?
            .ok_or(SessionError::NotFound)
    }

    /// Stops the connection and removes the session with all its stored data.
    pub async fn delete(&self, org: &str, id: &str) -> Result<(), SessionError> {
        let _guard = self.lock(id).await;
        self.owned(org, id)?;
        self.registry.update(id, |r| r.want_running = false)?;
        if let Err(e) = self.engine_call("logout", self.engine.logout(id)).await {
            tracing::warn!(session = id, error = %e, "engine logout during delete failed");
        }
        self.qr.lock().expect("lock").remove(id);
        self.registry.remove(id)?;
        let purges: Vec<OnDelete> = self.on_delete.lock().expect("lock").clone();
        for purge in purges {
            purge(id.to_owned()).await;
        }
        self.locks.lock().expect("lock").remove(id);
        tracing::info!(session = id, org, "session deleted");
        Ok(())
    }

    /// The current QR code. Starts pairing when the session is not running; `None` until
    /// the engine has produced a code. Already paired → invalid.
    pub async fn qr(&self, org: &str, id: &str) -> Result<Option<PairingCode>, SessionError> {
        let _guard = self.lock(id).await;
        let current = self.owned(org, id)?;
        if current.is_paired() {
            return Err(SessionError::Invalid("session is already paired".into()));
        }
        if !current.is_connecting() {
            self.start_locked(id).await?;
        }
        let now = now_ms();
        let qr = self.qr.lock().expect("lock").get(id).cloned();
        Ok(qr.filter(|c| c.expires_at > now))
    }

    /// A pair code for the phone. Already paired or bad phone → invalid.
    pub async fn pairing_code(
        &self,
        org: &str,
        id: &str,
        phone: &str,
    ) -> Result<PairingCode, SessionError> {
        let phone = gateway_sdk::jid::parse_phone(phone, false)
            .map_err(|e| SessionError::Invalid(e.to_string()))?;
        // Held through the request: a stop meanwhile would leave the engine without a
        // connection to ask on.
        let _guard = self.lock(id).await;
        let current = self.owned(org, id)?;
        if current.is_paired() {
            return Err(SessionError::Invalid("session is already paired".into()));
        }
        if !current.is_connecting() {
            self.start_locked(id).await?;
        }
        let code = self
            .engine_call(
                "the pair code",
                self.engine.request_pairing_code(id, &phone),
            )
            .await
            .map_err(|e| match e {
                EngineError::Invalid(m) => SessionError::Invalid(m),
                other => SessionError::Engine(other),
            })?;
        Ok(code)
    }

    /// Before the listeners open: no session of a process that just started is connected,
    /// whatever the last run stored. One that should run reads `starting` until its engine
    /// reports (so nothing is started on a `working` no connection backs); one that should
    /// not reads `stopped`.
    pub fn settle_after_restart(&self) {
        for s in self.registry.list(None) {
            let settled = match (s.status.is_running(), s.want_running) {
                (true, true) if s.status != SessionStatus::Starting => SessionStatus::Starting,
                (true, false) => SessionStatus::Stopped,
                _ => continue,
            };
            if let Err(e) = self.set_status(&s.id, settled, None, |_| {}) {
                tracing::warn!(session = %s.id, error = %e, "cannot settle the session's status");
            }
        }
    }

    /// Starts every session that was running when the gateway last stopped.
    pub async fn resume_all(&self) {
        for s in self.registry.list(None) {
            let _guard = self.lock(&s.id).await;
            if s.want_running {
                tracing::info!(session = %s.id, "resuming session");
                if let Err(e) = self.start_locked(&s.id).await {
                    tracing::warn!(session = %s.id, error = %e, "resume failed");
                }
            }
        }
    }

    /// Applies one engine event: lifecycle events change the session's record (and
    /// publish `session.status` / `auth.qr`), WhatsApp events are published as they are.
    /// Connection progress of a session that was stopped is stale and ignored.
    pub(crate) fn apply(&self, ev: EngineEvent) -> Result<(), SessionError> {
        let Some(current) = self.registry.get(ev.session()) else {
            return Ok(());
        };
        let id = current.id.clone();
        match ev {
            EngineEvent::Connecting { reason, .. } => {
                self.progress(&id, SessionStatus::Starting, reason, |_| {})?;
            }
            EngineEvent::Qr { code, .. } => {
                if self.progress(&id, SessionStatus::ScanQrCode, None, |_| {})? {
                    self.qr
                        .lock()
                        .expect("lock")
                        .insert(id.clone(), code.clone());
                    self.publish(
                        &current,
                        "auth.qr",
                        json!({"code": code.code, "expiresAt": code.expires_at}),
                    );
                }
            }
            EngineEvent::Paired { account, .. } => {
                self.qr.lock().expect("lock").remove(&id);
                self.registry.update(&id, |r| set_account(r, &account))?;
            }
            EngineEvent::Connected { account, .. } => {
                if self.progress(&id, SessionStatus::Working, None, |r| {
                    if let Some(a) = &account {
                        set_account(r, a);
                    }
                    r.last_connected_at = Some(now_ms());
                })? {
                    self.qr.lock().expect("lock").remove(&id);
                }
            }
            EngineEvent::Disconnected {
                reason, retrying, ..
            } => {
                let status = if retrying {
                    SessionStatus::Starting
                } else {
                    SessionStatus::Failed
                };
                self.progress(&id, status, Some(reason), |_| {})?;
            }
            EngineEvent::LoggedOut { reason, .. } => {
                self.qr.lock().expect("lock").remove(&id);
                self.set_status(&id, SessionStatus::Failed, Some(reason), |r| {
                    clear_account(r);
                    r.want_running = false;
                })?;
            }
            EngineEvent::Failed { reason, .. } => {
                self.progress(&id, SessionStatus::Failed, Some(reason), |_| {})?;
            }
            EngineEvent::Domain { name, payload, .. } => {
                self.publish(&current, &name, payload);
            }
            // The outbox's: it advances the status of what was sent.
            EngineEvent::Receipt { .. } => {}
        }
        Ok(())
    }

    /// Sets status and reason (plus other changes) and publishes `session.status` when the
    /// status changed.
    fn set_status(
        &self,
        id: &str,
        status: SessionStatus,
        reason: Option<String>,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<Arc<SessionRecord>, SessionError> {
        self.set_status_if(id, |_| true, status, reason, change)?
            .ok_or(SessionError::NotFound)
    }

    /// Connection progress the engine reports: applied only while the session should run;
    /// `false` when it was stale. The check is part of the write, so a stop landing between
    /// an event's arrival and its write wins.
    fn progress(
        &self,
        id: &str,
        status: SessionStatus,
        reason: Option<String>,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<bool, SessionError> {
        let applied = self.set_status_if(id, |r| r.want_running, status, reason, change)?;
        Ok(applied.is_some())
    }

    /// [`set_status`](Self::set_status) when `when` holds for the record as it is at the
    /// write; `None` when it did not.
    fn set_status_if(
        &self,
        id: &str,
        when: impl FnOnce(&SessionRecord) -> bool,
        status: SessionStatus,
        reason: Option<String>,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<Option<Arc<SessionRecord>>, SessionError> {
        let mut applied = false;
        let Change { before, after } = self
            .registry
            .change(id, |r| {
                if when(r) {
                    applied = true;
                    r.status = status;
                    r.status_reason = reason;
                    change(r);
                }
            })?
            .ok_or(SessionError::NotFound)?;
        if !applied {
            return Ok(None);
        }
        if before.status != after.status || before.status_reason != after.status_reason {
            tracing::info!(
                session = id,
                from = before.status.as_str(),
                to = after.status.as_str(),
                reason = after.status_reason.as_deref().unwrap_or(""),
                "session status"
            );
            self.publish(
                &after,
                "session.status",
                json!({
                    "status": after.status,
                    "previous": before.status,
                    "reason": after.status_reason,
                }),
            );
        }
        Ok(Some(after))
    }

    fn publish(&self, session: &SessionRecord, event: &str, payload: serde_json::Value) {
        self.events.publish(EventEnvelope::new(
            event,
            &session.id,
            &session.organization_id,
            payload,
        ));
    }
}

fn set_account(r: &mut SessionRecord, a: &Account) {
    r.phone_number = Some(a.phone_number.clone());
    r.wa_jid = Some(a.jid.clone());
    if a.lid.is_some() {
        r.wa_lid = a.lid.clone();
    }
    if a.push_name.is_some() {
        r.push_name = a.push_name.clone();
    }
}

fn clear_account(r: &mut SessionRecord) {
    r.phone_number = None;
    r.wa_jid = None;
    r.wa_lid = None;
    r.push_name = None;
}

#[cfg(test)]
mod tests;
