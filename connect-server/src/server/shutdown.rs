//! The signals the server answers, and how it stops: SIGINT and SIGTERM
//! start the sequence that follows (health `NOT_SERVING`, the lame duck, the
//! drain, the grace, the hard stop); SIGHUP reloads the TLS files and the
//! token (`reload`) instead of ending the process, its default action.

use std::future::Future;

use super::Shared;

/// Resolves when the process receives Ctrl-C (SIGINT) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The SIGHUPs the process receives from the moment it is installed, which
/// then no longer end the process. Signals that arrive while one is being
/// handled are coalesced into one.
#[derive(Debug)]
pub(super) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Installs the handler; where it cannot be, SIGHUP keeps its default action.
    pub(super) fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|error| tracing::error!(%error, "cannot listen for SIGHUP"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the next SIGHUP; never where there is no handler.
    pub(super) async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Waits for `signal`, starts the drain, and ends the remaining calls once
/// the grace is over. Resolves when the server has stopped.
pub(super) async fn after(shared: &Shared, signal: impl Future<Output = ()>) {
    tokio::select! {
        () = signal => {}
        // Already stopped: nothing left to drain.
        () = shared.hard_stop.cancelled() => return,
    }
    shared.health.set_not_serving().await;
    let lame_duck = shared.settings.shutdown.lame_duck;
    if !lame_duck.is_zero() {
        tracing::info!(?lame_duck, "shutdown started: health NOT_SERVING, still serving for the lame duck");
        tokio::time::sleep(lame_duck).await;
    }
    tracing::info!("shutdown started: no new connections, draining in-flight calls");
    shared.draining.start();
    shared.health.end_watches().await;
    let grace = shared.settings.shutdown.grace;
    tokio::time::sleep(grace).await;
    let open = shared.stats.snapshot().streams_open;
    if open > 0 {
        tracing::warn!(open_streams = open, ?grace, "shutdown grace over: ending the remaining streams");
    }
    shared.hard_stop.cancel();
}
