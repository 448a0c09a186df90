//! The session registry: every session's record, in memory for the per-request tenancy
//! check and in redb for durability.

use super::SessionRecord;
use crate::storage::{Database, ENGINE_KV, PLUGIN_KV, SESSIONS, Scope, ScopedKv, StorageError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub struct SessionRegistry {
    db: Database,
    sessions: RwLock<HashMap<String, Arc<SessionRecord>>>,
    /// Held by every write from the read it starts from to the record it publishes, so
    /// two writers (a lifecycle call and an engine event) never build on the same record
    /// and lose one another's change, and nothing writes back a removed session.
    writer: Mutex<()>,
}

/// A record as one update found it and as it left it.
pub struct Change {
    pub before: Arc<SessionRecord>,
    pub after: Arc<SessionRecord>,
}

impl SessionRegistry {
    pub fn load(db: Database) -> Result<SessionRegistry, StorageError> {
        let all: Vec<SessionRecord> = db.load_all(SESSIONS)?;
        let sessions = all
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        Ok(SessionRegistry {
            db,
            sessions: RwLock::new(sessions),
            writer: Mutex::new(()),
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<SessionRecord>> {
        self.sessions.read().expect("lock").get(id).cloned()
    }

    /// The session when it belongs to `organization`; another org's reads as absent.
    pub fn get_owned(&self, id: &str, organization: &str) -> Option<Arc<SessionRecord>> {
        self.get(id).filter(|s| s.organization_id == organization)
    }

    /// Sessions of one organization (or all), oldest first.
    pub fn list(&self, organization: Option<&str>) -> Vec<Arc<SessionRecord>> {
        let mut v: Vec<_> = self
            .sessions
            .read()
            .expect("lock")
            .values()
            .filter(|s| organization.is_none_or(|o| s.organization_id == o))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn count_by_status(&self) -> HashMap<super::SessionStatus, usize> {
        let mut m = HashMap::new();
        for s in self.sessions.read().expect("lock").values() {
            *m.entry(s.status).or_insert(0) += 1;
        }
        m
    }

    /// Stores a new or changed record durably, then publishes it in memory.
    pub fn save(&self, record: SessionRecord) -> Result<Arc<SessionRecord>, StorageError> {
        let _writer = self.writer.lock().expect("lock");
        self.store(record)
    }

    fn store(&self, record: SessionRecord) -> Result<Arc<SessionRecord>, StorageError> {
        self.db.put_json(SESSIONS, &record.id, &record)?;
        let rec = Arc::new(record);
        self.sessions
            .write()
            .expect("lock")
            .insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    /// Applies `change` to a stored record and saves it; `None` when the session is gone.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<Option<Arc<SessionRecord>>, StorageError> {
        Ok(self.change(id, change)?.map(|c| c.after))
    }

    /// [`update`](Self::update), telling what the record was: no other write comes between
    /// the read `change` sees and the save. A change that changes nothing saves nothing.
    pub fn change(
        &self,
        id: &str,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Result<Option<Change>, StorageError> {
        let _writer = self.writer.lock().expect("lock");
        let Some(before) = self.get(id) else {
            return Ok(None);
        };
        let mut next = (*before).clone();
        change(&mut next);
        if next == *before {
            let after = before.clone();
            return Ok(Some(Change { before, after }));
        }
        next.updated_at = crate::clock::now_ms();
        let after = self.store(next)?;
        Ok(Some(Change { before, after }))
    }

    /// Removes the record and everything stored for the session: every plugin's data and
    /// the engine's state.
    pub fn remove(&self, id: &str) -> Result<bool, StorageError> {
        let scope = Scope::Session(id.to_owned());
        let org = self.get(id).map(|s| s.organization_id.clone());
        let plugin_rows = ScopedKv::purge_scope(&self.db, PLUGIN_KV, &scope, org.as_deref())?;
        let engine_rows = ScopedKv::purge_scope(&self.db, ENGINE_KV, &scope, None)?;
        let existed = {
            let _writer = self.writer.lock().expect("lock");
            let txn = self.db.redb().begin_write()?;
            let existed = txn.open_table(SESSIONS)?.remove(id)?.is_some();
            self.db.commit(txn)?;
            self.sessions.write().expect("lock").remove(id);
            existed
        };
        tracing::info!(
            session = id,
            plugin_rows,
            engine_rows,
            "session data removed"
        );
        Ok(existed)
    }
}
