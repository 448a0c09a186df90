//! Thread-per-core serving of the API listener.
//!
//! Each serving thread runs a current-thread runtime and a listening socket of its own,
//! all bound to the same address with `SO_REUSEPORT`, so the kernel spreads new
//! connections among them. A connection, and every request on it, is then served on one
//! thread from accept to answer, plugin call included: no request waits on a wake-up
//! from another thread, which on a multi-threaded runtime cost more CPU than the plugin
//! call itself. Work a request starts that outlives it goes to the app runtime
//! ([`crate::background`]).
//!
//! Shutdown: each thread stops accepting and drains its connections when the shutdown
//! signal turns ([`super::serve`]); its runtime then stays up, still driving realtime
//! streams upgraded from its connections, until [`ServingThreads::finish`].

use super::Response;
use super::server::{Listener, ServerLimits, connection_slots, serve};
use hyper::body::Incoming;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

pub struct ServingThreads {
    addr: SocketAddr,
    /// One per thread: its listener is closed and its connections are drained.
    drained: Vec<oneshot::Receiver<()>>,
    /// Turned to true to end the threads' runtimes.
    release: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ServingThreads {
    /// Binds `addr` once per thread (with port 0, every thread binds the port the first
    /// one got) and starts serving `service` on `threads` threads.
    pub fn start<S, F>(
        name: &'static str,
        addr: SocketAddr,
        threads: usize,
        limits: ServerLimits,
        service: Arc<S>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<ServingThreads>
    where
        S: Fn(http::Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let first = Listener::bind_shared(addr)?;
        let addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..threads.max(1) {
            sockets.push(Listener::bind_shared(addr)?);
        }
        // `max_connections` holds for the listener, not for each thread.
        let slots = connection_slots(&limits);
        let (release, released) = watch::channel(false);
        let mut serving = ServingThreads {
            addr,
            drained: Vec::new(),
            release,
            threads: Vec::new(),
        };
        for (i, socket) in sockets.into_iter().enumerate() {
            // A thread that runs out of work writes the access lines it held.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(crate::logs::held::hand_over)
                .build()?;
            let (drained, on_drained) = oneshot::channel();
            let (slots, service, shutdown, mut released) = (
                slots.clone(),
                service.clone(),
                shutdown.clone(),
                released.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    let _held = crate::logs::HeldLines::for_serving_thread();
                    runtime.block_on(async move {
                        match Listener::from_std(name, socket) {
                            Ok(listener) => serve(listener, limits, slots, service, shutdown).await,
                            Err(e) => tracing::error!(listener = name, error = %e, "cannot serve"),
                        }
                        let _ = drained.send(());
                        let _ = released.wait_for(|done| *done).await;
                    })
                })?;
            serving.drained.push(on_drained);
            serving.threads.push(thread);
        }
        Ok(serving)
    }

    /// The address every thread listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until every thread has closed its listener and drained its connections
    /// (after the shutdown signal).
    pub async fn drained(&mut self) {
        for thread in self.drained.drain(..) {
            let _ = thread.await;
        }
    }

    /// Ends the threads' runtimes (and the realtime streams still on them) and joins them.
    pub async fn finish(self) {
        let _ = self.release.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}
