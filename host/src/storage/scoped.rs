//! Key-value data scoped to one owner (a plugin or the engine) and one session or
//! organization, so no owner can name another's keys.
//!
//! Key layout: `tag | scope-id | 0x00 | owner | 0x00 | user-key`, where `tag` is `s` for a
//! session and `o` for an organization. Scope ids and owner names never contain 0x00, so
//! each (scope, owner) pair is a disjoint prefix, user keys keep their byte order inside
//! it, and deleting a session is one range delete over `s | id | 0x00`.

use super::{Database, StorageError};
use redb::{ReadableTable, TableDefinition};
use std::ops::Bound;

/// Whose data: a session's, or an organization's (for routes without a session).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Session(String),
    Organization(String),
}

impl Scope {
    fn prefix(&self) -> Vec<u8> {
        self.prefix_with_room(0)
    }

    /// The scope's prefix in a buffer with room for `extra` more bytes.
    fn prefix_with_room(&self, extra: usize) -> Vec<u8> {
        let (tag, id) = match self {
            Scope::Session(id) => (b's', id),
            Scope::Organization(id) => (b'o', id),
        };
        let mut p = Vec::with_capacity(id.len() + 2 + extra);
        p.push(tag);
        p.extend_from_slice(id.as_bytes());
        p.push(0);
        p
    }
}

/// A scan inside one scope: keys starting with `prefix`, optionally bounded.
#[derive(Debug, Clone, Default)]
pub struct ScanRange {
    pub prefix: Vec<u8>,
    pub start: Option<Bound<Vec<u8>>>,
    pub end: Option<Bound<Vec<u8>>>,
    pub limit: usize,
    pub reverse: bool,
    /// Refuse the scan (`Invalid`, [`SCAN_TOO_LARGE`]) as soon as its keys and values pass
    /// this many bytes, so an untrusted caller cannot make the host hold a huge answer.
    pub max_bytes: Option<usize>,
}

/// Whose stored total a write counts against, and its cap (`None`: uncapped).
#[derive(Debug, Clone, Copy)]
pub struct OrgUsage<'a> {
    pub organization: &'a str,
    pub limit: Option<u64>,
}

/// Rows of a scan: user keys (without the scope prefix) and values.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

type RawRow<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// A read snapshot of a table, reused for several reads (every read of one plugin call,
/// and the other calls' reads until the next commit: see `storage::snapshot`).
pub struct KvReader {
    table: std::sync::Arc<super::snapshot::KvTable>,
}

/// One owner's view of a table.
#[derive(Clone)]
pub struct ScopedKv {
    db: Database,
    table: TableDefinition<'static, &'static [u8], &'static [u8]>,
    owner: String,
}

pub(crate) use gateway_sdk::limits::{MAX_KEY_BYTES, MAX_SCAN_ENTRIES as MAX_SCAN, SCAN_TOO_LARGE};

impl std::fmt::Debug for ScopedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedKv")
            .field("owner", &self.owner)
            .finish()
    }
}

impl ScopedKv {
    pub fn new(
        db: Database,
        table: TableDefinition<'static, &'static [u8], &'static [u8]>,
        owner: &str,
    ) -> Self {
        debug_assert!(!owner.as_bytes().contains(&0));
        ScopedKv {
            db,
            table,
            owner: owner.to_owned(),
        }
    }

    fn base(&self, scope: &Scope) -> Vec<u8> {
        self.base_with_room(scope, 0)
    }

    /// [`ScopedKv::base`] with room for `extra` more bytes: a key is one allocation.
    fn base_with_room(&self, scope: &Scope, extra: usize) -> Vec<u8> {
        let mut p = scope.prefix_with_room(self.owner.len() + 1 + extra);
        p.extend_from_slice(self.owner.as_bytes());
        p.push(0);
        p
    }

