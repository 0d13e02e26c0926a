//! One single-threaded runtime per listener, each on a thread of its own.
//!
//! Why: on tokio's default multi-thread scheduler a call hops between threads
//! (accept loop, connection task, handler wake-ups), and on one core that
//! costs close to half the throughput. A current-thread runtime per core keeps
//! a connection and all of its calls on one thread, and the kernel spreads new
//! connections over the `SO_REUSEPORT` listeners (cf. tonic issue #1405).
//!
//! `SO_REUSEPORT` would also let a second server of the same user join the
//! group and silently take half the new connections, so [`bind`] first makes
//! sure no other socket holds the port, unless sharing it is asked for
//! (`--share-port`, for a hand-over restart). The check binds alone, lets go,
//! then binds the group: two servers started in that same instant could both
//! pass it, which a restart script does not do.

use std::{
    io, net::SocketAddr, num::NonZeroUsize, panic::AssertUnwindSafe, sync::Arc, thread, time::Duration,
};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

use super::{ConnectServer, Shared};
use crate::{
    Error,
    telemetry::served_by,
    transport::{self, BodyTimeouts, Listener, bind_tcp, with_busy_polling},
};

/// After the grace, how long ended streams get to deliver their final status.
const FINAL_STATUS_WINDOW: Duration = Duration::from_secs(1);

/// How many workers to run when `--workers` is not given: the cores this
/// process may use. `available_parallelism` follows the affinity mask on
/// Linux, so a server started under `taskset -c 0` runs one worker.
pub fn default_count() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Binds `count` listeners to `addr`, all with `SO_REUSEPORT` when there are
/// several. When `addr` has port 0 the first listener picks the port and the
/// others join it. Unless `share_port`, a port that any other socket holds
/// (another server's `SO_REUSEPORT` group included) is an error.
pub fn bind(
    addr: SocketAddr,
    count: NonZeroUsize,
    share_port: bool,
) -> Result<Vec<std::net::TcpListener>, Error> {
    let in_use = |error: io::Error| {
        Error::Config(if error.kind() == io::ErrorKind::AddrInUse {
            format!("cannot listen on {addr}: address already in use (another process is serving it)")
        } else {
            format!("cannot listen on {addr}: {error}")
        })
    };
    let mut addr = addr;
    if !share_port {
        // A socket without SO_REUSEPORT cannot join any group on the port, so
        // this bind fails wherever another process already listens.
        let alone = bind_tcp(addr, false).map_err(in_use)?;
        if count.get() == 1 {
            return Ok(vec![alone]);
        }
        addr = alone.local_addr().map_err(in_use)?;
    }
    let mut listeners = Vec::with_capacity(count.get());
    for _ in 0..count.get() {
        let listener = bind_tcp(addr, true).map_err(in_use)?;
        addr = listener.local_addr().map_err(in_use)?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Workers that have started: every one serves its listener (or has failed).
#[derive(Debug)]
pub(super) struct Workers {
    threads: Vec<thread::JoinHandle<()>>,
    /// One result per worker, when it ends.
    done: mpsc::UnboundedReceiver<anyhow::Result<()>>,
}

/// Starts one worker per listener; resolves once every worker is accepting
/// (or has failed), so that "listening" announced after it means serving.
pub(super) async fn start<L: Listener>(server: &ConnectServer, listeners: Vec<L>) -> anyhow::Result<Workers> {
    let (done_tx, done) = mpsc::unbounded_channel();
    let (ready_tx, mut ready) = mpsc::unbounded_channel::<()>();
    let mut threads = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let server = server.clone();
        let done = done_tx.clone();
        let ready = ready_tx.clone();
        let thread = thread::Builder::new()
            .name(format!("connect-worker-{index}"))
            .spawn(move || {
                // A panic must still count as this worker ending, or `wait` would wait forever.
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    run_worker(&server.shared, listener, ready)
                }))
                .unwrap_or_else(|_| Err(anyhow::anyhow!("worker {index} panicked")));
                // The receiver lives until every worker has reported; nothing to do if it is gone.
                let _ = done.send(result);
            })
            .context("cannot start a worker thread")?;
        threads.push(thread);
    }
    drop(ready_tx);
    // Each worker reports once and drops its sender; one that fails first only drops it.
    let mut accepting = 0;
    while ready.recv().await.is_some() {
        accepting += 1;
    }
    let mut workers = Workers { threads, done };
    if accepting < workers.threads.len() {
        // A worker failed before accepting: its error, not "listening", is the answer.
        let failed = CancellationToken::new();
        failed.cancel();
        workers.wait(&failed).await?;
        anyhow::bail!("a worker stopped before it accepted");
    }
    Ok(workers)
}

