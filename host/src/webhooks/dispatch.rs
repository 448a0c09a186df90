//! Each webhook's dispatcher: reads its due deliveries from redb (never more than its
//! `max_in_flight` at once), runs the attempts, and records each outcome — succeeded,
//! retrying at the policy's next time (±20 % jitter, a receiver's `Retry-After`
//! honoured up to the cap), or dead after the last attempt. A webhook whose deliveries
//! have all gone dead for `disable_after_ms` is disabled and `webhook.disabled` is
//! published. A pruner drops finished deliveries past their retention.

use super::client::Outcome;
use super::model::{Attempt, Delivery, DeliveryStatus, Webhook};
use super::{Webhooks, store};
use crate::events::EventEnvelope;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One webhook's dispatcher task, woken when deliveries are queued or attempts end.
pub(super) struct Dispatcher {
    wake: Notify,
}

impl Dispatcher {
    pub(super) fn spawn(webhooks: Webhooks, id: String) -> Arc<Dispatcher> {
        let d = Arc::new(Dispatcher {
            wake: Notify::new(),
        });
        crate::background::spawn(run(webhooks, id, d.clone()));
        d
    }

    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }
}

async fn run(webhooks: Webhooks, id: String, me: Arc<Dispatcher>) {
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let woken = me.wake.notified();
        let Some(w) = webhooks.0.targets.read().expect("lock").get(&id).cloned() else {
            return; // deleted
        };
        let mut next = None;
        let free = webhooks
            .0
            .config
            .max_in_flight
            .max(1)
            .saturating_sub(busy.lock().expect("lock").len());
        if w.active && free > 0 {
            let now = crate::clock::now_ms();
            let taken = busy.lock().expect("lock").clone();
            match store::due(&webhooks.0.db, &id, now, free, &taken) {
                Ok((ids, later)) => {
                    let full = ids.len() == free;
                    for dlv in ids {
                        busy.lock().expect("lock").insert(dlv.clone());
                        let (webhooks, w, busy, me) =
                            (webhooks.clone(), w.clone(), busy.clone(), me.clone());
                        crate::background::spawn(async move {
                            attempt(&webhooks, &w, &dlv).await;
                            busy.lock().expect("lock").remove(&dlv);
                            me.wake();
                        });
                    }
                    next = if full { None } else { later };
                }
                Err(e) => {
                    tracing::error!(webhook = %id, error = %e, "cannot read due deliveries");
                    next = Some(now + 1000);
                }
            }
        }
        match next {
            Some(at) => {
                let wait = Duration::from_millis(at.saturating_sub(crate::clock::now_ms()));
                let _ = tokio::time::timeout(wait, woken).await;
            }
            None => woken.await,
        }
    }
}

/// Runs one attempt of delivery `id` and records what came of it.
async fn attempt(webhooks: &Webhooks, w: &Webhook, id: &str) {
    let db = &webhooks.0.db;
    let d = match store::delivery(db, id) {
        Ok(Some(d)) if !d.status.is_finished() => d,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(delivery = %id, error = %e, "cannot read a delivery");
            return;
        }
    };
    let n = d.attempts + 1;
    let outcome = webhooks.0.sender.attempt(w, &d, n).await;
    count_attempt(webhooks, &outcome);
    let id = id.to_owned();
    let policy = w.retry_policy;
    let recorded = db
        .committer()
        .write(move |txn| {
            // Read inside the write: a pause or delete meanwhile wins.
            let Some(mut d) = store::delivery_in(txn, &id)? else {
                return Ok(None);
            };
            if d.status.is_finished() {
                return Ok(None);
            }
            let was = d.next_attempt_at;
            apply(&mut d, &outcome, n, crate::clock::now_ms(), Some(&policy));
            store::put_delivery(txn, &d, was)?;
            Ok(Some(d.status))
        })
        .await;
    match recorded {
        Ok(Some(DeliveryStatus::Succeeded)) => note_success(webhooks, &w.id).await,
        Ok(Some(DeliveryStatus::Dead)) => note_dead(webhooks, &w.id).await,
        Ok(_) => {}
        Err(e) => tracing::error!(webhook = %w.id, error = %e, "cannot record an attempt"),
    }
}

/// Counts an attempt by result, HTTP statuses by class (labels from a closed set).
fn count_attempt(webhooks: &Webhooks, outcome: &Outcome) {
    let result = match (&outcome.error, outcome.status_code) {
        (None, _) => "succeeded".to_owned(),
        (Some(e), Some(code)) if e.starts_with("http_") => format!("http_{}xx", code / 100),
        (Some(e), _) => e.clone(),
    };
    webhooks
        .0
        .metrics
        .webhook_attempts
        .get_or_create(&crate::metrics::ResultLabels { result })
        .inc();
}

