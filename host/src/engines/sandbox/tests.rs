//! The sandbox engine's own state: a block list larger than any one scan is forgotten
//! whole when the device is unlinked or logged out, and only that session's.

use super::*;
use crate::engines::Engine;

fn engine() -> (tempfile::TempDir, Arc<SandboxEngine>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("s.redb")).unwrap();
    let sink = EngineSink::new(
        crate::events::EventBus::new(100),
        Arc::new(crate::metrics::Metrics::new()),
    );
    let e = SandboxEngine::new(IndexedWorld::default(), sink, db, SandboxConfig::default());
    (dir, e)
}

fn block_many(e: &SandboxEngine, session: &str, n: u32) {
    let ops: Vec<_> = (0..n)
        .map(|i| {
            let jid = Jid::parse(&format!("{}@lid", 100_000 + i)).unwrap();
            (blocked_key(&jid), Some(b"1".to_vec()))
        })
        .collect();
    e.kv.write(&SandboxEngine::scope(session), &ops).unwrap();
}

#[tokio::test]
async fn logout_forgets_a_block_list_larger_than_one_scan() {
    let (_d, e) = engine();
    let account = e.make_account("S1", None, None);
    e.save_account("S1", &account).unwrap();
    block_many(&e, "S1", 2500);
    block_many(&e, "S2", 3);
    assert_eq!(e.blocked("S1").unwrap().len(), 2500);
    Sandbox(e.clone()).logout("S1").await.unwrap();
    assert!(e.blocked("S1").unwrap().is_empty());
    assert!(e.account("S1").unwrap().is_none());
    assert_eq!(e.blocked("S2").unwrap().len(), 3);
}
