//! What the feature scenarios share: a running whatsapp-rust client with every event it
//! emitted kept, linking it by QR, and opt-in logging.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use wa_standin::{Jid, StandIn};
use wacore::store::InMemoryBackend;
use wacore::types::events::Event;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Logs to stderr when `STANDIN_LOG` names a level (e.g. `STANDIN_LOG=debug`).
struct StderrLog(log::LevelFilter);

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.0
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "[{:5} {}] {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }
    fn flush(&self) {}
}

pub(crate) fn init_logging() {
    let level = std::env::var("STANDIN_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Off);
    if log::set_logger(Box::leak(Box::new(StderrLog(level)))).is_ok() {
        log::set_max_level(level);
    }
}

/// A running client and every event it emitted.
pub(crate) struct Session {
    pub(crate) handle: BotHandle,
    pub(crate) client: Arc<whatsapp_rust::Client>,
    events: mpsc::UnboundedReceiver<Arc<Event>>,
    seen: Vec<Arc<Event>>,
}

/// Which transport a client dials the stand-in with.
pub(crate) enum Dial {
    WebSocket,
    InProcess,
}

pub(crate) async fn start_client(standin: &StandIn, dial: Dial) -> Session {
    let (tx, events) = mpsc::unbounded_channel();
    let builder = Bot::builder()
        .with_backend(InMemoryBackend::new())
        .with_version((2, 3000, 0))
        .on_event(move |event, _client| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        });
    let bot = match dial {
        Dial::WebSocket => builder
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(standin.url()))
            .build()
            .await
            .expect("the bot builds"),
        Dial::InProcess => builder
            .with_transport_factory(standin.in_process_transport())
            .build()
            .await
            .expect("the bot builds"),
    };
    let client = bot.client();
    Session {
        handle: bot.spawn(),
        client,
        events,
        seen: Vec::new(),
    }
}

impl Session {
    /// The first new event `pick` accepts; every event is kept for [`Self::seen_or_wait`].
    pub(crate) async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("event channel closed");
            self.seen.push(event.clone());
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    /// Like [`Self::wait_for`], but an event emitted earlier counts too.
    pub(crate) async fn seen_or_wait<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        if let Some(found) = self.seen.iter().find_map(|e| pick(e)) {
            return found;
        }
        self.wait_for(what, pick).await
    }

    pub(crate) async fn stop(self) {
        self.client.disconnect().await;
        self.handle.shutdown().await;
    }
}

/// Link a fresh client by QR as `phone`; returns its device JID once it is Connected.
pub(crate) async fn link_by_qr(
    standin: &StandIn,
    session: &mut Session,
    phone: &str,
    name: &str,
) -> Jid {
    let qr = session
        .wait_for("a QR code", |e| match e {
            Event::PairingQrCode(qr) => Some(qr.code.clone()),
            _ => None,
        })
        .await;
    let device = standin
        .scan_qr_async(&qr, phone, name)
        .await
        .expect("the phone links the device");
    session
        .wait_for("Connected", |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await;
    standin
        .wait_connected_async(&device, WAIT)
        .await
        .expect("the device is online");
    device
}

pub(crate) fn text_of(message: &waproto::whatsapp::Message) -> Option<String> {
    message.conversation.clone().or_else(|| {
        message
            .extended_text_message
            .as_option()
            .and_then(|m| m.text.clone())
    })
}
