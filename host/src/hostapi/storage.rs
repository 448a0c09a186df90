//! `wa:gateway/storage`: the plugin's key-value data, scoped to the call's session (or
//! organization). Reads are plain calls answered from the call's read snapshot; writes
//! are async because a durable commit waits on disk (group commit).

use super::InstanceState;
use super::convert::storage_error as failed;
use super::wa::gateway::storage::{Bound, Entry, Host, ScanRequest, StorageError, WriteOp};
use crate::storage::{KvReader, ScanRange, Scope, ScopedKv};

fn no_call() -> StorageError {
    StorageError::Failed("storage is only available while serving a request or event".into())
}

fn bound(b: Bound) -> std::ops::Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => std::ops::Bound::Included(k),
        Bound::Excluded(k) => std::ops::Bound::Excluded(k),
    }
}

/// A plugin's scan, capped at what the host hands over at once.
fn scan_range(request: ScanRequest) -> ScanRange {
    ScanRange {
        prefix: request.prefix,
        start: request.start.map(bound),
        end: request.end.map(bound),
        limit: request.limit as usize,
        reverse: request.reverse,
        max_bytes: Some(gateway_sdk::limits::MAX_SCAN_BYTES),
    }
}

impl InstanceState {
    fn check_value(&self, value: &[u8]) -> Result<(), StorageError> {
        let max = self.services.max_value_bytes;
        if value.len() > max {
            return Err(StorageError::Invalid(format!(
                "values are limited to {max} bytes"
            )));
        }
        Ok(())
    }

    /// What a read needs: the plugin's data, the call's read snapshot (opened on first
    /// use) and the call's scope.
    fn read_view(&mut self) -> Result<(&ScopedKv, &KvReader, &Scope), StorageError> {
        if self.call.is_none() {
            return Err(no_call());
        }
        if self.reader.is_none() {
            self.reader = Some(self.kv.reader().map_err(failed)?);
        }
        match (&self.reader, &self.scope) {
            (Some(reader), Some(scope)) => Ok((&self.kv, reader, scope)),
            _ => Err(no_call()),
        }
    }

    async fn write_ops(
        &mut self,
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Vec<bool>, StorageError> {
        let call = self.call().ok_or_else(no_call)?;
        let scope = call.scope();
        let organization = call.organization.clone();
        let limit = self.services.max_stored_bytes_per_org;
        // Later reads of this call must see this write.
        self.reader = None;
        let kv = self.kv.clone();
        // Group commit: concurrent calls' writes share one transaction and one fsync, and
        // each call is answered once the transaction holding its write is durable.
        let committer = kv.database().committer().clone();
        committer
            .write(move |txn| {
                let usage = crate::storage::OrgUsage {
                    organization: &organization,
                    limit,
                };
                kv.write_in(txn, &scope, &ops, Some(&usage))
            })
            .await
            .map_err(failed)
    }
}

impl Host for InstanceState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Result<Option<Vec<u8>>, StorageError>> {
        Ok(self
            .read_view()
            .and_then(|(kv, reader, scope)| kv.get_in(reader, scope, &key).map_err(failed)))
    }

    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StorageError> {
        self.check_value(&value)?;
        self.write_ops(vec![(key, Some(value))]).await.map(|_| ())
    }

    async fn delete(&mut self, key: Vec<u8>) -> Result<bool, StorageError> {
        Ok(self.write_ops(vec![(key, None)]).await?[0])
    }

    fn scan(&mut self, request: ScanRequest) -> wasmtime::Result<Result<Vec<Entry>, StorageError>> {
        Ok(self.read_view().and_then(|(kv, reader, scope)| {
            let rows = kv
                .scan_in(reader, scope, &scan_range(request))
                .map_err(failed)?;
            Ok(rows
                .into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect())
        }))
    }

    fn scan_packed(
        &mut self,
        request: ScanRequest,
    ) -> wasmtime::Result<Result<Vec<u8>, StorageError>> {
        Ok(self.read_view().and_then(|(kv, reader, scope)| {
            kv.scan_packed_in(reader, scope, &scan_range(request))
                .map_err(failed)
        }))
    }

    /// All operations in one transaction, however many: bounded by the bytes they carry
    /// (`limits.max_write_bytes`), so "committed together" holds for any unit of work.
    async fn write(&mut self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        let max = self.services.max_write_bytes;
        let bytes: usize = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put(e) => e.key.len() + e.value.len(),
                WriteOp::Delete(k) => k.len(),
            })
            .sum();
        if bytes > max {
            return Err(StorageError::Invalid(format!(
                "one write carries at most {max} bytes"
            )));
        }
        let mut plain = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                WriteOp::Put(Entry { key, value }) => {
                    self.check_value(&value)?;
                    plain.push((key, Some(value)));
                }
                WriteOp::Delete(key) => plain.push((key, None)),
            }
        }
        self.write_ops(plain).await.map(|_| ())
    }
}
