//! The job rules without a gateway: one job at a time per session (the second start is a
//! conflict while the first runs), only working sessions of the caller's organization,
//! the status answer, and jobs left `running` ending `interrupted` when the records open.

use super::*;
use crate::config::SandboxConfig;
use crate::engines::sandbox::{IndexedWorld, Sandbox, SandboxEngine};
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::sessions::{SessionPolicy, SessionRecord, SessionRegistry};

struct Harness {
    _dir: tempfile::TempDir,
    db: Database,
    sessions: Arc<SessionManager>,
    sink: EngineSink,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("b.redb")).unwrap();
    let bus = EventBus::new(1_000);
    let sink = EngineSink::new(bus.clone(), Arc::new(Metrics::new()));
    let engine = SandboxEngine::new(
        IndexedWorld::default(),
        sink.clone(),
        db.clone(),
        SandboxConfig::default(),
    );
    let sessions = SessionManager::new(
        SessionRegistry::load(db.clone()).unwrap(),
        Arc::new(Sandbox(engine)),
        bus,
        "gw-test".into(),
        SessionPolicy::default(),
    );
    sink.attach(&sessions);
    Harness {
        _dir: dir,
        db,
        sessions,
        sink,
    }
}

fn add_session(h: &Harness, id: &str, status: SessionStatus) {
    h.sessions
        .registry()
        .save(SessionRecord {
            id: id.into(),
            organization_id: "org_a".into(),
            label: None,
            status,
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
            created_by_user_id: "user_1".into(),
            created_at: 1,
            updated_at: 1,
            last_connected_at: None,
            want_running: false,
        })
        .unwrap();
}

#[tokio::test]
async fn one_job_at_a_time_per_session_and_only_for_working_sessions() {
    let h = harness();
    add_session(&h, "s1", SessionStatus::Working);
    add_session(&h, "s2", SessionStatus::Stopped);
    let b = Backfills::open(h.db.clone(), h.sessions.clone(), h.sink.clone()).unwrap();
    assert!(b.status("org_a", "s1").unwrap().is_none());

    let job = b
        .start(
            "org_a",
            "s1",
            &[BackfillScope::Groups, BackfillScope::Contacts],
            "user:root",
        )
        .unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(
        job.scope,
        vec![BackfillScope::Contacts, BackfillScope::Groups]
    );
    assert_eq!(job.requested_by, "user:root");
    assert_eq!(job.organization_id, "org_a");
    // The job's task has not run yet (this runtime has one thread): it is still running.
    match b.start("org_a", "s1", &[], "user:root") {
        Err(BackfillError::Running(id)) => assert_eq!(id, job.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.status("org_a", "s1").unwrap().unwrap().id, job.id);

    assert!(matches!(
        b.start("org_a", "s2", &[], "user:root"),
        Err(BackfillError::NotConnected(_))
    ));
    assert!(matches!(
        b.start("org_b", "s1", &[], "user:root"),
        Err(BackfillError::NotFound)
    ));
    assert!(matches!(
        b.status("org_b", "s1"),
        Err(BackfillError::NotFound)
    ));

    // The sandbox never connected s1: the job ends failed, and the session is free again.
    let mut last = job.clone();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        last = b.status("org_a", "s1").unwrap().unwrap();
        if last.status != JobStatus::Running {
            break;
        }
    }
    assert_eq!(last.status, JobStatus::Failed);
    assert!(last.error.as_deref().unwrap().contains("not connected"));
    assert!(last.finished_at.is_some());
    let again = b
        .start("org_a", "s1", &[BackfillScope::Chats], "user:root")
        .unwrap();
    assert_ne!(again.id, job.id);
    assert_eq!(b.purge_session("s1").unwrap(), 2);
}

#[tokio::test]
async fn jobs_left_running_end_interrupted_when_the_records_open() {
    let h = harness();
    add_session(&h, "s1", SessionStatus::Working);
    let b = Backfills::open(h.db.clone(), h.sessions.clone(), h.sink.clone()).unwrap();
    let job = b.start("org_a", "s1", &[], "user:root").unwrap();
    assert_eq!(job.scope, BackfillScope::ALL.to_vec());
    // A new process opens the same records before the job's task ever ran.
    let reopened = Backfills::open(h.db.clone(), h.sessions.clone(), h.sink.clone()).unwrap();
    let seen = reopened.status("org_a", "s1").unwrap().unwrap();
    assert_eq!(seen.id, job.id);
    assert_eq!(seen.status, JobStatus::Failed);
    assert_eq!(seen.error.as_deref(), Some(INTERRUPTED));
    assert!(seen.finished_at.is_some());
    assert_eq!(reopened.shut_down().unwrap(), 0);
}
