//! The session manager driven by a scripted engine: every status change an engine event
//! causes, the `session.status` events published, stale events of stopped sessions
//! ignored, and the lifecycle calls reaching the engine.

use super::*;
use crate::engines::{BlockedContact, OnWhatsapp, Picture};
use crate::events::EventBus;
use crate::storage::Database;
use async_trait::async_trait;
use gateway_sdk::Jid;
use std::sync::Mutex as StdMutex;

/// An engine that records the lifecycle calls it gets; events are fed by the test.
#[derive(Default)]
struct ScriptedEngine {
    calls: StdMutex<Vec<String>>,
}

impl ScriptedEngine {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, what: &str, session: &str) {
        self.calls.lock().unwrap().push(format!("{what} {session}"));
    }
}

fn offline<T>() -> Result<T, EngineError> {
    Err(EngineError::NotConnected("scripted".into()))
}

#[async_trait]
impl Engine for ScriptedEngine {
    fn name(&self) -> &'static str {
        "scripted"
    }
    async fn start(&self, session: &str) -> Result<(), EngineError> {
        self.record("start", session);
        Ok(())
    }
    async fn stop(&self, session: &str) -> Result<(), EngineError> {
        self.record("stop", session);
        Ok(())
    }
    async fn logout(&self, session: &str) -> Result<(), EngineError> {
        self.record("logout", session);
        Ok(())
    }
    async fn request_pairing_code(
        &self,
        session: &str,
        _: &str,
    ) -> Result<PairingCode, EngineError> {
        self.record("pair-code", session);
        Ok(PairingCode {
            code: "ABCD-1234".into(),
            expires_at: now_ms() + 60_000,
        })
    }
    async fn check_phone(&self, _: &str, _: &str) -> Result<OnWhatsapp, EngineError> {
        offline()
    }
    async fn profile_picture(&self, _: &str, _: &Jid) -> Result<Option<Picture>, EngineError> {
        offline()
    }
    async fn about(&self, _: &str, _: &Jid) -> Result<String, EngineError> {
        offline()
    }
    async fn block(&self, _: &str, _: &Jid) -> Result<(), EngineError> {
        offline()
    }
    async fn unblock(&self, _: &str, _: &Jid) -> Result<(), EngineError> {
        offline()
    }
    async fn blocklist(&self, _: &str) -> Result<Vec<BlockedContact>, EngineError> {
        offline()
    }
    async fn shutdown(&self) {}
}

struct Harness {
    _dir: tempfile::TempDir,
    manager: Arc<SessionManager>,
    engine: Arc<ScriptedEngine>,
    events: mpsc::UnboundedReceiver<Arc<EventEnvelope>>,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("m.redb")).unwrap();
    let registry = SessionRegistry::load(db).unwrap();
    let (bus, events) = EventBus::new();
    let engine = Arc::new(ScriptedEngine::default());
    let manager = SessionManager::new(registry, engine.clone(), bus, "gw-test".into());
    Harness {
        _dir: dir,
        manager,
        engine,
        events,
    }
}

impl Harness {
    /// A new session of `org`, started when asked; its id.
    async fn create(&self, start: bool) -> String {
        let options = CreateSession {
            start,
            ..Default::default()
        };
        self.manager
            .create("org", "u", options)
            .await
            .unwrap()
            .id
            .clone()
    }

    fn status(&self, id: &str) -> (SessionStatus, Option<String>) {
        let r = self.manager.registry().get(id).unwrap();
        (r.status, r.status_reason.clone())
    }

    /// The `session.status` transitions published so far, as `previous→status`.
    fn transitions(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            if e.event == "session.status" {
                out.push(format!(
                    "{}→{}",
                    e.payload["previous"].as_str().unwrap(),
                    e.payload["status"].as_str().unwrap()
                ));
            }
        }
        out
    }
}

fn account() -> Account {
    Account {
        phone_number: "15551234567".into(),
        jid: "15551234567@s.whatsapp.net".into(),
        lid: Some("99@lid".into()),
        push_name: Some("Support".into()),
    }
}

