//! The hyper server loop shared by the API and admin listeners: HTTP/1.1 and HTTP/2,
//! header-size and header-read-time limits, connection reuse only when it is safe, and
//! graceful shutdown that lets requests in flight finish.

use super::Response;
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
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
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

/// Serves connections until `shutdown` turns true, then waits up to the grace period for
/// open requests to finish.
pub async fn serve<S, F>(
    listener: Listener,
    limits: ServerLimits,
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
        .max_header_list_size(limits.read_buffer_bytes as u32);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.tcp.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(listener = listener.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let close = CloseOnError::for_request(&req);
                    let fut = service(req, peer);
                    async move { Ok::<_, std::convert::Infallible>(close.apply(fut.await)) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
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
