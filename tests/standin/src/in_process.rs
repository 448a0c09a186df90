//! An in-process transport for whatsapp-rust: every `create_transport()` opens a fresh
//! stand-in connection over channels, with no sockets, for tests that do not need the
//! real WebSocket stack.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};
use wacore::net::{DisconnectReason, Transport, TransportEvent, TransportFactory};

use crate::connection;
use crate::server::Shared;
use crate::wire::Wire;

/// A `TransportFactory` that connects straight to a stand-in server.
#[derive(Clone)]
pub struct InProcessTransportFactory {
    pub(crate) shared: Arc<Shared>,
    pub(crate) runtime: tokio::runtime::Handle,
}

struct InProcessTransport {
    to_server: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn send(&self, data: Bytes) -> Result<(), anyhow::Error> {
        let guard = self.to_server.lock().await;
        let sender = guard
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("transport closed"))?;
        sender
            .send(data.to_vec())
            .await
            .map_err(|_| anyhow::anyhow!("stand-in connection closed"))
    }

    async fn disconnect(&self) {
        self.to_server.lock().await.take();
    }
}

#[async_trait]
impl TransportFactory for InProcessTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), anyhow::Error> {
        let (wire, end) = Wire::pair();
        self.runtime
            .spawn(connection::serve(self.shared.clone(), wire));
        let (events, receiver) = async_channel::bounded(64);
        let _ = events.try_send(TransportEvent::Connected);
        let mut from_server = end.from_server;
        self.runtime.spawn(async move {
            while let Some(bytes) = from_server.recv().await {
                if events
                    .send(TransportEvent::DataReceived(Bytes::from(bytes)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = events
                .send(TransportEvent::Disconnected(DisconnectReason::StreamEnded))
                .await;
        });
        Ok((
            Arc::new(InProcessTransport {
                to_server: Mutex::new(Some(end.to_server)),
            }),
            receiver,
        ))
    }
}
