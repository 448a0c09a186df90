//! The backstop deadline of every plugin call. The epoch deadline interrupts a plugin's
//! own code, but not a plugin waiting in a host call (a WASI sleep, a slow host future):
//! there no wasm runs to be interrupted. A call that goes pending registers its waker and
//! deadline here; the epoch thread wakes it once the deadline has passed, and the call then
//! ends as a timeout (its instance is discarded). Calls that never wait — most of them —
//! pay nothing but a clock read: no timer is armed per call.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// When a plugin call must end; shared by the epoch callback, the watchdog and the host
/// calls, and moved by a host call that legitimately waits longer (a sync send re-arms it).
#[derive(Debug, Clone)]
pub struct CallDeadline(Arc<AtomicU64>);

/// The instant deadlines count from.
fn epoch() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl CallDeadline {
    pub fn new(at: Instant) -> CallDeadline {
        let d = CallDeadline(Arc::new(AtomicU64::new(0)));
        d.set(at);
        d
    }

    pub fn get(&self) -> Instant {
        epoch() + Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, at: Instant) {
        let micros = at.saturating_duration_since(epoch()).as_micros() as u64;
        self.0.store(micros, Ordering::Relaxed);
    }
}

/// Pending calls with their deadlines.
#[derive(Default)]
pub(crate) struct Watchdog {
    waiting: Mutex<HashMap<u64, (CallDeadline, Waker)>>,
    next_id: AtomicU64,
}

impl Watchdog {
    /// Wakes every registered call whose deadline has passed (run on each epoch tick).
    pub(crate) fn tick(&self) {
        let now = Instant::now();
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for (deadline, waker) in waiting.values() {
            if deadline.get() <= now {
                waker.wake_by_ref();
            }
        }
    }

    /// Calls waiting right now (for tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Runs `call` until it finishes or `deadline` passes.
    pub(crate) fn bound<F: Future>(&self, deadline: CallDeadline, call: F) -> Bounded<'_, F> {
        Bounded {
            call,
            deadline,
            watchdog: self,
            id: None,
        }
    }

    fn register(&self, id: &mut Option<u64>, deadline: &CallDeadline, waker: &Waker) {
        let key = *id.get_or_insert_with(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get_mut(&key) {
            Some((_, w)) if w.will_wake(waker) => {}
            _ => {
                waiting.insert(key, (deadline.clone(), waker.clone()));
            }
        }
    }

    fn unregister(&self, id: &mut Option<u64>) {
        if let Some(key) = id.take() {
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
    }
}

/// The call passed its deadline while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overdue;

pin_project_lite::pin_project! {
    /// A call bounded by a deadline; see [`Watchdog::bound`].
    pub(crate) struct Bounded<'a, F> {
        #[pin]
        call: F,
        deadline: CallDeadline,
        watchdog: &'a Watchdog,
        id: Option<u64>,
        }
    impl<F> PinnedDrop for Bounded<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.watchdog.unregister(this.id);
        }
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Result<F::Output, Overdue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if Instant::now() >= this.deadline.get() {
            this.watchdog.unregister(this.id);
            return Poll::Ready(Err(Overdue));
        }
        match this.call.poll(cx) {
            Poll::Ready(v) => {
                this.watchdog.unregister(this.id);
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                this.watchdog.register(this.id, this.deadline, cx.waker());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_call_ends_at_its_deadline_and_a_quick_one_is_untouched() {
        let dog = Arc::new(Watchdog::default());
        let ticker = {
            let dog = dog.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    dog.tick();
                }
            })
        };
        let started = Instant::now();
        // A future that never wakes by itself: only the watchdog can end it.
        let stuck = dog
            .bound(
                CallDeadline::new(started + Duration::from_millis(100)),
                std::future::pending::<()>(),
            )
            .await;
        assert_eq!(stuck, Err(Overdue));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(dog.waiting(), 0);
        let quick = dog
            .bound(
                CallDeadline::new(Instant::now() + Duration::from_secs(5)),
                async { 7 },
            )
            .await;
        assert_eq!(quick, Ok(7));
        assert_eq!(dog.waiting(), 0);
        ticker.abort();
    }
}
