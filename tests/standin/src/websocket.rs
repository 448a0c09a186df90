//! The loopback WebSocket front door: accepts `ws://127.0.0.1:P/ws/chat` upgrades (the real
//! `whatsapp-rust-tokio-transport` dials it) and pumps binary messages to and from a
//! [`Wire`].

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_websockets::{CloseCode, Message, ServerBuilder};

use crate::connection;
use crate::server::Shared;
use crate::wire::Wire;

/// Accept connections until the runtime shuts down.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, shared.clone()));
            }
            Err(e) => {
                log::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (_request, websocket) = match ServerBuilder::new().accept(stream).await {
        Ok(accepted) => accepted,
        Err(e) => {
            log::debug!("websocket upgrade failed: {e}");
            return;
        }
    };
    let (wire, mut end) = Wire::pair();
    tokio::spawn(connection::serve(shared, wire));
    let (mut sink, mut stream) = websocket.split();
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(message)) if message.is_binary() => {
                    let bytes = bytes::Bytes::from(message.into_payload()).to_vec();
                    if end.to_server.send(bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(message)) if message.is_close() => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    log::debug!("websocket read failed: {e}");
                    break;
                }
                None => break,
            },
            outgoing = end.from_server.recv() => match outgoing {
                Some(bytes) => {
                    if sink.send(Message::binary(bytes)).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = sink.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), "")).await;
                    break;
                }
            },
        }
    }
    // Dropping `end.to_server` ends the connection task's reads.
}
