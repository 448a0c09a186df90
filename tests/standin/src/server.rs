//! The state every connection task and the test handle share: the registry, the server's
//! Noise identity, stanza ids, and a change signal tests can wait on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Result, StandInError};
use crate::noise::ServerIdentity;
use crate::registry::Registry;

/// When recipients acknowledge messages an account sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AutoReceipts {
    /// Only when the test calls `send_receipt`.
    #[default]
    Off,
    /// A delivery receipt from each recipient right after the server ack.
    Delivered,
    /// Delivery and then read receipts.
    DeliveredAndRead,
}

/// Tunables of a stand-in server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Receipts the simulated recipients send on their own.
    pub auto_receipts: AutoReceipts,
}

pub(crate) struct Shared {
    registry: Mutex<Registry>,
    identity: Mutex<Arc<ServerIdentity>>,
    pub(crate) options: Mutex<Options>,
    changes: watch::Sender<u64>,
    next_id: AtomicU64,
    next_connection: AtomicU64,
    /// The loopback media CDN.
    pub(crate) cdn: crate::media::Cdn,
}

impl Shared {
    pub(crate) fn new(options: Options) -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            identity: Mutex::new(Arc::new(ServerIdentity::generate())),
            options: Mutex::new(options),
            changes: watch::Sender::new(0),
            next_id: AtomicU64::new(1),
            next_connection: AtomicU64::new(1),
            cdn: crate::media::Cdn::new(),
        }
    }

    /// Lock the registry for a read; nothing observable changes.
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Run `change` on the registry and wake everyone waiting for a change.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut Registry) -> R) -> R {
        let result = change(&mut self.registry());
        self.changes.send_modify(|version| *version += 1);
        result
    }

    /// The Noise identity new connections handshake with.
    pub(crate) fn identity(&self) -> Arc<ServerIdentity> {
        self.identity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replace the server's static key (and certificate): clients that cached the old one
    /// fall back from IK to XX on their next connect.
    pub(crate) fn rotate_identity(&self) {
        *self
            .identity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Arc::new(ServerIdentity::generate());
    }

    /// A fresh server stanza id.
    pub(crate) fn stanza_id(&self) -> String {
        format!(
            "{:X}.{}",
            0x5747_0000u64,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn auto_receipts(&self) -> AutoReceipts {
        self.options
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .auto_receipts
    }

    /// Wait until `probe` finds what it looks for in the registry.
    pub(crate) async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Registry) -> Option<T>,
    ) -> Result<T> {
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(found) = probe(&self.registry()) {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(StandInError::Stopped),
                Err(_) => return Err(StandInError::Timeout(what.to_owned())),
            }
        }
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
