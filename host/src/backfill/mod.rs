//! Admin backfills (API.md §8): a platform admin has the engine re-read a session's
//! contacts, groups and chats, and the job publishes what it reads as ordinary events
//! (`contacts.upsert`, `groups.upsert`, `chats.upsert` and `chats.update`) through the
//! engine's own path, so every subscribing plugin's store heals. One job runs at a time
//! per session; job state is durable in redb, and a job still `running` when the gateway
//! stops (or is found so at start-up) ends `failed` with error `interrupted`.

#[cfg(test)]
mod tests;

use crate::clock::now_ms;
use crate::engines::{ChatSettings, ChatSnapshot, EngineError, EngineEvent, EngineSink};
use crate::sessions::{SessionManager, SessionStatus};
use crate::storage::{BACKFILL_JOBS, Database, StorageError};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Items per published event, as the engines' own syncs come in chunks.
const CHUNK: usize = 200;

/// The error a job still running at shutdown or start-up ends with.
pub const INTERRUPTED: &str = "interrupted";

/// What a backfill re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackfillScope {
    Contacts,
    Groups,
    Chats,
}

impl BackfillScope {
    /// Every scope, in the order a job reads them (the default scope).
    pub const ALL: [BackfillScope; 3] = [
        BackfillScope::Contacts,
        BackfillScope::Groups,
        BackfillScope::Chats,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }
}

/// One backfill of a session, as stored and as answered (API.md §8 BackfillJob).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillJob {
    pub id: String,
    pub session_id: String,
    pub organization_id: String,
    pub status: JobStatus,
    pub scope: Vec<BackfillScope>,
    pub contacts: u32,
    pub groups: u32,
    pub group_members: u32,
    pub chats: u32,
    pub started_at: u64,
    pub finished_at: Option<u64>,
    pub error: Option<String>,
    /// The principal that started it (`user:<sub>`).
    pub requested_by: String,
}

impl BackfillJob {
    fn finish(&mut self, error: Option<String>) {
        self.status = if error.is_some() {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        self.error = error;
        self.finished_at = Some(now_ms());
    }
}

/// Why a backfill could not start or be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackfillError {
    #[error("session not found")]
    NotFound,
    #[error("backfill {0} is still running")]
    Running(String),
    #[error("session is not connected: {0}")]
    NotConnected(String),
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StorageError> for BackfillError {
    fn from(e: StorageError) -> Self {
        BackfillError::Storage(e.to_string())
    }
}

/// The backfill jobs of every session: their durable records and the ones running now.
#[derive(Clone)]
pub struct Backfills {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    sessions: Arc<SessionManager>,
    sink: EngineSink,
    /// Sessions with a job running in this process.
    running: Mutex<HashSet<String>>,
    /// Set at shutdown: jobs still running were recorded `interrupted` and must not
    /// overwrite that with what their cut-off reads produce.
    closed: AtomicBool,
}

/// The row key of a job: jobs of one session sort together, oldest first (ULIDs).
fn key(session: &str, job: &str) -> String {
    format!("{session}/{job}")
}

impl Backfills {
    /// Opens the job records; jobs a previous run left `running` end `failed`/`interrupted`.
    pub fn open(
        db: Database,
        sessions: Arc<SessionManager>,
        sink: EngineSink,
    ) -> Result<Backfills, StorageError> {
        let b = Backfills {
            inner: Arc::new(Inner {
                db,
                sessions,
                sink,
                running: Mutex::new(HashSet::new()),
                closed: AtomicBool::new(false),
            }),
        };
        let interrupted = b.interrupt_all()?;
        if interrupted > 0 {
            tracing::warn!(
                jobs = interrupted,
                "backfills left running by the last run marked interrupted"
            );
        }
        Ok(b)
    }

    /// At shutdown: no job records anything more, and those still running end
    /// `failed`/`interrupted`. Answers how many there were.
    pub fn shut_down(&self) -> Result<usize, StorageError> {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.interrupt_all()
    }

