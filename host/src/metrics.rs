//! Prometheus metrics: requests by route, status and plugin; latency histograms; plugin
//! faults; reloads; sessions by status; engine events and event deliveries; webhook
//! deliveries and attempts.

use crate::sessions::{SessionRegistry, SessionStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// From a closed set ([`method_label`]): a request cannot invent a series.
    pub method: &'static str,
    /// The route template, or `unmatched` — never the raw path, which would explode the
    /// series count. Shared strings: a request's labels cost no allocation.
    pub route: Arc<str>,
    pub status: u16,
    /// `host` or the plugin's name.
    pub plugin: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub route: Arc<str>,
    pub plugin: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub plugin: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub plugin: String,
    pub result: String,
}

/// The `method` label of a request: the methods HTTP defines, else `other`. Labels must
/// come from closed sets; a raw method (which a client can make up, kilobytes long) would
/// add a series per request and grow the registry without bound.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "other",
    }
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub plugin_faults: Family<FaultLabels, Counter>,
    pub reloads: Family<ResultLabels, Counter>,
    pub sessions: Family<StatusLabels, Gauge>,
    pub engine_events: Family<EventLabels, Counter>,
    pub event_deliveries: Family<DeliveryLabels, Counter>,
    pub events_queued: Gauge,
    /// Webhook deliveries recorded (one per matching webhook and event).
    pub webhook_deliveries: Counter,
    /// Webhook attempts by result: `succeeded`, `timeout`, `connect`, `tls`,
    /// `blocked_address`, `redirect`, `http_4xx`, `http_5xx`.
    pub webhook_attempts: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        // 50 µs to ~13 s in ×2 steps: plugin calls are sub-millisecond, live calls seconds.
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 19))
        });
        let plugin_faults = Family::<FaultLabels, Counter>::default();
        let reloads = Family::<ResultLabels, Counter>::default();
        let sessions = Family::<StatusLabels, Gauge>::default();
        let engine_events = Family::<EventLabels, Counter>::default();
        let event_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests by method, route template, status and serving plugin",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by route template and plugin",
            latency.clone(),
        );
        registry.register(
            "plugin_faults",
            "Plugin calls that trapped, timed out, ran out of memory or found no capacity",
            plugin_faults.clone(),
        );
        registry.register(
            "plugin_reloads",
            "Plugin reloads by result (ok, refused)",
            reloads.clone(),
        );
        registry.register("sessions", "Sessions by status", sessions.clone());
        registry.register(
            "engine_events",
            "Events published by the WhatsApp engines, by event name",
            engine_events.clone(),
        );
        registry.register(
            "plugin_event_deliveries",
            "Events delivered to plugins, by plugin and result",
            event_deliveries.clone(),
        );
        let events_queued = Gauge::default();
        registry.register(
            "events_queued",
            "Events waiting in the per-session delivery queues",
            events_queued.clone(),
        );
        let webhook_deliveries = Counter::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries recorded (an event matching a webhook)",
            webhook_deliveries.clone(),
        );
        let webhook_attempts = Family::<ResultLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by result",
            webhook_attempts.clone(),
        );
        Metrics {
            events_queued,
            webhook_deliveries,
            webhook_attempts,
            registry: Mutex::new(registry),
            requests,
            latency,
            plugin_faults,
            reloads,
            sessions,
            engine_events,
            event_deliveries,
        }
    }

    /// The Prometheus text exposition, with session gauges refreshed first.
    pub fn render(&self, sessions: &SessionRegistry, events_queued: usize) -> String {
        self.events_queued.set(events_queued as i64);
        let counts = sessions.count_by_status();
        for s in SessionStatus::ALL {
            self.sessions
                .get_or_create(&StatusLabels {
                    status: s.as_str().to_owned(),
                })
                .set(counts.get(&s).copied().unwrap_or(0) as i64);
        }
        let mut out = String::new();
        let registry = self.registry.lock().expect("lock");
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
