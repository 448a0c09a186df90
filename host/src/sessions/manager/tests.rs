//! The session manager driven by a scripted engine: every status change an engine event
//! causes, the `session.status` events published, stale events of stopped sessions
//! ignored, and the lifecycle calls reaching the engine.

use super::*;
use crate::engines::{
    BlockedContact, ChatSettings, ChatState, MediaBlob, MessageRef, OnWhatsapp, OutgoingMessage,
    Picture, SendError, SentAck,
};
use crate::events::EventBus;
use crate::storage::Database;
use async_trait::async_trait;
use gateway_sdk::Jid;
use std::sync::Mutex as StdMutex;

/// An engine that records the lifecycle calls it gets; events are fed by the test.
/// `logout` of a session named in `slow` takes that long.
#[derive(Default)]
struct ScriptedEngine {
    calls: StdMutex<Vec<String>>,
    slow: StdMutex<HashMap<String, std::time::Duration>>,
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
        let delay = self.slow.lock().unwrap().get(session).copied();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
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
    async fn send_message(&self, _: &str, _: &OutgoingMessage) -> Result<SentAck, SendError> {
        Err(SendError::NotConnected("scripted".into()))
    }
    async fn send_chat_state(&self, _: &str, _: &Jid, _: ChatState) -> Result<(), EngineError> {
        offline()
    }
    async fn mark_read(&self, _: &str, _: &Jid, _: &[MessageRef]) -> Result<(), EngineError> {
        offline()
    }
    async fn apply_chat_settings(
        &self,
        _: &str,
        _: &Jid,
        _: ChatSettings,
    ) -> Result<(), EngineError> {
        offline()
    }
    async fn delete_chat(&self, _: &str, _: &Jid) -> Result<(), EngineError> {
        offline()
    }
    async fn download_media(&self, _: &str, _: &MessageRef) -> Result<MediaBlob, EngineError> {
        offline()
    }
    async fn shutdown(&self) {}
}

struct Harness {
    _dir: tempfile::TempDir,
    manager: Arc<SessionManager>,
    engine: Arc<ScriptedEngine>,
    events: tokio::sync::broadcast::Receiver<Arc<EventEnvelope>>,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("m.redb")).unwrap();
    let registry = SessionRegistry::load(db).unwrap();
    let bus = EventBus::new(1_000);
    let events = bus.subscribe();
    let engine = Arc::new(ScriptedEngine::default());
    let manager = SessionManager::new(
        registry,
        engine.clone(),
        bus,
        "gw-test".into(),
        SessionPolicy {
            engine_timeout: std::time::Duration::from_millis(1_500),
            max_per_org: Some(5),
            ..SessionPolicy::default()
        },
    );
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
    // What the last run stored as connected is not connected in a new process.
    h.manager
        .registry()
        .update(&running, |r| r.status = SessionStatus::Working)
        .unwrap();
    h.manager.settle_after_restart();
    assert_eq!(h.status(&running).0, SessionStatus::Starting);
    assert_eq!(h.status(&stopped).0, SessionStatus::Stopped);
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

#[tokio::test]
async fn one_sessions_slow_engine_call_does_not_hold_up_another() {
    let h = harness();
    let slow = h.create(true).await;
    let quick = h.create(false).await;
    h.engine
        .slow
        .lock()
        .unwrap()
        .insert(slow.clone(), std::time::Duration::from_millis(800));
    let manager = h.manager.clone();
    let slow_id = slow.clone();
    let logout = tokio::spawn(async move { manager.logout("org", &slow_id).await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    h.manager.start("org", &quick).await.unwrap();
    h.manager.stop("org", &quick).await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(400),
        "another session waited {:?} for a slow logout",
        started.elapsed()
    );
    assert!(logout.await.unwrap().is_ok());
}

#[tokio::test]
async fn an_engine_call_that_never_ends_fails_at_the_engine_timeout() {
    let h = harness();
    let id = h.create(true).await;
    h.engine
        .slow
        .lock()
        .unwrap()
        .insert(id.clone(), std::time::Duration::from_secs(3_600));
    let started = std::time::Instant::now();
    let r = h.manager.logout("org", &id).await;
    assert!(
        matches!(r, Err(SessionError::Engine(EngineError::Failed(ref m))) if m.contains("within")),
        "{r:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The session is not wedged: its lock is free again.
    h.manager.stop("org", &id).await.unwrap();
}

#[tokio::test]
async fn the_session_quota_counts_per_organization() {
    let h = harness();
    for _ in 0..5 {
        h.create(false).await;
    }
    let err = h
        .manager
        .create("org", "u", CreateSession::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::Quota(_)), "{err}");
    h.manager
        .create("other_org", "u", CreateSession::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_racing_engine_events_stays_stopped() {
    let h = harness();
    let id = h.create(false).await;
    let code = PairingCode {
        code: "2@qr".into(),
        expires_at: now_ms() + 60_000,
    };
    for round in 0..50 {
        h.manager.start("org", &id).await.unwrap();
        // The engine keeps reporting progress while the stop lands.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let events = {
            let (manager, id, code, done) =
                (h.manager.clone(), id.clone(), code.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let qr = EngineEvent::Qr {
                        session: id.clone(),
                        code: code.clone(),
                    };
                    manager.apply(qr).unwrap();
                }
            })
        };
        h.manager.stop("org", &id).await.unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        events.join().unwrap();
        let r = h.manager.registry().get(&id).unwrap();
        assert_eq!(
            (r.status, r.want_running),
            (SessionStatus::Stopped, false),
            "round {round}: a stale event outlived the stop"
        );
        // Pairing on the stopped session starts it again rather than asking an engine
        // that has no connection.
        h.manager
            .pairing_code("org", &id, "14155550123")
            .await
            .unwrap();
        h.manager.stop("org", &id).await.unwrap();
    }
}