    /// Marks every job recorded as `running` failed with error `interrupted` (at
    /// start-up, for a run that ended without a shutdown). Answers how many there were.
    fn interrupt_all(&self) -> Result<usize, StorageError> {
        let keys: Vec<String> = self
            .inner
            .db
            .load_all::<BackfillJob>(BACKFILL_JOBS)?
            .into_iter()
            .filter(|j| j.status == JobStatus::Running)
            .map(|j| key(&j.session_id, &j.id))
            .collect();
        self.inner
            .db
            .update_json(BACKFILL_JOBS, &keys, |_, job: &mut BackfillJob| {
                if job.status == JobStatus::Running {
                    job.finish(Some(INTERRUPTED.into()));
                }
            })
    }

    /// Starts a backfill of a session of `organization` over `scope` (empty = all), in the
    /// background; answers the job as recorded at its start.
    pub fn start(
        &self,
        organization: &str,
        session: &str,
        scope: &[BackfillScope],
        requested_by: &str,
    ) -> Result<BackfillJob, BackfillError> {
        let record = self
            .inner
            .sessions
            .registry()
            .get_owned(session, organization)
            .ok_or(BackfillError::NotFound)?;
        if record.status != SessionStatus::Working {
            return Err(BackfillError::NotConnected(format!(
                "the session is {}",
                record.status.as_str()
            )));
        }
        let mut scope: Vec<BackfillScope> = if scope.is_empty() {
            BackfillScope::ALL.to_vec()
        } else {
            scope.to_vec()
        };
        scope.sort();
        scope.dedup();
        let mut running = self.inner.running.lock().expect("lock");
        if running.contains(session) {
            let id = self
                .latest(session)?
                .map(|j| j.id)
                .unwrap_or_else(|| "unknown".into());
            return Err(BackfillError::Running(id));
        }
        let job = BackfillJob {
            id: ulid::Ulid::generate().to_string(),
            session_id: session.to_owned(),
            organization_id: record.organization_id.clone(),
            status: JobStatus::Running,
            scope,
            contacts: 0,
            groups: 0,
            group_members: 0,
            chats: 0,
            started_at: now_ms(),
            finished_at: None,
            error: None,
            requested_by: requested_by.to_owned(),
        };
        self.inner.save(&job)?;
        running.insert(session.to_owned());
        drop(running);
        tracing::info!(
            session,
            organization = %job.organization_id,
            job = %job.id,
            requested_by,
            scope = ?job.scope,
            "backfill started"
        );
        crate::background::spawn(self.inner.clone().run(job.clone()));
        Ok(job)
    }

    /// The session's running job, else its last one; `None` when it never had one.
    pub fn status(
        &self,
        organization: &str,
        session: &str,
    ) -> Result<Option<BackfillJob>, BackfillError> {
        self.inner
            .sessions
            .registry()
            .get_owned(session, organization)
            .ok_or(BackfillError::NotFound)?;
        Ok(self.latest(session)?)
    }

    fn latest(&self, session: &str) -> Result<Option<BackfillJob>, StorageError> {
        self.inner.latest(session)
    }

    /// Removes a deleted session's job records.
    pub fn purge_session(&self, session: &str) -> Result<usize, StorageError> {
        let prefix = key(session, "");
        let txn = self.inner.db.redb().begin_write()?;
        let removed = {
            let mut t = txn.open_table(BACKFILL_JOBS)?;
            let keys: Vec<String> = t
                .range(prefix.as_str()..)?
                .map_while(|row| {
                    let (k, _) = row.ok()?;
                    let k = k.value().to_owned();
                    k.starts_with(&prefix).then_some(k)
                })
                .collect();
            for k in &keys {
                t.remove(k.as_str())?;
            }
            keys.len()
        };
        self.inner.db.commit(txn)?;
        Ok(removed)
    }
}

impl Inner {
    /// Records a job's progress, unless the gateway is shutting down or the session was
    /// deleted meanwhile (its records went with it).
    fn save(&self, job: &BackfillJob) -> Result<(), StorageError> {
        if self.closed.load(Ordering::SeqCst)
            || self.sessions.registry().get(&job.session_id).is_none()
        {
            return Ok(());
        }
        self.db
            .put_json(BACKFILL_JOBS, &key(&job.session_id, &job.id), job)
    }