impl Workers {
    /// Waits for every worker to end; the first to fail cancels `failed`, which stops the others.
    pub(super) async fn wait(&mut self, failed: &CancellationToken) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        while let Some(result) = self.done.recv().await {
            if let Err(error) = result {
                tracing::error!(error = format!("{error:#}"), "worker stopped: shutting down the others");
                failed.cancel();
                outcome = outcome.and(Err(error));
            }
        }
        for thread in self.threads.drain(..) {
            // Each thread has already reported its result; joining only reaps it.
            let _ = thread.join();
        }
        outcome
    }
}

/// Runs one worker to completion on the calling thread.
fn run_worker<L: Listener>(
    shared: &Arc<Shared>,
    listener: L,
    ready: mpsc::UnboundedSender<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build a worker runtime")?;
    runtime.block_on(async {
        let served_by = served_by(shared.settings.server_id.as_deref(), listener.local_addr()?)?;
        let listener = listener.bind()?;
        tokio::spawn(super::memory::give_back_periodically());
        // Accepting from here on: the first poll of `serve` accepts.
        let _ = ready.send(());
        drop(ready);
        serve_worker(shared, listener, served_by).await.context("the listener failed")
    })
}

/// Serves one listener until the drain starts and its connections are done,
/// or the grace is over.
async fn serve_worker<A>(shared: &Shared, listener: A, served_by: http::HeaderValue) -> io::Result<()>
where
    A: transport::Accept<Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>,
{
    let settings = &shared.settings;
    let service = shared.stack(served_by);
    let serving = with_busy_polling(
        settings.busy_poll,
        shared.metrics.busy_poll_seconds(),
        transport::serve_listener(
            listener,
            &shared.connections,
            |calls| {
                let calls = BodyTimeouts::new(
                    service.on_connection(calls),
                    settings.body_read_timeout,
                    Arc::clone(&shared.receiving),
                );
                settings.web.layer(shared.admission.guard(calls))
            },
            &settings.transport,
            &shared.draining,
        ),
    );
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result,
        () = shared.hard_stop.cancelled() => {
            // The ended streams now send UNAVAILABLE; connections close once they have.
            tokio::time::timeout(FINAL_STATUS_WINDOW, &mut serving).await.unwrap_or(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> NonZeroUsize {
        NonZeroUsize::new(3).expect("3 is not zero")
    }

    #[test]
    fn binds_every_listener_to_the_port_the_first_one_picked() {
        let listeners = bind("127.0.0.1:0".parse().expect("valid address"), three(), false).expect("bind");
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().expect("local addr")).collect();
        assert_eq!(addrs.len(), 3);
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|addr| *addr == addrs[0]), "{addrs:?}");
    }

    #[test]
    fn a_single_worker_does_not_share_a_taken_port() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("local addr");
        let error = bind(addr, NonZeroUsize::MIN, false).expect_err("the port is taken");
        assert_eq!(
            error.to_string(),
            format!("cannot listen on {addr}: address already in use (another process is serving it)")
        );
    }

    #[test]
    fn another_group_on_the_port_is_refused_unless_sharing_is_asked_for() {
        let first = bind("127.0.0.1:0".parse().expect("valid address"), three(), false).expect("bind");
        let addr = first[0].local_addr().expect("local addr");
        let error = bind(addr, three(), false).expect_err("another group serves the port");
        assert_eq!(
            error.to_string(),
            format!("cannot listen on {addr}: address already in use (another process is serving it)")
        );
        let shared = bind(addr, three(), true).expect("asked to share");
        assert!(shared.iter().all(|listener| listener.local_addr().expect("local addr") == addr));
    }
}
