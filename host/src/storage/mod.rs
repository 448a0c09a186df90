//! The embedded database (redb): one file in the data directory holding API keys, sessions,
//! plugin data and engine state. Every write commits durably before it returns.

mod scoped;

pub use scoped::{KvReader, Rows, ScanRange, Scope, ScopedKv};

use redb::{Database as Redb, ReadableDatabase, ReadableTable, TableDefinition};
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

/// The open database, shared by every part of the host.
#[derive(Clone)]
pub struct Database {
    db: Arc<Redb>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

impl Database {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: &Path) -> Result<Database, StorageError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let db = Redb::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StorageError::Locked(path.display().to_string())
            }
            other => StorageError::Database(other.into()),
        })?;
        let txn = db.begin_write()?;
        {
            txn.open_table(API_KEYS)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(PLUGIN_KV)?;
            txn.open_table(ENGINE_KV)?;
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
        txn.commit()?;
        Ok(Database { db: Arc::new(db) })
    }

    pub(crate) fn redb(&self) -> &Redb {
        &self.db
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
        txn.commit()?;
        Ok(())
    }

    /// Writes several rows of a string-keyed JSON table in one transaction.
    pub(crate) fn put_json_many<T: serde::Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        rows: &[(String, T)],
    ) -> Result<(), StorageError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(table)?;
            for (k, v) in rows {
                let bytes =
                    serde_json::to_vec(v).map_err(|e| StorageError::Invalid(e.to_string()))?;
                t.insert(k.as_str(), bytes.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Whether the database answers a read (for `/readyz`).
    pub fn is_healthy(&self) -> bool {
        self.db
            .begin_read()
            .map(|t| t.open_table(META).is_ok())
            .unwrap_or(false)
    }
}
