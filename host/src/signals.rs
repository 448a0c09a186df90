//! Process signals: SIGTERM and SIGINT drain and stop the gateway, SIGHUP reloads plugins.
//! They are registered once, before the gateway announces itself, so a signal sent the
//! moment it is listening is handled rather than killing it.

#[cfg(unix)]
pub(crate) type SignalStream = tokio::signal::unix::Signal;
#[cfg(not(unix))]
pub(crate) type SignalStream = ();

/// The process signals the gateway answers, registered once at start-up.
pub(crate) struct Signals {
    pub(crate) terminate: Option<SignalStream>,
    pub(crate) interrupt: Option<SignalStream>,
    pub(crate) hangup: Option<SignalStream>,
}

impl Signals {
    #[cfg(unix)]
    pub(crate) fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: Some(signal(SignalKind::terminate())?),
            interrupt: Some(signal(SignalKind::interrupt())?),
            hangup: Some(signal(SignalKind::hangup())?),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn install() -> anyhow::Result<Self> {
        Ok(Self {
            terminate: None,
            interrupt: None,
            hangup: None,
        })
    }
}

/// Waits for SIGTERM, SIGINT or a requested shutdown (`rx` turning true).
pub(crate) async fn wait_for_shutdown(
    mut rx: tokio::sync::watch::Receiver<bool>,
    terminate: Option<SignalStream>,
    interrupt: Option<SignalStream>,
) {
    let admin = async move {
        while rx.changed().await.is_ok() {
            if *rx.borrow() {
                return;
            }
        }
    };
    #[cfg(unix)]
    {
        let (Some(mut term), Some(mut int)) = (terminate, interrupt) else {
            return admin.await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
            _ = admin => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (terminate, interrupt);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = admin => {}
        }
    }
}