    fn latest(&self, session: &str) -> Result<Option<BackfillJob>, StorageError> {
        use redb::ReadableDatabase;
        let prefix = key(session, "");
        let txn = self.db.redb().begin_read()?;
        let t = txn.open_table(BACKFILL_JOBS)?;
        let end = key(session, "\u{10FFFF}");
        let Some(row) = t.range(prefix.as_str()..end.as_str())?.next_back() else {
            return Ok(None);
        };
        let (k, v) = row?;
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", k.value())))
    }

    /// Runs a job to its end, saving its counts after each scope.
    async fn run(self: Arc<Self>, mut job: BackfillJob) {
        let outcome = self.read_all(&mut job).await;
        job.finish(outcome.err().map(|e| e.to_string()));
        match self.save(&job) {
            Ok(()) => tracing::info!(
                session = %job.session_id,
                job = %job.id,
                status = job.status.as_str(),
                contacts = job.contacts,
                groups = job.groups,
                group_members = job.group_members,
                chats = job.chats,
                error = job.error.as_deref().unwrap_or("-"),
                "backfill finished"
            ),
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "cannot record a finished backfill")
            }
        }
        self.running.lock().expect("lock").remove(&job.session_id);
    }

    async fn read_all(&self, job: &mut BackfillJob) -> Result<(), EngineError> {
        let engine = self.sessions.engine().clone();
        let session = job.session_id.clone();
        for scope in job.scope.clone() {
            match scope {
                BackfillScope::Contacts => {
                    let contacts = engine.backfill_contacts(&session).await?;
                    for chunk in contacts.chunks(CHUNK) {
                        self.publish(
                            &session,
                            "contacts.upsert",
                            json!({"source": "backfill", "contacts": chunk}),
                        )
                        .await;
                    }
                    job.contacts = count(contacts.len());
                }
                BackfillScope::Groups => {
                    let groups = engine.backfill_groups(&session).await?;
                    for g in &groups {
                        self.publish(&session, "groups.upsert", json!({"groups": [g]}))
                            .await;
                    }
                    job.groups = count(groups.len());
                    job.group_members = count(groups.iter().map(|g| g.participants.len()).sum());
                }
                BackfillScope::Chats => {
                    let chats = engine.backfill_chats(&session).await?;
                    let list: Vec<Value> = chats
                        .iter()
                        .map(|c| json!({"jid": c.jid, "lid": c.lid}))
                        .collect();
                    for chunk in list.chunks(CHUNK) {
                        self.publish(&session, "chats.upsert", json!({"chats": chunk}))
                            .await;
                    }
                    for change in chats.iter().filter_map(settings_change) {
                        self.publish(&session, "chats.update", change).await;
                    }
                    job.chats = count(chats.len());
                }
            }
            if let Err(e) = self.save(job) {
                tracing::warn!(job = %job.id, error = %e, "cannot record backfill progress");
            }
        }
        Ok(())
    }

    /// Publishes through the engine's path, waiting for room in the session's queue.
    async fn publish(&self, session: &str, name: &str, payload: Value) {
        self.sink
            .send_waiting(EngineEvent::Domain {
                session: session.to_owned(),
                name: name.to_owned(),
                payload,
            })
            .await;
    }
}

/// The `chats.update` (app state, as on the phone) restating a chat's known settings;
/// none when the engine knows none.
fn settings_change(chat: &ChatSnapshot) -> Option<Value> {
    let s = &chat.settings;
    if *s == ChatSettings::default() {
        return None;
    }
    let mut change = json!({"jid": chat.jid, "source": "phone"});
    if let Some(v) = s.archived {
        change["archived"] = json!(v);
    }
    if let Some(v) = s.pinned {
        change["pinned"] = json!(v);
    }
    if let Some(v) = s.muted_until {
        change["mutedUntil"] = json!(v);
    }
    Some(change)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