    fn full_key(&self, scope: &Scope, key: &[u8]) -> Result<Vec<u8>, StorageError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(StorageError::Invalid(format!(
                "keys must be 1 to {MAX_KEY_BYTES} bytes"
            )));
        }
        let mut k = self.base_with_room(scope, key.len());
        k.extend_from_slice(key);
        Ok(k)
    }

    /// A snapshot to read from; writes made after it was opened are not in it.
    pub fn reader(&self) -> Result<KvReader, StorageError> {
        Ok(KvReader {
            table: self.db.kv_snapshot(self.table)?,
        })
    }

    pub fn get(&self, scope: &Scope, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_in(&self.reader()?, scope, key)
    }

    pub fn get_in(
        &self,
        reader: &KvReader,
        scope: &Scope,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let k = self.full_key(scope, key)?;
        Ok(reader.table.get(k.as_slice())?.map(|v| v.value().to_vec()))
    }

    /// Applies puts (`Some`) and deletes (`None`) atomically; returns, per operation,
    /// whether the key existed before.
    pub fn write(
        &self,
        scope: &Scope,
        ops: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<Vec<bool>, StorageError> {
        self.write_accounted(scope, ops, None)
    }

    /// Like [`ScopedKv::write`], also counting the bytes the write adds or frees against
    /// the organization's stored total, in the same transaction; a write that would take
    /// the total past `usage.limit` is refused whole ([`StorageError::Quota`]).
    pub fn write_accounted(
        &self,
        scope: &Scope,
        ops: &[(Vec<u8>, Option<Vec<u8>>)],
        usage: Option<&OrgUsage<'_>>,
    ) -> Result<Vec<bool>, StorageError> {
        let txn = self.db.redb().begin_write()?;
        let existed = self.write_in(&txn, scope, ops, usage)?;
        self.db.commit(txn)?;
        Ok(existed)
    }

    /// Applies the operations inside `txn` (a group-commit job), checking everything first:
    /// when it fails, it has written nothing.
    pub fn write_in(
        &self,
        txn: &redb::WriteTransaction,
        scope: &Scope,
        ops: &[(Vec<u8>, Option<Vec<u8>>)],
        usage: Option<&OrgUsage<'_>>,
    ) -> Result<Vec<bool>, StorageError> {
        let keys = ops
            .iter()
            .map(|(k, _)| self.full_key(scope, k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut t = txn.open_table(self.table)?;
        let mut existed = Vec::with_capacity(ops.len());
        let mut delta: i64 = 0;
        // What earlier operations of this batch left under a key (its stored size, or
        // gone): a later operation on the same key sees that, not the table.
        let mut batch: std::collections::HashMap<&[u8], Option<usize>> =
            std::collections::HashMap::new();
        for (k, (_, v)) in keys.iter().zip(ops) {
            let old = match batch.get(k.as_slice()) {
                Some(size) => *size,
                None => t.get(k.as_slice())?.map(|o| k.len() + o.value().len()),
            };
            existed.push(old.is_some());
            delta -= old.unwrap_or(0) as i64;
            let new = v.as_ref().map(|v| k.len() + v.len());
            delta += new.unwrap_or(0) as i64;
            batch.insert(k.as_slice(), new);
        }
        if let Some(usage) = usage {
            super::usage::apply(txn, usage, delta)?;
        }
        for (k, (_, v)) in keys.iter().zip(ops) {
            match v {
                Some(v) => {
                    t.insert(k.as_slice(), v.as_slice())?;
                }
                None => {
                    t.remove(k.as_slice())?;
                }
            }
        }
        Ok(existed)
    }

    /// The database this view writes to (for group-commit jobs).
    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn put(&self, scope: &Scope, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.write(scope, &[(key.to_vec(), Some(value.to_vec()))])
            .map(|_| ())
    }

    pub fn delete(&self, scope: &Scope, key: &[u8]) -> Result<bool, StorageError> {
        Ok(self.write(scope, &[(key.to_vec(), None)])?[0])
    }

    /// Entries in the scope matching `range`, keys returned without the scope prefix.
    pub fn scan(&self, scope: &Scope, range: &ScanRange) -> Result<Rows, StorageError> {
        self.scan_in(&self.reader()?, scope, range)
    }

    pub fn scan_in(
        &self,
        reader: &KvReader,
        scope: &Scope,
        range: &ScanRange,
    ) -> Result<Rows, StorageError> {
        let mut out = Vec::new();
        self.scan_each(reader, scope, range, |k, v| {
            out.push((k.to_vec(), v.to_vec()))
        })?;
        Ok(out)
    }

    /// The rows of a scan packed into one buffer ([`gateway_sdk::packed`]), copied once
    /// from the database pages: what `storage.scan-packed` hands a plugin.
    pub fn scan_packed_in(
        &self,
        reader: &KvReader,
        scope: &Scope,
        range: &ScanRange,
    ) -> Result<Vec<u8>, StorageError> {
        let mut buf = Vec::new();
        self.scan_each(reader, scope, range, |k, v| {
            gateway_sdk::packed::push(&mut buf, k, v)
        })?;
        Ok(buf)
    }

    /// Visits the rows of a scan in order: user keys (without the scope prefix) and values,
    /// borrowed from the database pages.
    fn scan_each(
        &self,
        reader: &KvReader,
        scope: &Scope,
        range: &ScanRange,
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), StorageError> {
        let base = self.base(scope);
        let mut prefix = base.clone();
        prefix.extend_from_slice(&range.prefix);
        let full = |b: &Vec<u8>| {
            let mut k = base.clone();
            k.extend_from_slice(b);
            k
        };
        // The prefix itself bounds the scan; explicit bounds only narrow it.
        let mut lo = Bound::Included(prefix.clone());
        if let Some(b) = &range.start {
            let candidate = match b {
                Bound::Included(k) => Bound::Included(full(k)),
                Bound::Excluded(k) => Bound::Excluded(full(k)),
                Bound::Unbounded => Bound::Unbounded,
            };
            if bound_key(&candidate).is_some_and(|k| k >= prefix.as_slice()) {
                lo = candidate;
            }
        }
        let mut hi = match prefix_end(&prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        if let Some(b) = &range.end {
            let candidate = match b {
                Bound::Included(k) => Bound::Included(full(k)),
                Bound::Excluded(k) => Bound::Excluded(full(k)),
                Bound::Unbounded => Bound::Unbounded,
            };
            let tighter = match (&candidate, &hi) {
                (_, Bound::Unbounded) => true,
                (Bound::Unbounded, _) => false,
                (c, Bound::Excluded(h) | Bound::Included(h)) => {
                    bound_key(c).is_some_and(|c| c <= h.as_slice())
                }
            };
            if tighter {
                hi = candidate;
            }
        }
        let limit = range.limit.clamp(1, MAX_SCAN);
        let t = &reader.table;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (as_ref(&lo), as_ref(&hi));
        if let (Some(l), Some(h)) = (bound_key(&lo), bound_key(&hi))
            && l > h
        {
            return Ok(());
        }
        let iter = t.range::<&[u8]>(bounds)?;
        let strip = base.len();
        let mut rows = 0usize;
        let mut bytes = 0usize;
        let max_bytes = range.max_bytes.unwrap_or(usize::MAX);
        let mut push = |row: RawRow<'_>| -> Result<bool, StorageError> {
            let (k, v) = row?;
            let (k, v) = (&k.value()[strip..], v.value());
            bytes = bytes.saturating_add(k.len() + v.len());
            if bytes > max_bytes {
                return Err(StorageError::Invalid(SCAN_TOO_LARGE.into()));
            }
            visit(k, v);
            rows += 1;
            Ok(rows < limit)
        };
        if range.reverse {
            for row in iter.rev() {
                if !push(row)? {
                    break;
                }
            }
        } else {
            for row in iter {
                if !push(row)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Every entry of this owner in the scope under `prefix`, in key order (read in
    /// chunks of the scan limit).
    pub fn scan_all(&self, scope: &Scope, prefix: &[u8]) -> Result<Rows, StorageError> {
        let reader = self.reader()?;
        let mut out: Rows = Vec::new();
        loop {
            let range = ScanRange {
                prefix: prefix.to_vec(),
                start: out.last().map(|(k, _)| Bound::Excluded(k.clone())),
                limit: MAX_SCAN,
                ..Default::default()
            };
            let rows = self.scan_in(&reader, scope, &range)?;
            let done = rows.len() < MAX_SCAN;
            out.extend(rows);
            if done {
                return Ok(out);
            }
        }
    }

    /// Removes everything this owner stored in the scope, in one transaction; returns how
    /// many entries went.
    pub fn purge(&self, scope: &Scope) -> Result<u64, StorageError> {
        Self::purge_prefix(&self.db, self.table, &self.base(scope))
    }

    /// Removes everything every owner stored for a scope (deleting a session); the freed
    /// bytes leave `organization`'s stored total when given.
    pub fn purge_scope(
        db: &Database,
        table: TableDefinition<'static, &'static [u8], &'static [u8]>,
        scope: &Scope,
        organization: Option<&str>,
    ) -> Result<u64, StorageError> {
        Self::purge_prefix_accounted(db, table, &scope.prefix(), organization)
    }

    fn purge_prefix(
        db: &Database,
        table: TableDefinition<'static, &'static [u8], &'static [u8]>,
        prefix: &[u8],
    ) -> Result<u64, StorageError> {
        Self::purge_prefix_accounted(db, table, prefix, None)
    }

    fn purge_prefix_accounted(
        db: &Database,
        table: TableDefinition<'static, &'static [u8], &'static [u8]>,
        prefix: &[u8],
        organization: Option<&str>,
    ) -> Result<u64, StorageError> {
        let end = prefix_end(prefix);
        let txn = db.redb().begin_write()?;
        let mut removed = 0u64;
        let mut freed = 0i64;
        {
            let mut t = txn.open_table(table)?;
            let lo = Bound::Included(prefix);
            let hi = match &end {
                Some(e) => Bound::Excluded(e.as_slice()),
                None => Bound::Unbounded,
            };
            t.retain_in::<&[u8], _>((lo, hi), |k, v| {
                removed += 1;
                freed += (k.len() + v.len()) as i64;
                false
            })?;
        }
        if let Some(organization) = organization {
            let usage = OrgUsage {
                organization,
                limit: None,
            };
            super::usage::apply(&txn, &usage, -freed)?;
        }
        db.commit(txn)?;
        Ok(removed)
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn bound_key(b: &Bound<Vec<u8>>) -> Option<&[u8]> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.as_slice()),
        Bound::Unbounded => None,
    }
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests;