/// Records attempt `n`'s outcome on `d`: succeeded, or (with a `policy`) retrying at
/// the next time, or dead after the last attempt; without one (a test), dead at once.
pub(super) fn apply(
    d: &mut Delivery,
    outcome: &Outcome,
    n: u32,
    now: u64,
    policy: Option<&super::model::RetryPolicy>,
) {
    d.attempts = n;
    d.last_attempt_at = Some(now);
    d.last_status_code = outcome.status_code;
    d.last_error = outcome.error.clone();
    d.updated_at = now;
    d.attempt_log.push(Attempt {
        n,
        at: now,
        status_code: outcome.status_code,
        duration_ms: u32::try_from(outcome.duration.as_millis()).unwrap_or(u32::MAX),
        error: outcome.error.clone(),
        response_excerpt: outcome.excerpt.clone(),
    });
    if outcome.succeeded() {
        d.status = DeliveryStatus::Succeeded;
        d.next_attempt_at = None;
        return;
    }
    match policy {
        Some(p) if n < p.attempts => {
            let cap = Duration::from_secs(u64::from(p.max_delay_seconds));
            let jitter = rand::random_range(0.8..1.2);
            let mut delay = p.delay_after(n).mul_f64(jitter).min(cap);
            if let Some(asked) = outcome.retry_after {
                delay = delay.max(asked.min(cap));
            }
            d.status = DeliveryStatus::Retrying;
            d.next_attempt_at =
                Some(now + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX / 2));
        }
        _ => {
            d.status = DeliveryStatus::Dead;
            d.next_attempt_at = None;
        }
    }
}

async fn note_success(webhooks: &Webhooks, id: &str) {
    let Some(w) = webhooks.0.targets.read().expect("lock").get(id).cloned() else {
        return;
    };
    if w.failing_since.is_some() {
        let mut w = (*w).clone();
        w.failing_since = None;
        save(webhooks, w).await;
    }
}

/// A delivery went dead: the webhook is failing since now if it was not already, and is
/// disabled once it has been failing for `disable_after_ms`.
async fn note_dead(webhooks: &Webhooks, id: &str) {
    let Some(w) = webhooks.0.targets.read().expect("lock").get(id).cloned() else {
        return;
    };
    let now = crate::clock::now_ms();
    let mut changed = (*w).clone();
    let since = *changed.failing_since.get_or_insert(now);
    let disable = w.active && now.saturating_sub(since) >= webhooks.0.config.disable_after_ms;
    if disable {
        changed.active = false;
        changed.disabled_reason = Some("failing".into());
        changed.updated_at = now;
    } else if w.failing_since.is_some() {
        return;
    }
    let org = changed.organization_id.clone();
    let webhook_id = changed.id.clone();
    if !save(webhooks, changed).await || !disable {
        return;
    }
    // Its other waiting deliveries go dead too (replayable once it is fixed).
    let db = webhooks.0.db.clone();
    let wid = webhook_id.clone();
    if let Err(e) = db
        .committer()
        .write(move |txn| store::kill_waiting(txn, &wid, now))
        .await
    {
        tracing::error!(webhook = %webhook_id, error = %e, "cannot stop a disabled webhook's deliveries");
    }
    tracing::warn!(webhook = %webhook_id, org = %org, "webhook disabled: its deliveries keep failing");
    webhooks.0.bus.publish(EventEnvelope::new(
        "webhook.disabled",
        "",
        &org,
        serde_json::json!({ "webhookId": webhook_id, "reason": "failing" }),
    ));
}

async fn save(webhooks: &Webhooks, w: Webhook) -> bool {
    let stored = w.clone();
    match webhooks
        .0
        .db
        .committer()
        .write(move |txn| store::put_webhook(txn, &stored))
        .await
    {
        Ok(()) => {
            // Only if it still exists (a delete meanwhile wins).
            let mut targets = webhooks.0.targets.write().expect("lock");
            if targets.contains_key(&w.id) {
                targets.insert(w.id.clone(), Arc::new(w));
            }
            true
        }
        Err(e) => {
            tracing::error!(webhook = %w.id, error = %e, "cannot save a webhook");
            false
        }
    }
}

/// How often finished deliveries past their retention are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deliveries removed per commit while pruning.
const PRUNE_BATCH: usize = 500;

pub(super) fn spawn_pruner(webhooks: Webhooks) {
    crate::background::spawn(async move {
        loop {
            let ids: Vec<String> = webhooks
                .0
                .targets
                .read()
                .expect("lock")
                .keys()
                .cloned()
                .collect();
            let cutoff = crate::clock::now_ms().saturating_sub(webhooks.0.config.retention_ms);
            let max_dead = webhooks.0.config.max_dead_per_webhook;
            for id in ids {
                if let Err(e) = prune(&webhooks, &id, cutoff, max_dead).await {
                    tracing::warn!(webhook = %id, error = %e, "cannot prune webhook deliveries");
                }
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    });
}

/// Drops a webhook's expired deliveries and its dead ones over the cap, a batch per commit.
async fn prune(
    webhooks: &Webhooks,
    id: &str,
    cutoff: u64,
    max_dead: usize,
) -> Result<(), crate::storage::StorageError> {
    loop {
        let batch = store::prunable(&webhooks.0.db, id, cutoff, max_dead, PRUNE_BATCH)?;
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        webhooks
            .0
            .db
            .committer()
            .write(move |txn| store::remove(txn, &batch))
            .await?;
        tracing::debug!(webhook = %id, removed = n, "pruned webhook deliveries");
        if n < PRUNE_BATCH {
            return Ok(());
        }
    }
}
