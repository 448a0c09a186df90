//! Webhooks (API.md §7): the organization's targets, matched in-process against every
//! event the gateway publishes; each match becomes a durable delivery (redb) before its
//! first attempt, signed per Standard Webhooks 1.0, retried on the webhook's policy, and
//! kept when it goes dead for listing and replay. Every webhook has its own dispatcher
//! task with its own cap of attempts in flight, so a slow or dead receiver delays no
//! other target; deliveries wait in redb, not in memory.

mod client;
mod dispatch;
pub mod model;
pub mod rules;
mod sign;
mod store;

use crate::config::WebhooksConfig;
use crate::events::filter::{EventFilter, is_internal};
use crate::events::{EventBus, EventEnvelope};
use crate::sessions::SessionManager;
use crate::storage::{Database, StorageError};
use model::{Delivery, DeliveryStatus, RetryPolicy, SigningKey, Webhook};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// What a webhook operation can fail with; mapped to the envelope by the plugin
/// (invalid 422, not found 404, conflict 409).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl WebhookError {
    pub fn invalid(field: &str, message: impl Into<String>) -> WebhookError {
        WebhookError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// A webhook's fields to set (create: the unset ones take their defaults).
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub session_id: Option<Option<String>>,
    pub active: Option<bool>,
    pub custom_headers: Option<Vec<(String, String)>>,
    pub retry_policy: Option<RetryPolicy>,
    pub secret: Option<String>,
}

/// The webhook engine; cheap to clone.
#[derive(Clone)]
pub struct Webhooks(Arc<Inner>);

struct Inner {
    db: Database,
    config: WebhooksConfig,
    sender: client::Sender,
    sessions: Arc<SessionManager>,
    bus: EventBus,
    metrics: Arc<crate::metrics::Metrics>,
    /// Event names plugins may emit (`plugins.emits`, every plugin's patterns).
    emitted: Vec<String>,
    /// Every webhook by id: the matcher's and dispatchers' view.
    targets: RwLock<HashMap<String, Arc<Webhook>>>,
    /// Each webhook's dispatcher, woken when deliveries are queued or attempts end.
    dispatchers: Mutex<HashMap<String, Arc<dispatch::Dispatcher>>>,
}

impl Webhooks {
    /// Opens the engine over `db` and starts a dispatcher for every stored webhook, so
    /// deliveries queued before a restart go out again.
    pub fn start(
        db: Database,
        config: WebhooksConfig,
        sessions: Arc<SessionManager>,
        bus: EventBus,
        metrics: Arc<crate::metrics::Metrics>,
        emitted: Vec<String>,
    ) -> Result<Webhooks, StorageError> {
        store::create_tables(&db)?;
        let targets = store::load_webhooks(&db)?
            .into_iter()
            .map(|w| (w.id.clone(), Arc::new(w)))
            .collect::<HashMap<_, _>>();
        let sender = client::Sender::new(
            std::time::Duration::from_millis(config.timeout_ms.max(1)),
            config.allow_http,
            config.allow_private_targets,
        );
        let ids: Vec<String> = targets.keys().cloned().collect();
        let webhooks = Webhooks(Arc::new(Inner {
            db,
            config,
            sender,
            sessions,
            bus,
            metrics,
            emitted,
            targets: RwLock::new(targets),
            dispatchers: Mutex::new(HashMap::new()),
        }));
        for id in ids {
            webhooks.dispatcher(&id).wake();
        }
        dispatch::spawn_pruner(webhooks.clone());
        Ok(webhooks)
    }

    fn target(&self, org: &str, id: &str) -> Result<Arc<Webhook>, WebhookError> {
        self.0
            .targets
            .read()
            .expect("lock")
            .get(id)
            .filter(|w| w.organization_id == org)
            .cloned()
            .ok_or_else(|| WebhookError::NotFound(format!("webhook {id} not found")))
    }

    fn set_target(&self, w: Webhook) -> Arc<Webhook> {
        let w = Arc::new(w);
        self.0
            .targets
            .write()
            .expect("lock")
            .insert(w.id.clone(), w.clone());
        w
    }

    /// The dispatcher of webhook `id`, started if it is not running.
    fn dispatcher(&self, id: &str) -> Arc<dispatch::Dispatcher> {
        let mut all = self.0.dispatchers.lock().expect("lock");
        all.entry(id.to_owned())
            .or_insert_with(|| dispatch::Dispatcher::spawn(self.clone(), id.to_owned()))
            .clone()
    }

