//! The app runtime, where work that outlives a request runs.
//!
//! API requests are served on per-core threads (`http::per_core`), each with a runtime of
//! its own that should do nothing but serve its connections and that ends at shutdown. A
//! task a request handler started with `tokio::spawn` would land there: a session's run,
//! an outbox dispatcher, a webhook delivery. So host code starts such work with
//! [`spawn`], which puts it on the app runtime; only connection tasks (and the realtime
//! streams they upgrade to) use `tokio::spawn`. Outside `gateway serve` (unit tests)
//! there is one runtime and [`spawn`] is `tokio::spawn`.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

static APP_RUNTIME: OnceLock<Handle> = OnceLock::new();

/// Makes `handle` the runtime [`spawn`] uses (once, when `gateway serve` starts).
pub fn set_app_runtime(handle: Handle) {
    let _ = APP_RUNTIME.set(handle);
}

/// Starts `task` on the app runtime.
pub fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match APP_RUNTIME.get() {
        Some(app) => app.spawn(task),
        None => tokio::spawn(task),
    }
}

/// Runs `call` on the app runtime and waits for its result: for calls into code the
/// gateway does not own that start long-lived tasks of their own with `tokio::spawn`
/// (the WhatsApp client). Dropping the returned future cancels `call`, as dropping
/// `call` itself would.
pub async fn run<F>(call: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    struct AbortOnDrop<T>(JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(spawn(call));
    match (&mut task.0).await {
        Ok(output) => output,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only this future aborts the task, and only once it is dropped.
            Err(e) => unreachable!("the call was cancelled: {e}"),
        },
    }
}
