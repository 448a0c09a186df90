//! Reload triggers besides the admin API and CLI: SIGHUP, and changes in the plugin
//! directory (debounced, so a file being copied is read once it is complete).

use crate::app::App;
use crate::signals::SignalStream;
use notify::{RecursiveMode, Watcher};
use std::sync::Arc;
use std::time::Duration;

/// `hangup` is the SIGHUP stream registered at start-up (before the gateway announced
/// itself), so a SIGHUP sent as soon as it is listening reloads instead of killing it.
pub fn spawn_triggers(app: Arc<App>, hangup: Option<SignalStream>) {
    #[cfg(unix)]
    if let Some(mut hup) = hangup {
        let app = app.clone();
        crate::background::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading plugins");
                app.reload_plugins().await;
            }
        });
    }
    if app.config.plugins.watch {
        spawn_watcher(app);
    }
}

fn spawn_watcher(app: Arc<App>) {
    let dir = app.plugins.dir().to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !matches!(ev.kind, notify::EventKind::Access(_))
            {
                let _ = tx.send(());
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the plugin directory; use SIGHUP or the admin API to reload");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the plugin directory; use SIGHUP or the admin API to reload");
        return;
    }
    let quiet = Duration::from_millis(app.config.plugins.watch_debounce_ms);
    crate::background::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            // Wait until the directory has been quiet for the debounce period.
            loop {
                match tokio::time::timeout(quiet, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            tracing::info!(dir = %dir.display(), "plugin directory changed: reloading");
            app.reload_plugins().await;
        }
    });
}
