//! The embedded database (redb): one file in the data directory holding API keys, sessions,
//! plugin data and engine state. Every write commits durably before it returns.

mod commit;
mod scoped;
mod snapshot;
mod usage;

pub use commit::Committer;
pub use scoped::{KvReader, OrgUsage, Rows, ScanRange, Scope, ScopedKv};
pub use usage::stored_bytes;

use redb::{Database as Redb, ReadableDatabase, ReadableTable, TableDefinition};
use snapshot::Snapshots;
use std::path::Path;
use std::sync::Arc;

/// `id` → API key record (JSON).
pub(crate) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// `id` → session record (JSON).
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Scoped plugin data; see [`ScopedKv`] for the key layout.
pub(crate) const PLUGIN_KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("plugin_kv");
/// Scoped engine state (device keys, Signal sessions…), same layout as plugin data.
pub(crate) const ENGINE_KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("engine_kv");
/// Organization id → bytes of plugin data it stores (keys and values), kept in step with
/// every plugin write in the same transaction.
pub(crate) const USAGE: TableDefinition<&str, u64> = TableDefinition::new("org_usage");
/// `{session}/{job id}` → admin backfill job (JSON), see `crate::backfill`.
pub(crate) const BACKFILL_JOBS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("backfill_jobs");
/// Schema and bookkeeping values.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const SCHEMA_VERSION: &[u8] = b"1";

/// Database failures. Callers turn them into 500 `internal` without leaking details.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the database in {0} is in use by another gateway process")]
    Locked(String),
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    /// An organization quota would be exceeded.
    #[error("{0}")]
    Quota(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Creates a directory (and missing parents) readable by this user only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes a file readable and writable by this user only.
fn make_private(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// The open database, shared by every part of the host.
#[derive(Clone)]
pub struct Database {
    db: Arc<Redb>,
    committer: Committer,
    snapshots: Arc<Snapshots>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

impl Database {
    /// Opens (creating if needed) the database file and its tables. The file holds every
    /// tenant's WhatsApp device keys: it is readable by the gateway's user only (0600), in
    /// a directory created for that user only (0700).
    pub fn open(path: &Path) -> Result<Database, StorageError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|e| {
                StorageError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let db = Redb::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StorageError::Locked(path.display().to_string())
            }
            other => StorageError::Database(other.into()),
        })?;
        make_private(path).map_err(|e| {
            StorageError::Invalid(format!("cannot restrict {}: {e}", path.display()))
        })?;
        let txn = db.begin_write()?;
        {
            txn.open_table(API_KEYS)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(PLUGIN_KV)?;
            txn.open_table(ENGINE_KV)?;
            txn.open_table(USAGE)?;
            txn.open_table(BACKFILL_JOBS)?;
            let mut meta = txn.open_table(META)?;
            let existing: Option<Vec<u8>> = meta.get("schema")?.map(|v| v.value().to_vec());
            match existing {
                None => {
                    meta.insert("schema", SCHEMA_VERSION)?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(v) => {
                    return Err(StorageError::Invalid(format!(
                        "database schema {} is not supported by this gateway (expects {})",
                        String::from_utf8_lossy(&v),
                        String::from_utf8_lossy(SCHEMA_VERSION)
                    )));
                }
            }
        }
        let snapshots = Arc::new(Snapshots::new(&[PLUGIN_KV, ENGINE_KV]));
        snapshots.commit(txn)?;
        let db = Arc::new(db);
        let db = Database {
            committer: Committer::start(db.clone(), snapshots.clone()),
            db,
            snapshots,
        };
        usage::count_if_missing(&db)?;
        Ok(db)
    }

    pub(crate) fn redb(&self) -> &Redb {
        &self.db
    }

    /// Commits `txn` durably: every write transaction ends here (see [`Snapshots`]).
    pub(crate) fn commit(&self, txn: redb::WriteTransaction) -> Result<(), StorageError> {
        Ok(self.snapshots.commit(txn)?)
    }

    /// A read snapshot of a key-value table holding every commit answered so far, shared
    /// with the other reads made before the next commit.
    pub(crate) fn kv_snapshot(
        &self,
        table: TableDefinition<'static, &'static [u8], &'static [u8]>,
    ) -> Result<Arc<snapshot::KvTable>, StorageError> {
        self.snapshots.table(&self.db, table)
    }

    /// Durable writes that share transactions with concurrent ones (group commit).
    pub fn committer(&self) -> &Committer {
        &self.committer
    }

    /// Reads every row of a string-keyed JSON table.
    pub(crate) fn load_all<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StorageError> {
        use redb::ReadableTable;
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let rec = serde_json::from_slice(v.value())
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", k.value())))?;
            out.push(rec);
        }
        Ok(out)
    }

    /// Writes one row of a string-keyed JSON table.
    pub(crate) fn put_json<T: serde::Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageError::Invalid(e.to_string()))?;
        let txn = self.db.begin_write()?;
        txn.open_table(table)?.insert(key, bytes.as_slice())?;
        self.commit(txn)?;
        Ok(())
    }

    /// Changes stored rows of a string-keyed JSON table in one transaction, each read and
    /// written back inside it, so a concurrent writer's change to another field is never
    /// overwritten by a stale copy. Rows that do not exist are skipped.
    pub(crate) fn update_json<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        keys: &[String],
        mut change: impl FnMut(&str, &mut T),
    ) -> Result<usize, StorageError> {
        let txn = self.db.begin_write()?;
        let mut updated = 0;
        {
            let mut t = txn.open_table(table)?;
            for k in keys {
                let Some(stored) = t.get(k.as_str())?.map(|v| v.value().to_vec()) else {
                    continue;
                };
                let mut row: T = serde_json::from_slice(&stored)
                    .map_err(|e| StorageError::Corrupt(format!("{k}: {e}")))?;
                change(k, &mut row);
                let bytes =
                    serde_json::to_vec(&row).map_err(|e| StorageError::Invalid(e.to_string()))?;
                t.insert(k.as_str(), bytes.as_slice())?;
                updated += 1;
            }
        }
        self.commit(txn)?;
        Ok(updated)
    }

    /// Whether the database answers a read (for `/readyz`).
    pub fn is_healthy(&self) -> bool {
        self.db
            .begin_read()
            .map(|t| t.open_table(META).is_ok())
            .unwrap_or(false)
    }
}

#[cfg(all(test, unix))]
mod tests {
    //! The database's file permissions.

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_database_and_a_new_data_directory_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let path = data.join("gateway.redb");
        drop(Database::open(&path).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data), 0o700);
        // An existing file with loose permissions is tightened on open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Database::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
    }
}
