//! The hyper server loop shared by the API and admin listeners: HTTP/1.1 and HTTP/2,
//! header-size and header-read-time limits, connection reuse only when it is safe, and
//! graceful shutdown that lets requests in flight finish.
//!
//! A connection has to earn its file descriptor, as in hardened proxies: the listener
//! holds at most `max_connections` at once; a connection must show which protocol it
//! speaks within the header read timeout (a byte that could start the HTTP/2 preface is
//! not enough); afterwards it is closed when it stays silent for the idle timeout or when
//! a write to a client that stopped reading stalls for the write timeout.
//!
//! A bug in the gateway that panics while answering costs that one request a 500 envelope,
//! not the connection (and every request pipelined or multiplexed on it).

use super::Response;
use super::envelope::error_response;
use futures::FutureExt;
use gateway_sdk::ApiError;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// hyper's read buffer; a request head larger than this is refused by hyper itself
    /// (431 without a body), so it is set well above the envelope-answered header limit.
    pub read_buffer_bytes: usize,
    /// Time for a request head to arrive, and for a new connection to show its protocol.
    pub header_read_timeout: Duration,
    /// A connection that sends nothing for this long is closed (between requests, or a
    /// peer gone silent).
    pub idle_timeout: Duration,
    /// A write that cannot make progress for this long (the client stopped reading)
    /// closes the connection.
    pub write_timeout: Duration,
    /// Connections held at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// The client preface every HTTP/2 connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How often a connection that sent part of the HTTP/2 preface is looked at again.
const PREFACE_POLL: Duration = Duration::from_millis(10);

/// Waits until the connection's first bytes tell HTTP/1 from HTTP/2, within `timeout`.
/// False when the peer closes, errs or dawdles: the connection is then dropped before
/// hyper holds it (hyper's own head timeout only starts once the protocol is known).
async fn shows_its_protocol(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                if n == buf.len() || buf[..n] != H2_PREFACE[..n] {
                    return true;
                }
            }
            _ => return false,
        }
        // Part of the preface: the rest normally follows in the same packet.
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(PREFACE_POLL.min(deadline - tokio::time::Instant::now())).await;
    }
}

/// A bound listener.
pub struct Listener {
    pub name: &'static str,
    pub tcp: TcpListener,
}

impl Listener {
    pub async fn bind(name: &'static str, addr: SocketAddr) -> std::io::Result<Listener> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Listener { name, tcp })
    }

    /// A listening socket on `addr` that other sockets may bind too (`SO_REUSEPORT`: the
    /// kernel spreads new connections among them), not yet tied to a runtime.
    pub fn bind_shared(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    }

    /// Serves `socket` (from [`Listener::bind_shared`]) on the current runtime.
    pub fn from_std(
        name: &'static str,
        socket: std::net::TcpListener,
    ) -> std::io::Result<Listener> {
        Ok(Listener {
            name,
            tcp: TcpListener::from_std(socket)?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// An error answered to an HTTP/1 request that carried a body ends the connection, and
/// says so with `Connection: close`. Such answers (401, 403, 404, 413, 408…) are often given
/// before the body was read; hyper then cannot reuse the connection and closes it, and a
/// client not told so may send its next request into a closing socket.
#[derive(Clone, Copy)]
struct CloseOnError(bool);

impl CloseOnError {
    fn for_request(req: &http::Request<Incoming>) -> Self {
        let carries_body = !hyper::body::Body::is_end_stream(req.body());
        Self(carries_body && req.version() <= http::Version::HTTP_11)
    }

    fn apply(self, mut resp: Response) -> Response {
        let status = resp.status();
        if self.0 && (status.is_client_error() || status.is_server_error()) {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// Runs the request's future; a panic inside it is logged and answered as `internal`.
async fn answer_even_if_it_panics(fut: impl Future<Output = Response>) -> Response {
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a request panicked inside the gateway");
            error_response(&ApiError::internal("the request failed inside the gateway"))
        }
    }
}

/// Takes a connection slot, then accepts; `None` after a failed accept (out of file
/// descriptors and the like), which backs off briefly.
async fn accept_within(
    listener: &Listener,
    slots: &Arc<tokio::sync::Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.tcp.accept().await {
        Ok((stream, peer)) => Some((stream, peer, slot)),
        Err(e) => {
            tracing::warn!(listener = listener.name, error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// The connection slots of a listener: `max_connections`, shared by all the threads that
/// serve it.
pub fn connection_slots(limits: &ServerLimits) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)))
}

/// Serves connections, each holding one of `slots`, until `shutdown` turns true, then
/// waits up to the grace period for open requests to finish.
pub async fn serve<S, F>(
    listener: Listener,
    limits: ServerLimits,
    slots: Arc<tokio::sync::Semaphore>,
    service: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Fn(http::Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.read_buffer_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.read_buffer_bytes as u32)
        // Streams one client may have open at once on one connection.
        .max_concurrent_streams(256);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = accept_within(&listener, &slots) => accepted,
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
                continue;
            }
        };
        let Some((stream, peer, slot)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let close = CloseOnError::for_request(&req);
            // Boxed: a request's future is kilobytes and hyper moves the one it is given
            // several times before polling it; a box moves as a pointer.
            let fut = answer_even_if_it_panics(Box::pin(service(req, peer)));
            async move { Ok::<_, std::convert::Infallible>(close.apply(fut.await)) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            if !shows_its_protocol(&stream, limits.header_read_timeout).await {
                return;
            }
            let mut io = tokio_io_timeout::TimeoutStream::new(stream);
            io.set_read_timeout(Some(limits.idle_timeout));
            io.set_write_timeout(Some(limits.write_timeout));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(Box::pin(io)), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("listener closed; waiting for requests in flight");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("grace period over; closing remaining connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends `path` on one keep-alive connection and reads one answer's head and body.
    async fn get(conn: &mut tokio::net::TcpStream, path: &str) -> (u16, String) {
        let req = format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n");
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the connection closed: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    let status = head[9..12].parse().unwrap();
                    return (status, body[..len].to_owned());
                }
            }
        }
    }

    #[tokio::test]
    async fn a_request_that_panics_gets_a_500_envelope_and_the_connection_lives_on() {
        let listener = Listener::bind("test", "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServerLimits {
            read_buffer_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_connections: 4,
            shutdown_grace: Duration::from_secs(1),
        };
        let service = Arc::new(
            |req: http::Request<Incoming>, _peer: SocketAddr| async move {
                if req.uri().path() == "/boom" {
                    panic!("a bug");
                }
                super::super::envelope::json_response(200, &serde_json::json!({"ok": true}))
            },
        );
        let (stop, stopped) = watch::channel(false);
        let slots = connection_slots(&limits);
        let server = tokio::spawn(serve(listener, limits, slots, service, stopped));

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (status, body) = get(&mut conn, "/boom").await;
        assert_eq!(status, 500);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert_eq!(
            body["error"]["message"],
            "the request failed inside the gateway"
        );
        // The same connection serves the next request.
        let (status, body) = get(&mut conn, "/fine").await;
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"ok":true}"#);

        stop.send(true).unwrap();
        drop(conn);
        server.await.unwrap();
    }
}
