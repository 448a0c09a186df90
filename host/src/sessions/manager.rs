//! The session manager: create, start, stop, restart, log out and delete sessions through
//! the configured engine, and keep each record's status in step with the engine's events,
//! publishing `session.status` and `auth.qr` as it goes.

use super::{SessionRecord, SessionRegistry, SessionStatus};
use crate::clock::now_ms;
use crate::engines::{Account, Engine, EngineError, EngineEvent, PairingCode};
use crate::events::{EventBus, EventEnvelope};
use crate::storage::StorageError;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Defaults of a new session's send rate limits (API.md §2).
const DEFAULT_RATE_PER_MIN: u32 = 20;
const DEFAULT_RATE_PER_HOUR: u32 = 600;

/// Options of `createSession`.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    pub label: Option<String>,
    pub auto_read: Option<bool>,
    pub presence_typing: Option<bool>,
    pub start: bool,
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
    /// Serialises lifecycle changes so start/stop/delete never interleave.
    lifecycle: tokio::sync::Mutex<()>,
}

impl SessionManager {
    pub fn new(
        registry: SessionRegistry,
        engine: Arc<dyn Engine>,
        events: EventBus,
        gateway_id: String,
    ) -> Arc<SessionManager> {
        Arc::new(SessionManager {
            registry,
            engine,
            events,
            gateway_id,
            qr: Mutex::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        })
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
            rate_per_min: DEFAULT_RATE_PER_MIN,
            rate_per_hour: DEFAULT_RATE_PER_HOUR,
            created_by_user_id: created_by.to_owned(),
            created_at: now,
            updated_at: now,
            last_connected_at: None,
            want_running: false,
        };
        let id = record.id.clone();
        let saved = self.registry.save(record)?;
        tracing::info!(session = %id, org, "session created");
        if options.start {
            return self.start(org, &id).await;
        }
        Ok(saved)
    }

    /// Connects in the background; a no-op when already running.
    pub async fn start(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lifecycle.lock().await;
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
        if let Err(e) = self.engine.start(id).await {
            let reason = e.to_string();
            return self.set_status(id, SessionStatus::Failed, Some(reason), |_| {});
        }
        Ok(rec)
    }

    /// Disconnects, keeping the pairing; a no-op when stopped.
    pub async fn stop(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lifecycle.lock().await;
        let current = self.owned(org, id)?;
        if current.status == SessionStatus::Stopped && !current.want_running {
            return Ok(current);
        }
        self.stop_locked(id).await
    }

    async fn stop_locked(&self, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        // Mark first so late events of the old connection are ignored.
        self.registry.update(id, |r| r.want_running = false)?;
        self.engine.stop(id).await?;
        self.qr.lock().expect("lock").remove(id);
        self.set_status(id, SessionStatus::Stopped, None, |_| {})
    }

    /// Stop then start, keeping the pairing.
    pub async fn restart(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lifecycle.lock().await;
        self.owned(org, id)?;
        self.stop_locked(id).await?;
        self.start_locked(id).await
    }

    /// Unlinks the device (pairing lost) and keeps the row; a no-op when not paired.
    pub async fn logout(&self, org: &str, id: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let _guard = self.lifecycle.lock().await;
        let current = self.owned(org, id)?;
        if !current.is_paired() && !current.status.is_running() {
            return Ok(current);
        }
        self.registry.update(id, |r| r.want_running = false)?;
        self.engine.logout(id).await?;
        self.qr.lock().expect("lock").remove(id);
        let rec = self.set_status(id, SessionStatus::Stopped, Some("logged out".into()), |r| {
            clear_account(r);
        })?;
        Ok(rec)
    }

    /// Stops the connection and removes the session with all its stored data.
    pub async fn delete(&self, org: &str, id: &str) -> Result<(), SessionError> {
        let _guard = self.lifecycle.lock().await;
        self.owned(org, id)?;
        self.registry.update(id, |r| r.want_running = false)?;
        if let Err(e) = self.engine.logout(id).await {
            tracing::warn!(session = id, error = %e, "engine logout during delete failed");
        }
        self.qr.lock().expect("lock").remove(id);
        self.registry.remove(id)?;
        tracing::info!(session = id, org, "session deleted");
        Ok(())
    }

    /// The current QR code. Starts pairing when the session is not running; `None` until
    /// the engine has produced a code. Already paired → invalid.
    pub async fn qr(&self, org: &str, id: &str) -> Result<Option<PairingCode>, SessionError> {
        let current = self.owned(org, id)?;
        if current.is_paired() {
            return Err(SessionError::Invalid("session is already paired".into()));
        }
        if !current.status.is_running() {
            self.start(org, id).await?;
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
        let current = self.owned(org, id)?;
        if current.is_paired() {
            return Err(SessionError::Invalid("session is already paired".into()));
        }
        if !current.status.is_running() {
            self.start(org, id).await?;
        }
        let code = self
            .engine
            .request_pairing_code(id, &phone)
            .await
            .map_err(|e| match e {
                EngineError::Invalid(m) => SessionError::Invalid(m),
                other => SessionError::Engine(other),
            })?;
        Ok(code)
    }

    /// Starts every session that was running when the gateway last stopped.
    pub async fn resume_all(&self) {
        let _guard = self.lifecycle.lock().await;
        for s in self.registry.list(None) {
            if s.want_running {
                tracing::info!(session = %s.id, "resuming session");
                if let Err(e) = self.start_locked(&s.id).await {
                    tracing::warn!(session = %s.id, error = %e, "resume failed");
                }
            } else if s.status.is_running() {
                // Was mid-connection when the gateway died without wanting to run: settle.
                let _ = self.set_status(&s.id, SessionStatus::Stopped, None, |_| {});
            }
        }
    }

    /// Applies engine events to records until the engine side closes, counting them.
    pub async fn run_events_counted(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<EngineEvent>,
        metrics: Arc<crate::metrics::Metrics>,
    ) {
        while let Some(ev) = rx.recv().await {
            metrics
                .engine_events
                .get_or_create(&crate::metrics::EventLabels {
                    event: ev.kind().to_owned(),
                })
                .inc();
            if let Err(e) = self.apply(ev) {
                tracing::error!(error = %e, "applying engine event failed");
            }
        }
    }

    fn apply(&self, ev: EngineEvent) -> Result<(), SessionError> {
        let Some(current) = self.registry.get(ev.session()) else {
            return Ok(());
        };
        let id = current.id.clone();
        // Connection progress of a session that was stopped is stale: ignore it.
        let stale = !current.want_running;
        match ev {
            EngineEvent::Connecting { reason, .. } if !stale => {
                self.set_status(&id, SessionStatus::Starting, reason, |_| {})?;
            }
            EngineEvent::Qr { code, .. } if !stale => {
                self.qr
                    .lock()
                    .expect("lock")
                    .insert(id.clone(), code.clone());
                self.set_status(&id, SessionStatus::ScanQrCode, None, |_| {})?;
                self.publish(
                    &current,
                    "auth.qr",
                    json!({"code": code.code, "expiresAt": code.expires_at}),
                );
            }
            EngineEvent::Paired { account, .. } => {
                self.qr.lock().expect("lock").remove(&id);
                self.registry.update(&id, |r| set_account(r, &account))?;
            }
            EngineEvent::Connected { account, .. } if !stale => {
                self.qr.lock().expect("lock").remove(&id);
                self.set_status(&id, SessionStatus::Working, None, |r| {
                    if let Some(a) = &account {
                        set_account(r, a);
                    }
                    r.last_connected_at = Some(now_ms());
                })?;
            }
            EngineEvent::Disconnected {
                reason, retrying, ..
            } if !stale => {
                let status = if retrying {
                    SessionStatus::Starting
                } else {
                    SessionStatus::Failed
                };
                self.set_status(&id, status, Some(reason), |_| {})?;
            }
            EngineEvent::LoggedOut { reason, .. } => {
                self.qr.lock().expect("lock").remove(&id);
                self.set_status(&id, SessionStatus::Failed, Some(reason), |r| {
                    clear_account(r);
                    r.want_running = false;
                })?;
            }
            EngineEvent::Failed { reason, .. } if !stale => {
                self.set_status(&id, SessionStatus::Failed, Some(reason), |_| {})?;
            }
            EngineEvent::Domain { name, payload, .. } => {
                self.publish(&current, &name, payload);
            }
            _ => {}
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
        let before = self.registry.get(id).ok_or(SessionError::NotFound)?;
        let after = self
            .registry
            .update(id, |r| {
                r.status = status;
                r.status_reason = reason;
                change(r);
            })?
            .ok_or(SessionError::NotFound)?;
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
        Ok(after)
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
