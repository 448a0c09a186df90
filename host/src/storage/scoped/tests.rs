//! Unit tests of scoped storage: isolation between owners and scopes, scans, atomic writes.

use super::*;
use crate::storage::{Database, PLUGIN_KV};

fn kv(db: &Database, owner: &str) -> ScopedKv {
    ScopedKv::new(db.clone(), PLUGIN_KV, owner)
}

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("t.redb")).unwrap();
    (dir, db)
}

#[test]
fn owners_and_scopes_are_disjoint() {
    let (_d, db) = open();
    let a = kv(&db, "notes");
    let b = kv(&db, "other");
    let s1 = Scope::Session("S1".into());
    let s2 = Scope::Session("S2".into());
    a.put(&s1, b"k", b"a-s1").unwrap();
    a.put(&s2, b"k", b"a-s2").unwrap();
    b.put(&s1, b"k", b"b-s1").unwrap();
    assert_eq!(a.get(&s1, b"k").unwrap().unwrap(), b"a-s1");
    assert_eq!(a.get(&s2, b"k").unwrap().unwrap(), b"a-s2");
    assert_eq!(b.get(&s1, b"k").unwrap().unwrap(), b"b-s1");
    assert_eq!(b.get(&s2, b"k").unwrap(), None);
    let org = Scope::Organization("S1".into());
    assert_eq!(a.get(&org, b"k").unwrap(), None);
    let all = a
        .scan(
            &s1,
            &ScanRange {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(all, vec![(b"k".to_vec(), b"a-s1".to_vec())]);
}

#[test]
fn scans_respect_prefix_bounds_limit_and_order() {
    let (_d, db) = open();
    let a = kv(&db, "p");
    let s = Scope::Session("S".into());
    for i in 0..10u8 {
        a.put(&s, &[b'x', i], &[i]).unwrap();
    }
    a.put(&s, b"y", b"-").unwrap();
    let keys = |r: &ScanRange| -> Vec<u8> {
        a.scan(&s, r)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k[1])
            .collect()
    };
    let base = ScanRange {
        prefix: b"x".to_vec(),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(keys(&base), (0..10).collect::<Vec<_>>());
    let after3 = ScanRange {
        start: Some(Bound::Excluded(vec![b'x', 3])),
        limit: 2,
        ..base.clone()
    };
    assert_eq!(keys(&after3), vec![4, 5]);
    let rev = ScanRange {
        reverse: true,
        end: Some(Bound::Excluded(vec![b'x', 7])),
        limit: 3,
        ..base.clone()
    };
    assert_eq!(keys(&rev), vec![6, 5, 4]);
    // A start bound outside the prefix cannot widen the scan.
    let wide = ScanRange {
        start: Some(Bound::Included(vec![])),
        ..base.clone()
    };
    assert_eq!(keys(&wide).len(), 10);
    // The packed form carries the same rows, in the same order, bounds and limit.
    let reader = a.reader().unwrap();
    for r in [&base, &after3, &rev] {
        let rows = a.scan_in(&reader, &s, r).unwrap();
        let packed = a.scan_packed_in(&reader, &s, r).unwrap();
        let unpacked: Vec<(Vec<u8>, Vec<u8>)> = gateway_sdk::packed::entries(&packed)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(unpacked, rows);
    }
}

#[test]
fn batch_is_atomic_and_purge_removes_a_session_for_every_owner() {
    let (_d, db) = open();
    let a = kv(&db, "a");
    let b = kv(&db, "b");
    let s = Scope::Session("S".into());
    let keep = Scope::Session("T".into());
    let existed = a
        .write(
            &s,
            &[
                (b"1".to_vec(), Some(b"x".to_vec())),
                (b"2".to_vec(), Some(b"y".to_vec())),
                (b"1".to_vec(), None),
            ],
        )
        .unwrap();
    assert_eq!(existed, vec![false, false, true]);
    b.put(&s, b"z", b"z").unwrap();
    a.put(&keep, b"1", b"kept").unwrap();
    // An invalid key fails the whole batch.
    assert!(
        a.write(
            &s,
            &[(b"3".to_vec(), Some(b"x".to_vec())), (Vec::new(), None)]
        )
        .is_err()
    );
    assert_eq!(a.get(&s, b"3").unwrap(), None);
    let removed = ScopedKv::purge_scope(&db, PLUGIN_KV, &s, None).unwrap();
    assert_eq!(removed, 2);
    assert_eq!(a.get(&s, b"2").unwrap(), None);
    assert_eq!(b.get(&s, b"z").unwrap(), None);
    assert_eq!(a.get(&keep, b"1").unwrap().unwrap(), b"kept");
}

#[test]
fn purge_removes_every_row_of_one_owner_beyond_any_scan_limit() {
    let (_d, db) = open();
    let engine = ScopedKv::new(db.clone(), crate::storage::ENGINE_KV, "sandbox");
    let other = ScopedKv::new(db.clone(), crate::storage::ENGINE_KV, "whatsapp");
    let s = Scope::Session("S".into());
    let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..2500u32)
        .map(|i| (format!("blocked/{i:05}").into_bytes(), Some(b"1".to_vec())))
        .collect();
    engine.write(&s, &rows).unwrap();
    other.put(&s, b"device", b"keys").unwrap();
    engine
        .put(&Scope::Session("T".into()), b"account", b"x")
        .unwrap();
    assert_eq!(engine.scan_all(&s, b"blocked/").unwrap().len(), 2500);
    assert_eq!(engine.purge(&s).unwrap(), 2500);
    assert!(engine.scan_all(&s, b"").unwrap().is_empty());
    // Another owner's rows in the scope, and the owner's rows in another scope, stay.
    assert_eq!(other.get(&s, b"device").unwrap().unwrap(), b"keys");
    assert!(
        engine
            .get(&Scope::Session("T".into()), b"account")
            .unwrap()
            .is_some()
    );
}

#[test]
fn scans_over_their_byte_budget_are_refused_before_holding_the_rows() {
    let (_d, db) = open();
    let a = kv(&db, "p");
    let s = Scope::Session("S".into());
    for i in 0..8u8 {
        a.put(&s, &[b'v', i], &vec![i; 1000]).unwrap();
    }
    let range = |max_bytes| ScanRange {
        limit: 100,
        max_bytes,
        ..Default::default()
    };
    assert_eq!(a.scan(&s, &range(Some(100_000))).unwrap().len(), 8);
    let err = a.scan(&s, &range(Some(3_000))).unwrap_err();
    assert!(matches!(err, StorageError::Invalid(m) if m == SCAN_TOO_LARGE));
    assert_eq!(a.scan(&s, &range(None)).unwrap().len(), 8);
}

#[test]
fn stored_bytes_follow_writes_and_purges_and_the_quota_refuses_growth_only() {
    let (_d, db) = open();
    let a = kv(&db, "notes");
    let s = Scope::Session("S".into());
    let capped = OrgUsage {
        organization: "org_q",
        limit: Some(100),
    };
    a.write_accounted(&s, &[(b"k1".to_vec(), Some(vec![0; 40]))], Some(&capped))
        .unwrap();
    let one = crate::storage::stored_bytes(&db, "org_q").unwrap();
    assert!(one > 40, "{one}");
    // Over the cap: refused whole, nothing written.
    let err = a
        .write_accounted(
            &s,
            &[
                (b"k2".to_vec(), Some(vec![0; 10])),
                (b"k3".to_vec(), Some(vec![0; 60])),
            ],
            Some(&capped),
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::Quota(_)));
    assert!(a.get(&s, b"k2").unwrap().is_none());
    // Replacing a value with a smaller one, and deleting, always pass and free bytes.
    a.write_accounted(&s, &[(b"k1".to_vec(), Some(vec![0; 5]))], Some(&capped))
        .unwrap();
    assert_eq!(
        crate::storage::stored_bytes(&db, "org_q").unwrap(),
        one - 35
    );
    ScopedKv::purge_scope(&db, PLUGIN_KV, &s, Some("org_q")).unwrap();
    assert_eq!(crate::storage::stored_bytes(&db, "org_q").unwrap(), 0);
}