#[tokio::test]
async fn engine_events_drive_the_status_from_start_to_working_and_back() {
    let mut h = harness();
    let s = h
        .manager
        .create("org", "user_1", CreateSession::default())
        .await
        .unwrap();
    assert_eq!(s.status, SessionStatus::Stopped);
    let id = s.id.clone();
    h.manager.start("org", &id).await.unwrap();
    assert_eq!(h.status(&id).0, SessionStatus::Starting);
    let code = PairingCode {
        code: "2@qr".into(),
        expires_at: now_ms() + 60_000,
    };
    h.manager
        .apply(EngineEvent::Qr {
            session: id.clone(),
            code: code.clone(),
        })
        .unwrap();
    assert_eq!(h.status(&id).0, SessionStatus::ScanQrCode);
    assert_eq!(h.manager.qr("org", &id).await.unwrap(), Some(code));
    h.manager
        .apply(EngineEvent::Paired {
            session: id.clone(),
            account: account(),
        })
        .unwrap();
    h.manager
        .apply(EngineEvent::Connected {
            session: id.clone(),
            account: None,
        })
        .unwrap();
    let r = h.manager.registry().get(&id).unwrap();
    assert_eq!(r.status, SessionStatus::Working);
    assert_eq!(r.wa_lid.as_deref(), Some("99@lid"));
    assert!(r.last_connected_at.is_some());
    assert!(matches!(
        h.manager.qr("org", &id).await,
        Err(SessionError::Invalid(_))
    ));

    h.manager
        .apply(EngineEvent::Disconnected {
            session: id.clone(),
            reason: "socket closed".into(),
            retrying: true,
        })
        .unwrap();
    assert_eq!(
        h.status(&id),
        (SessionStatus::Starting, Some("socket closed".into()))
    );
    h.manager
        .apply(EngineEvent::Disconnected {
            session: id.clone(),
            reason: "banned".into(),
            retrying: false,
        })
        .unwrap();
    assert_eq!(h.status(&id).0, SessionStatus::Failed);
    assert_eq!(
        h.transitions(),
        vec![
            "stopped→starting",
            "starting→scan_qr_code",
            "scan_qr_code→working",
            "working→starting",
            "starting→failed"
        ]
    );
}

#[tokio::test]
async fn events_of_a_stopped_session_are_stale_and_ignored() {
    let mut h = harness();
    let id = h.create(false).await;
    h.manager.start("org", &id).await.unwrap();
    h.manager.stop("org", &id).await.unwrap();
    h.manager
        .apply(EngineEvent::Connected {
            session: id.clone(),
            account: Some(account()),
        })
        .unwrap();
    assert_eq!(h.status(&id).0, SessionStatus::Stopped);
    assert_eq!(
        h.engine.calls(),
        vec![format!("start {id}"), format!("stop {id}")]
    );
    assert_eq!(
        h.transitions(),
        vec!["stopped→starting", "starting→stopped"]
    );
    // Stopping a stopped session is a no-op: no engine call, no event.
    h.manager.stop("org", &id).await.unwrap();
    assert_eq!(h.engine.calls().len(), 2);
}

#[tokio::test]
async fn logout_and_unlink_lose_the_pairing_and_delete_removes_the_session() {
    let h = harness();
    let id = h.create(true).await;
    h.manager
        .apply(EngineEvent::Connected {
            session: id.clone(),
            account: Some(account()),
        })
        .unwrap();
    let out = h.manager.logout("org", &id).await.unwrap();
    assert_eq!(out.status, SessionStatus::Stopped);
    assert_eq!(out.status_reason.as_deref(), Some("logged out"));
    assert!(out.wa_jid.is_none() && !out.want_running);
    assert!(h.engine.calls().contains(&format!("logout {id}")));

    // Unlinked from the phone while running: failed, pairing lost, not resumed.
    h.manager.start("org", &id).await.unwrap();
    h.manager
        .apply(EngineEvent::Paired {
            session: id.clone(),
            account: account(),
        })
        .unwrap();
    h.manager
        .apply(EngineEvent::LoggedOut {
            session: id.clone(),
            reason: "device unlinked".into(),
        })
        .unwrap();
    let r = h.manager.registry().get(&id).unwrap();
    assert_eq!(r.status, SessionStatus::Failed);
    assert!(r.wa_jid.is_none() && !r.want_running);

    assert!(matches!(
        h.manager.get("other_org", &id),
        Err(SessionError::NotFound)
    ));
    h.manager.delete("org", &id).await.unwrap();
    assert!(h.manager.registry().get(&id).is_none());
    assert!(matches!(
        h.manager.delete("org", &id).await,
        Err(SessionError::NotFound)
    ));
}

#[tokio::test]
async fn resume_starts_what_was_running_and_settles_the_rest() {
    let h = harness();
    let running = h.create(true).await;
    let stopped = h.create(false).await;
    // A record left mid-connection without wanting to run (a crash during stop).
    h.manager
        .registry()
        .update(&stopped, |r| r.status = SessionStatus::Starting)
        .unwrap();
    h.manager.resume_all().await;
    let calls = h.engine.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == &format!("start {running}"))
            .count(),
        2
    );
    assert!(!calls.contains(&format!("start {stopped}")));
    assert_eq!(h.status(&stopped).0, SessionStatus::Stopped);
    assert!(matches!(
        h.manager.pairing_code("org", &running, "12").await,
        Err(SessionError::Invalid(_))
    ));
    assert!(
        h.manager
            .pairing_code("org", &running, "15551234567")
            .await
            .is_ok()
    );
}
