//! Shared read snapshots of the key-value tables. Opening a redb read transaction and its
//! table takes the transaction tracker's lock and a walk of the table tree, which was a
//! tenth of a plugin read's cost when every call opened its own. The newest snapshot of a
//! table is kept and handed to every read that starts before the next commit; every
//! commit goes through [`Snapshots::commit`], which retires it. So a read never misses a
//! write that was answered before the read started, and a kept snapshot never outlives
//! the next commit (a live snapshot stops redb from reusing the pages later commits free).

use super::StorageError;
use arc_swap::ArcSwapOption;
use redb::{Database as Redb, ReadableDatabase, TableDefinition, TableHandle, WriteTransaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A read-only view of a key-value table as of one commit.
pub(crate) type KvTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

type KvDefinition = TableDefinition<'static, &'static [u8], &'static [u8]>;

struct Kept {
    /// The commit count when the snapshot was taken: it serves only while that holds.
    generation: u64,
    table: Arc<KvTable>,
}

/// The kept snapshots of one database, and its commit count.
pub(crate) struct Snapshots {
    generation: AtomicU64,
    kept: Vec<(String, ArcSwapOption<Kept>)>,
}

impl Snapshots {
    /// Keeps snapshots of `tables`; reads of any other table open their own.
    pub(crate) fn new(tables: &[KvDefinition]) -> Self {
        Snapshots {
            generation: AtomicU64::new(0),
            kept: tables
                .iter()
                .map(|t| (t.name().to_owned(), ArcSwapOption::empty()))
                .collect(),
        }
    }

    /// A snapshot of `table` holding every commit that finished before this call.
    pub(crate) fn table(
        &self,
        db: &Redb,
        table: KvDefinition,
    ) -> Result<Arc<KvTable>, StorageError> {
        let open = || -> Result<Arc<KvTable>, StorageError> {
            Ok(Arc::new(db.begin_read()?.open_table(table)?))
        };
        let Some((_, slot)) = self.kept.iter().find(|(name, _)| name == table.name()) else {
            return open();
        };
        // Read the count before opening: a commit that lands in between makes the kept
        // snapshot look older than it is (reopened once more), never newer.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(kept) = &*slot.load()
            && kept.generation == generation
        {
            return Ok(kept.table.clone());
        }
        let fresh = open()?;
        slot.store(Some(Arc::new(Kept {
            generation,
            table: fresh.clone(),
        })));
        Ok(fresh)
    }

    /// Commits `txn` durably and retires the kept snapshots: the one way this crate
    /// commits (`clippy.toml` refuses `WriteTransaction::commit` elsewhere).
    pub(crate) fn commit(&self, txn: WriteTransaction) -> Result<(), redb::CommitError> {
        #[allow(clippy::disallowed_methods)]
        txn.commit()?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        for (_, slot) in &self.kept {
            slot.store(None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: KvDefinition = TableDefinition::new("t");
    const OTHER: KvDefinition = TableDefinition::new("other");

    fn put(db: &Redb, snapshots: &Snapshots, table: KvDefinition, k: &[u8], v: &[u8]) {
        let txn = db.begin_write().unwrap();
        txn.open_table(table).unwrap().insert(k, v).unwrap();
        snapshots.commit(txn).unwrap();
    }

    /// A database whose kept table `T` holds `k` = `1`.
    fn database_with_k1() -> (tempfile::TempDir, Redb, Snapshots) {
        let dir = tempfile::tempdir().unwrap();
        let db = Redb::create(dir.path().join("db")).unwrap();
        let snapshots = Snapshots::new(&[T]);
        put(&db, &snapshots, T, b"k", b"1");
        (dir, db, snapshots)
    }

    fn value(table: &KvTable, k: &[u8]) -> Option<Vec<u8>> {
        table.get(k).unwrap().map(|v| v.value().to_vec())
    }

    #[test]
    fn reads_share_a_snapshot_until_a_commit_and_then_see_it() {
        let (_dir, db, snapshots) = database_with_k1();
        put(&db, &snapshots, OTHER, b"k", b"x");

        let first = snapshots.table(&db, T).unwrap();
        let second = snapshots.table(&db, T).unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "no commit between: one snapshot"
        );
        assert_eq!(value(&second, b"k").as_deref(), Some(&b"1"[..]));

        put(&db, &snapshots, T, b"k", b"2");
        let third = snapshots.table(&db, T).unwrap();
        assert!(!Arc::ptr_eq(&second, &third));
        assert_eq!(value(&third, b"k").as_deref(), Some(&b"2"[..]));
        // The older snapshot still reads as of its commit.
        assert_eq!(value(&first, b"k").as_deref(), Some(&b"1"[..]));

        // A table that is not kept opens its own snapshot each time, fresh.
        let a = snapshots.table(&db, OTHER).unwrap();
        let b = snapshots.table(&db, OTHER).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(value(&b, b"k").as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn a_commit_to_any_table_lets_go_of_the_kept_snapshot() {
        let (_dir, db, snapshots) = database_with_k1();
        let kept = snapshots.table(&db, T).unwrap();
        assert_eq!(Arc::strong_count(&kept), 2, "held here and kept");
        put(&db, &snapshots, OTHER, b"k", b"x");
        assert_eq!(
            Arc::strong_count(&kept),
            1,
            "no longer kept after the commit"
        );
    }
}
