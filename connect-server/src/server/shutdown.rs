//! How the server stops: the signals that start it, and the sequence that
//! follows (health `NOT_SERVING`, the lame duck, the drain, the grace, the
//! hard stop).

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
