//! Delivers queued events to the plugins that subscribe: a few workers take sessions in
//! turn from the [`EventBus`], so each plugin sees a session's events in publication order
//! and no session waits behind another's flood. The same workers record each event's
//! webhook deliveries, so those too are queued in order, and an event leaves the inbound
//! journal only once they are on disk.

use super::inbox::Inbox;
use super::{EventBus, EventEnvelope};
use crate::hostapi::{CallContext, wit};
use crate::metrics::{DeliveryLabels, Metrics};
use crate::plugins::PluginRegistry;
use crate::webhooks::Webhooks;
use std::sync::Arc;

/// Sessions delivered at once: enough that a slow plugin call for one session does not
/// stall the others, few enough to leave the cores to requests.
const WORKERS: usize = 4;

/// Starts the workers; events from the inbound journal are forgotten there once
/// delivered.
pub fn spawn(
    plugins: Arc<PluginRegistry>,
    metrics: Arc<Metrics>,
    bus: EventBus,
    inbox: Inbox,
    webhooks: Webhooks,
) {
    for _ in 0..WORKERS {
        let (plugins, metrics, bus, inbox, webhooks) = (
            plugins.clone(),
            metrics.clone(),
            bus.clone(),
            inbox.clone(),
            webhooks.clone(),
        );
        crate::background::spawn(async move {
            loop {
                let ev = bus.next().await;
                deliver(&plugins, &metrics, &ev).await;
                // Queued now, in the session's order; durable a little later.
                let recorded = webhooks.record(&ev);
                bus.done(&ev);
                let inbox = inbox.clone();
                crate::background::spawn(async move {
                    match recorded.await {
                        Ok(_) => {
                            if let Some(seq) = ev.journal {
                                inbox.delivered(&ev.session, seq);
                            }
                        }
                        // Left in the journal: replayed to every subscriber at the next start.
                        Err(e) => {
                            tracing::error!(event = %ev.event, id = %ev.id, error = %e, "cannot record webhook deliveries")
                        }
                    }
                });
            }
        });
    }
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
            event_depth: ev.depth,
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
