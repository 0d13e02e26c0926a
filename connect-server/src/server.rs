//! Serving `ConnectService` on a bound listener until a shutdown future fires,
//! then draining in-flight calls for a bounded grace.

use std::{future::Future, sync::Arc, time::Duration};

use connect_proto::ConnectServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::{
    config::Config,
    service::{Connect, Limits},
    stats::Stats,
};

/// After the grace, how long ended streams get to deliver their final status.
const FINAL_STATUS_WINDOW: Duration = Duration::from_secs(1);

/// A configured server, ready to serve on a listener.
#[derive(Debug)]
pub struct ConnectServer {
    config: Config,
    stats: Arc<Stats>,
}

impl ConnectServer {
    /// A server with `config`; nothing is bound or spawned yet.
    pub fn new(config: Config) -> Self {
        Self { config, stats: Arc::default() }
    }

    /// The live counters, for tests and the periodic summary.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting and
    /// lets in-flight calls finish for up to the configured grace before
    /// ending the rest with `UNAVAILABLE`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self { config, stats } = self;
        let hard_stop = CancellationToken::new();
        let service = Connect::new(Limits::from(&config), Arc::clone(&stats), hard_stop.clone());

        let reporter = (!config.stats_interval.is_zero())
            .then(|| tokio::spawn(Arc::clone(&stats).report_every(config.stats_interval)));

        let draining = CancellationToken::new();
        let drain_signal = {
            let draining = draining.clone();
            async move {
                shutdown.await;
                tracing::info!("shutdown started: no new connections, draining in-flight calls");
                draining.cancel();
            }
        };

        let serving = Server::builder()
            .add_service(ConnectServiceServer::new(service))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), drain_signal);
        tokio::pin!(serving);

        let grace = config.shutdown_grace;
        let result = tokio::select! {
            result = &mut serving => result.map_err(anyhow::Error::from),
            () = async { draining.cancelled().await; tokio::time::sleep(grace).await } => {
                let open = stats.snapshot().streams_open;
                tracing::warn!(open_streams = open, ?grace, "shutdown grace over: ending the remaining calls");
                hard_stop.cancel();
                // The ended streams now send UNAVAILABLE; connections close once they have.
                let _ = tokio::time::timeout(FINAL_STATUS_WINDOW, &mut serving).await;
                Ok(())
            }
        };
        if let Some(reporter) = reporter {
            reporter.abort();
        }
        result
    }
}