    /// The organization's webhooks, oldest first.
    pub fn list(&self, org: &str) -> Vec<Arc<Webhook>> {
        let mut out: Vec<_> = self
            .0
            .targets
            .read()
            .expect("lock")
            .values()
            .filter(|w| w.organization_id == org)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn get(&self, org: &str, id: &str) -> Result<Arc<Webhook>, WebhookError> {
        self.target(org, id)
    }

    /// Checks a patch's fields against the rules (§7.1); `org` for the session filter.
    fn check(&self, org: &str, p: &WebhookPatch) -> Result<Option<Vec<u8>>, WebhookError> {
        let c = &self.0.config;
        if let Some(url) = &p.url {
            rules::check_url(url, c.allow_http, c.allow_private_targets)?;
        }
        if let Some(events) = &p.events {
            rules::check_events(events, &self.0.emitted)?;
        }
        if let Some(Some(session)) = &p.session_id
            && self.0.sessions.get(org, session).is_err()
        {
            return Err(WebhookError::invalid(
                "sessionId",
                format!("{session} is not a session of this organization"),
            ));
        }
        if let Some(h) = &p.custom_headers {
            rules::check_headers(h)?;
        }
        if let Some(r) = &p.retry_policy {
            rules::check_retry(r)?;
        }
        p.secret
            .as_deref()
            .map(|s| sign::key_of(s).map_err(|m| WebhookError::invalid("secret", m)))
            .transpose()
    }

    /// Creates a webhook; answers it with the generated secret when none was given.
    pub async fn create(
        &self,
        org: &str,
        spec: WebhookPatch,
    ) -> Result<(Arc<Webhook>, Option<String>), WebhookError> {
        let url = spec
            .url
            .clone()
            .ok_or_else(|| WebhookError::invalid("url", "is required"))?;
        let events = spec
            .events
            .clone()
            .ok_or_else(|| WebhookError::invalid("events", "is required"))?;
        let given_key = self.check(org, &spec)?;
        if self.list(org).len() >= self.0.config.max_per_org {
            return Err(WebhookError::Conflict(format!(
                "the organization has {} webhooks, the most it may have",
                self.0.config.max_per_org
            )));
        }
        let (key, generated) = match given_key {
            Some(k) => (k, None),
            None => {
                let secret = sign::generate_secret();
                (
                    sign::key_of(&secret).expect("generated secrets parse"),
                    Some(secret),
                )
            }
        };
        let now = crate::clock::now_ms();
        let w = Webhook {
            id: format!("wh_{}", ulid::Ulid::generate()),
            organization_id: org.to_owned(),
            url,
            events,
            session_id: spec.session_id.flatten(),
            active: spec.active.unwrap_or(true),
            custom_headers: spec.custom_headers.unwrap_or_default(),
            retry_policy: spec.retry_policy.unwrap_or_default(),
            disabled_reason: None,
            created_at: now,
            updated_at: now,
            keys: vec![SigningKey {
                key: base64_encode(&key),
                until: None,
            }],
            failing_since: None,
        };
        let stored = w.clone();
        self.0
            .db
            .committer()
            .write(move |txn| store::put_webhook(txn, &stored))
            .await?;
        let w = self.set_target(w);
        self.dispatcher(&w.id);
        Ok((w, generated))
    }

    /// Changes the fields a patch sets. Pausing kills the waiting deliveries (they stay
    /// replayable); a new secret rotates, the old one signing on through the overlap.
    pub async fn update(
        &self,
        org: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> Result<Arc<Webhook>, WebhookError> {
        let current = self.target(org, id)?;
        let new_key = self.check(org, &patch)?;
        let now = crate::clock::now_ms();
        let mut w = (*current).clone();
        if let Some(v) = patch.url {
            w.url = v;
        }
        if let Some(v) = patch.events {
            w.events = v;
        }
        if let Some(v) = patch.session_id {
            w.session_id = v;
        }
        if let Some(v) = patch.custom_headers {
            w.custom_headers = v;
        }
        if let Some(v) = patch.retry_policy {
            w.retry_policy = v;
        }
        let paused = patch.active == Some(false) && current.active;
        if let Some(v) = patch.active {
            w.active = v;
            if v {
                w.disabled_reason = None;
                w.failing_since = None;
            }
        }
        if let Some(key) = new_key {
            let until = now + self.0.config.secret_overlap_ms;
            let mut keys = vec![SigningKey {
                key: base64_encode(&key),
                until: None,
            }];
            keys.extend(
                w.keys
                    .iter()
                    .filter(|k| k.until.is_none_or(|u| u > now))
                    .map(|k| SigningKey {
                        key: k.key.clone(),
                        until: Some(k.until.unwrap_or(until).min(until)),
                    }),
            );
            w.keys = keys;
        }
        w.updated_at = now;
        let stored = w.clone();
        self.0
            .db
            .committer()
            .write(move |txn| {
                store::put_webhook(txn, &stored)?;
                if paused {
                    store::kill_waiting(txn, &stored.id, now)?;
                }
                Ok(())
            })
            .await?;
        let w = self.set_target(w);
        self.dispatcher(id).wake();
        Ok(w)
    }

    /// Removes a webhook, stopping its retries and dropping its deliveries.
    pub async fn delete(&self, org: &str, id: &str) -> Result<(), WebhookError> {
        self.target(org, id)?;
        self.0.targets.write().expect("lock").remove(id);
        if let Some(d) = self.0.dispatchers.lock().expect("lock").remove(id) {
            d.wake();
        }
        let id = id.to_owned();
        self.0
            .db
            .committer()
            .write(move |txn| store::delete_webhook(txn, &id))
            .await?;
        Ok(())
    }

    /// Records the deliveries an event makes: one per active webhook of its organization
    /// whose filters match. The write is queued at once — so a session's events are
    /// recorded in order — and the answer resolves once it is durable (then the
    /// dispatchers are woken). Called by the event delivery workers, which queue the next
    /// event's write meanwhile (consecutive events share a commit) and forget an inbound
    /// journal entry only once its deliveries are on disk.
    pub fn record(
        &self,
        ev: &EventEnvelope,
    ) -> impl std::future::Future<Output = Result<usize, StorageError>> + Send + 'static {
        let queued = self.queue_deliveries(ev);
        let webhooks = self.clone();
        async move {
            let Some((written, matched)) = queued? else {
                return Ok(0);
            };
            written.await?;
            webhooks
                .0
                .metrics
                .webhook_deliveries
                .inc_by(matched.len() as u64);
            for id in &matched {
                webhooks.dispatcher(id).wake();
            }
            Ok(matched.len())
        }
    }

    /// Queues the write of an event's deliveries; `None` when no webhook matches.
    #[allow(clippy::type_complexity)]
    fn queue_deliveries(
        &self,
        ev: &EventEnvelope,
    ) -> Result<
        Option<(
            impl std::future::Future<Output = Result<(), StorageError>> + Send + 'static,
            Vec<String>,
        )>,
        StorageError,
    > {
        if is_internal(&ev.event) {
            return Ok(None);
        }
        let matched: Vec<Arc<Webhook>> = self
            .0
            .targets
            .read()
            .expect("lock")
            .values()
            .filter(|w| {
                w.active
                    && w.organization_id == ev.organization
                    && w.session_id.as_deref().is_none_or(|s| s == ev.session)
                    && EventFilter::of_checked(&w.events).matches(&ev.event)
            })
            .cloned()
            .collect();
        if matched.is_empty() {
            return Ok(None);
        }
        let envelope =
            serde_json::to_string(ev).map_err(|e| StorageError::Invalid(e.to_string()))?;
        let now = crate::clock::now_ms();
        let session = (!ev.session.is_empty()).then_some(ev.session.as_str());
        let deliveries: Vec<Delivery> = matched
            .iter()
            .map(|w| Delivery::new(w, &ev.id, &ev.event, session, envelope.clone(), now))
            .collect();
        let written = self.0.db.committer().submit(move |txn| {
            for d in &deliveries {
                store::put_delivery(txn, d, None)?;
            }
            Ok(())
        });
        Ok(Some((
            written,
            matched.iter().map(|w| w.id.clone()).collect(),
        )))
    }

    /// Sends one signed `webhook.test` event now, not retried; answers its delivery.
    pub async fn test(&self, org: &str, id: &str) -> Result<Delivery, WebhookError> {
        let w = self.target(org, id)?;
        let ev = EventEnvelope::new(
            "webhook.test",
            "",
            org,
            serde_json::json!({ "webhookId": w.id }),
        );
        let envelope =
            serde_json::to_string(&ev).map_err(|e| StorageError::Invalid(e.to_string()))?;
        let now = crate::clock::now_ms();
        let mut d = Delivery::new(&w, &ev.id, &ev.event, None, envelope, now);
        let outcome = self.0.sender.attempt(&w, &d, 1).await;
        dispatch::apply(&mut d, &outcome, 1, crate::clock::now_ms(), None);
        let stored = d.clone();
        self.0
            .db
            .committer()
            .write(move |txn| store::put_delivery(txn, &stored, None))
            .await?;
        Ok(d)
    }

    /// A page of a webhook's deliveries, newest first; the dead ones from the dead-letter
    /// index. A filtered page may be short when its reads ran out (see [`store::PAGE_READS`]).
    /// Read on the blocking pool: up to that many reads would hold up a serving thread.
    pub async fn deliveries(
        &self,
        org: &str,
        id: &str,
        status: Option<DeliveryStatus>,
        event: Option<String>,
        before: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Delivery>, Option<String>), WebhookError> {
        self.target(org, id)?;
        let listing = match status {
            Some(DeliveryStatus::Dead) => store::Listing::DeadLetters,
            _ => store::Listing::Every,
        };
        let (db, id) = (self.0.db.clone(), id.to_owned());
        let page = tokio::task::spawn_blocking(move || {
            store::page(&db, &id, listing, before.as_deref(), limit.max(1), |d| {
                status.is_none_or(|s| d.status == s)
                    && event.as_deref().is_none_or(|e| d.event == e)
            })
        })
        .await
        .map_err(|e| StorageError::Invalid(format!("the page read ended early: {e}")))??;
        Ok(page)
    }

    /// One delivery of a webhook, with its attempts and envelope.
    pub fn delivery(&self, org: &str, id: &str, delivery: &str) -> Result<Delivery, WebhookError> {
        self.target(org, id)?;
        store::delivery(&self.0.db, delivery)?
            .filter(|d| d.webhook_id == id)
            .ok_or_else(|| WebhookError::NotFound(format!("delivery {delivery} not found")))
    }

    /// Queues a finished delivery again as a new one.
    pub async fn replay(
        &self,
        org: &str,
        id: &str,
        delivery: &str,
    ) -> Result<Delivery, WebhookError> {
        let w = self.target(org, id)?;
        let original = self.delivery(org, id, delivery)?;
        if !original.status.is_finished() {
            return Err(WebhookError::Conflict(format!(
                "delivery {delivery} is still {}; replay it once it succeeded or went dead",
                status_name(original.status)
            )));
        }
        let mut replays = self.replay_all(&w, vec![original], Replay::Any).await?;
        // Only a delete racing the replay leaves nothing to answer.
        replays
            .pop()
            .ok_or_else(|| WebhookError::NotFound(format!("delivery {delivery} not found")))
    }

    /// Queues the webhook's dead deliveries not yet replayed, created in [since, until],
    /// oldest first, at most `limit`.
    pub async fn replay_dead(
        &self,
        org: &str,
        id: &str,
        since: Option<u64>,
        until: Option<u64>,
        limit: usize,
    ) -> Result<usize, WebhookError> {
        let w = self.target(org, id)?;
        let dead = store::dead(&self.0.db, id, limit, |d| {
            d.replayed_by.is_none()
                && d.event != "webhook.test"
                && since.is_none_or(|s| d.created_at >= s)
                && until.is_none_or(|u| d.created_at <= u)
        })?;
        Ok(self
            .replay_all(&w, dead, Replay::NotYetReplayed)
            .await?
            .len())
    }

    async fn replay_all(
        &self,
        w: &Webhook,
        originals: Vec<Delivery>,
        which: Replay,
    ) -> Result<Vec<Delivery>, WebhookError> {
        if originals.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::clock::now_ms();
        let ids: Vec<String> = originals.iter().map(|d| d.id.clone()).collect();
        let webhook_id = w.id.clone();
        let w = w.clone();
        let replays = self
            .0
            .db
            .committer()
            .write(move |txn| {
                let mut out = Vec::new();
                for id in ids {
                    // Read again inside the write: a concurrent replay wins once.
                    let Some(mut original) = store::delivery_in(txn, &id)? else {
                        continue;
                    };
                    // Bulk replays take each dead delivery once, even when two run at once.
                    if which == Replay::NotYetReplayed && original.replayed_by.is_some() {
                        continue;
                    }
                    let mut d = Delivery::new(
                        &w,
                        &original.event_id,
                        &original.event,
                        original.session_id.as_deref(),
                        original.envelope.clone(),
                        now,
                    );
                    d.replay_of = Some(original.id.clone());
                    original.replayed_by = Some(d.id.clone());
                    original.updated_at = now;
                    store::put_delivery(txn, &original, None)?;
                    store::put_delivery(txn, &d, None)?;
                    out.push(d);
                }
                Ok(out)
            })
            .await?;
        self.dispatcher(&webhook_id).wake();
        Ok(replays)
    }
}

/// Which of the given deliveries a replay queues again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Every one (replayDelivery: any finished delivery, again and again).
    Any,
    /// Those not replayed yet (replayDeadLetters).
    NotYetReplayed,
}

pub fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Retrying => "retrying",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Dead => "dead",
    }
}

fn base64_encode(key: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl Webhooks {
    /// One attempt's budget (`webhooks.timeout_ms`).
    pub fn attempt_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.config.timeout_ms)
    }
}
