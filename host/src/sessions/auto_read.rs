//! The session flag `autoRead` (API.md §5): the gateway marks incoming messages read by
//! itself — WhatsApp gets the read receipts (blue ticks) and the chat's unread count stays
//! 0, told to the chat store as a `chats.update` after the message.

use super::SessionManager;
use crate::engines::MessageRef;
use crate::events::EventEnvelope;
use gateway_sdk::Jid;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long one read receipt may take before it is given up (the message stays unread on
/// the phone; the gateway's view is still read).
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Watches every session's events for incoming messages of sessions with `autoRead`.
pub fn spawn(manager: Arc<SessionManager>) {
    let mut events = manager.events().subscribe();
    crate::background::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "autoRead fell behind the events; some messages stay unread"
                    );
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            if let Some((chat, message)) = incoming(&manager, &ev) {
                mark_read(&manager, &ev, chat, message).await;
            }
        }
    });
}

/// The chat and reference of an incoming message of a session with `autoRead`.
fn incoming(manager: &SessionManager, ev: &EventEnvelope) -> Option<(Jid, MessageRef)> {
    if ev.event != "message" || ev.payload["fromMe"].as_bool() != Some(false) {
        return None;
    }
    if !manager.registry().get(&ev.session)?.auto_read {
        return None;
    }
    let chat = ev.payload["chat"].as_str()?;
    let id = ev.payload["id"].as_str()?;
    let jid = Jid::parse(chat).ok()?;
    let sender = (ev.payload["isGroup"].as_bool() == Some(true))
        .then(|| ev.payload["sender"].as_str().map(str::to_owned))
        .flatten();
    Some((
        jid,
        MessageRef {
            chat: chat.to_owned(),
            id: id.to_owned(),
            sender,
        },
    ))
}

async fn mark_read(manager: &SessionManager, ev: &EventEnvelope, chat: Jid, message: MessageRef) {
    let engine = manager.engine().clone();
    let sent = tokio::time::timeout(
        RECEIPT_TIMEOUT,
        engine.mark_read(&ev.session, &chat, std::slice::from_ref(&message)),
    )
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::info!(session = %ev.session, id = %message.id, error = %e, "autoRead: read receipt not sent")
        }
        Err(_) => {
            tracing::info!(session = %ev.session, id = %message.id, "autoRead: read receipt timed out")
        }
    }
    manager.events().publish(EventEnvelope::new(
        "chats.update",
        &ev.session,
        &ev.organization,
        json!({"jid": message.chat, "unreadCount": 0, "source": "auto_read"}),
    ));
}
