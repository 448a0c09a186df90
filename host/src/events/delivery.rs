//! Delivers published events to the plugins that subscribe, in order per session: events
//! are spread over a few lanes by session, and each lane delivers one at a time.

use super::EventEnvelope;
use crate::hostapi::{CallContext, wit};
use crate::metrics::{DeliveryLabels, Metrics};
use crate::plugins::PluginRegistry;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Parallel delivery lanes; a session's events always use the same lane, so each plugin
/// sees a session's events in publication order.
const LANES: usize = 4;

pub fn spawn(
    plugins: Arc<PluginRegistry>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Arc<EventEnvelope>>,
) {
    let mut lanes = Vec::with_capacity(LANES);
    for _ in 0..LANES {
        let (tx, mut lane_rx) = mpsc::unbounded_channel::<Arc<EventEnvelope>>();
        let plugins = plugins.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            while let Some(ev) = lane_rx.recv().await {
                deliver(&plugins, &metrics, &ev).await;
            }
        });
        lanes.push(tx);
    }
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            ev.session.hash(&mut h);
            let lane = (h.finish() as usize) % LANES;
            let _ = lanes[lane].send(ev);
        }
    });
}

async fn deliver(plugins: &PluginRegistry, metrics: &Metrics, ev: &EventEnvelope) {
    let catalog = plugins.catalog();
    let subscribers: Vec<_> = catalog.subscribers(&ev.event).cloned().collect();
    if subscribers.is_empty() {
        return;
    }
    let event = wit::Event {
        id: ev.id.clone(),
        name: ev.event.clone(),
        session: ev.session.clone(),
        organization: ev.organization.clone(),
        timestamp: ev.timestamp,
        payload: ev.payload.to_string(),
    };
    for plugin in subscribers {
        let ctx = CallContext {
            organization: Arc::from(ev.organization.as_str()),
            principal: "event".into(),
            created_by: "event".into(),
            capabilities: Default::default(),
            session: Some(ev.session.clone()),
            request_id: ev.id.clone(),
        };
        let result = match plugin.on_event(ctx, &event).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(plugin = plugin.name(), event = %ev.event, id = %ev.id, code = ?e.code, message = %e.message, "plugin refused event");
                "error"
            }
            Err(fault) => {
                tracing::error!(plugin = plugin.name(), event = %ev.event, id = %ev.id, kind = fault.kind(), error = %fault, "plugin failed on event");
                "fault"
            }
        };
        metrics
            .event_deliveries
            .get_or_create(&DeliveryLabels {
                plugin: plugin.name().to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }
}
