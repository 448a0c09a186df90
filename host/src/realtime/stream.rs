//! One open stream, after the 101: sends the replayed frames then the live ones, pings
//! the client, and closes the stream when the client goes quiet, falls too far behind
//! (4008), loses its credential (4001) or the gateway shuts down (1001). Frames the client
//! sends are read only to notice pongs and a close; their content is ignored.

use super::{Kick, Subscription};
use crate::config::RealtimeConfig;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// Close codes of API.md §7.4.
pub(crate) const CLOSE_CREDENTIAL: u16 = 4001;
pub(crate) const CLOSE_TOO_SLOW: u16 = 4008;

/// The largest frame a client may send: clients have nothing to say but pongs and close,
/// so anything large is refused by the protocol layer rather than buffered.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// How long the closing handshake may take before the connection is just dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Why the gateway ends a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed, vanished or broke the protocol: nothing more to say.
    Client,
    Close(u16, &'static str),
}

/// Serves a stream once the upgrade completes; returns when it is over.
pub(crate) async fn serve(upgrade: OnUpgrade, mut sub: Subscription, config: RealtimeConfig) {
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "realtime upgrade failed");
            return;
        }
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let mut ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
            .await;
    tracing::info!(org = %sub.audience, principal = %sub.principal, "realtime stream opened");
    let end = run(&mut ws, &mut sub, &config).await;
    if let End::Close(code, reason) = end {
        close(&mut ws, code, reason).await;
    }
    tracing::info!(org = %sub.audience, principal = %sub.principal, ?end, "realtime stream closed");
}

async fn run(ws: &mut Socket, sub: &mut Subscription, config: &RealtimeConfig) -> End {
    let ping_every = Duration::from_millis(config.ping_interval_ms);
    let pong_timeout = Duration::from_millis(config.pong_timeout_ms);
    let auth_every = Duration::from_millis(config.auth_check_ms);
    let mut ping = interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut auth = interval_at(Instant::now() + auth_every, auth_every);
    auth.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shutdown = sub.shutdown_signal();
    let mut heard = Instant::now();
    loop {
        if *shutdown.borrow() {
            return End::Close(1001, "the gateway is shutting down");
        }
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return End::Close(1001, "the gateway is shutting down");
                }
            }
            changed = sub.kick.changed() => {
                if *sub.kick.borrow() == Some(Kick::TooSlow) {
                    return End::Close(CLOSE_TOO_SLOW, "too many unsent frames: read faster or filter more");
                }
                if changed.is_err() {
                    // The hub dropped the stream without a reason: nothing will come.
                    return End::Close(1011, "the stream ended");
                }
            }
            _ = auth.tick() => {
                if !sub.credential_holds() {
                    return End::Close(CLOSE_CREDENTIAL, "the credential that opened this stream was revoked or has expired");
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > pong_timeout {
                    return End::Close(1001, "no pong");
                }
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    return End::Client;
                }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Client,
                // Pongs prove the client is there; pings are answered by the protocol
                // layer; text and binary frames are ignored (API.md §7.4).
                Some(Ok(_)) => heard = Instant::now(),
            },
            frame = next_frame(&mut sub.replay, &mut sub.frames) => match frame {
                Some(text) => {
                    if ws.send(Message::Text(text)).await.is_err() {
                        return End::Client;
                    }
                }
                None => return End::Close(1011, "the stream ended"),
            },
        }
    }
}

/// The next frame: replayed ones first, then the live queue. Cancel-safe: a replayed
/// frame is taken only in the poll that returns it.
async fn next_frame(
    replay: &mut VecDeque<Utf8Bytes>,
    live: &mut mpsc::Receiver<Utf8Bytes>,
) -> Option<Utf8Bytes> {
    if let Some(text) = replay.pop_front() {
        return Some(text);
    }
    live.recv().await
}

/// Sends a close frame and waits (briefly) for the client's, reading and dropping
/// whatever else arrives meanwhile.
async fn close(ws: &mut Socket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let closing = async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
}
