//! Unit tests of the redb `Backend`: every store trait, and reopening the database.

use super::*;

fn backend() -> (tempfile::TempDir, Database, RedbBackend) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("s.redb")).unwrap();
    let b = RedbBackend::new(db.clone(), "S1");
    (dir, db, b)
}

#[tokio::test]
async fn signal_rows_round_trip_and_are_scoped() {
    let (_d, db, b) = backend();
    b.put_identity("1@s.whatsapp.net", [7; 32]).await.unwrap();
    b.put_session("1:2@s.whatsapp.net", b"sess").await.unwrap();
    assert_eq!(
        b.load_identity("1@s.whatsapp.net").await.unwrap(),
        Some([7; 32])
    );
    assert!(b.has_session("1:2@s.whatsapp.net").await.unwrap());
    assert!(b.has_signal_state_for_user("1").await.unwrap());
    assert!(!b.has_signal_state_for_user("12").await.unwrap());
    let other = RedbBackend::new(db.clone(), "S2");
    assert_eq!(other.load_identity("1@s.whatsapp.net").await.unwrap(), None);

    b.store_prekeys_batch(
        &[
            (3, Bytes::from_static(b"a")),
            (300, Bytes::from_static(b"b")),
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 300);
    assert_eq!(b.load_prekeys_batch(&[3, 4, 300]).await.unwrap().len(), 2);
    b.remove_prekey(300).await.unwrap();
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 3);
}

#[tokio::test]
async fn lid_mappings_keep_the_reverse_index_consistent() {
    let (_d, _db, b) = backend();
    let e = |lid: &str, pn: &str| LidPnMappingEntry {
        lid: lid.into(),
        phone_number: pn.into(),
        created_at: 1,
        updated_at: 1,
        learning_source: "test".into(),
    };
    b.put_lid_mapping(&e("100", "555")).await.unwrap();
    b.put_lid_mapping(&e("100", "777")).await.unwrap();
    assert!(b.get_pn_mapping("555").await.unwrap().is_none());
    assert_eq!(b.get_pn_mapping("777").await.unwrap().unwrap().lid, "100");
    assert_eq!(b.get_all_lid_mappings().await.unwrap().len(), 1);
}

/// Opens the database again once the previous handle has let go of it.
async fn reopen(path: &std::path::Path) -> Database {
    for _ in 0..100 {
        match Database::open(path) {
            Err(crate::storage::StorageError::Locked(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other.unwrap(),
        }
    }
    panic!("{} stayed locked", path.display());
}

#[tokio::test]
async fn device_survives_reopen_and_wipe_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let db = Database::open(&path).unwrap();
        let b = RedbBackend::new(db, "S1");
        assert!(!b.exists().await.unwrap());
        b.create().await.unwrap();
        assert!(b.exists().await.unwrap());
        b.set_sender_key_status("g@g.us", &[("a:1@lid", true), ("b:2@lid", false)])
            .await
            .unwrap();
    }
    // The first handle's commit thread lets go of the file just after it is dropped.
    let db = reopen(&path).await;
    let b = RedbBackend::new(db.clone(), "S1");
    assert!(b.load().await.unwrap().is_some());
    let mut devs = b.get_sender_key_devices("g@g.us").await.unwrap();
    devs.sort();
    assert_eq!(
        devs,
        vec![("a:1@lid".to_owned(), true), ("b:2@lid".to_owned(), false)]
    );
    b.delete_sender_key_device_rows(&["a:1@lid"]).await.unwrap();
    assert_eq!(b.get_sender_key_devices("g@g.us").await.unwrap().len(), 1);
    RedbBackend::wipe(&db, "S1").unwrap();
    assert!(!b.exists().await.unwrap());
}
