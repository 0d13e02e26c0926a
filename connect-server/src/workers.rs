//! One single-threaded runtime per core, each accepting on its own
//! `SO_REUSEPORT` listener bound to the same address.
//!
//! Why: on tokio's default multi-thread scheduler a call hops between threads
//! (accept loop, connection task, handler wake-ups), and on one core that
//! costs close to half the throughput. A current-thread runtime per core keeps
//! a connection and all of its calls on one thread, and the kernel spreads new
//! connections over the listeners (cf. tonic issue #1405). All workers serve
//! clones of one [`ConnectServer`], so counters, the drain and the hard stop
//! are shared: one shutdown stops them all.
//!
//! Note: with `SO_REUSEPORT` a second server started by the same user on the
//! same port shares it instead of failing with "address in use".

use std::{
    future::Future,
    io,
    net::{SocketAddr, TcpListener as StdTcpListener},
    num::NonZeroUsize,
    panic::AssertUnwindSafe,
    thread,
};

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::sync::CancellationToken;

use crate::server::ConnectServer;

/// Pending connections each listener queues, as `tokio::net::TcpListener::bind` does.
const BACKLOG: i32 = 1024;

/// How many workers to run when `--workers` is not given: the cores this
/// process may use. `available_parallelism` follows the affinity mask on
/// Linux, so a server started under `taskset -c 0` runs one worker.
pub fn default_count() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Binds `count` listeners to `addr`, all with `SO_REUSEPORT`. When `addr`
/// has port 0 the first listener picks the port and the others join it.
pub fn bind(addr: SocketAddr, count: NonZeroUsize) -> io::Result<Vec<StdTcpListener>> {
    let first = bind_one(addr, count.get() > 1)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count.get() {
        listeners.push(bind_one(addr, true)?);
    }
    Ok(listeners)
}

/// One non-blocking listener; `SO_REUSEPORT` only when it is to be shared, so
/// a single worker still fails loudly on a port that is already taken.
fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<StdTcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Same as tokio's bind: allows a quick restart while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves `server` on every listener until `shutdown` resolves (or a worker
/// fails); [`start`] then [`Workers::run`]. Call it from the main runtime.
pub async fn serve(
    server: ConnectServer,
    listeners: Vec<StdTcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    start(server, listeners).await?.run(shutdown).await
}

/// Workers that have started: every one serves its listener (or has failed,
/// which [`Workers::run`] reports).
pub struct Workers {
    server: ConnectServer,
    threads: Vec<thread::JoinHandle<()>>,
    /// One result per worker, when it ends.
    done: mpsc::UnboundedReceiver<anyhow::Result<()>>,
}

/// Starts the metrics endpoint and one thread with a current-thread runtime
/// per listener; resolves once every worker is accepting (or has failed), so
/// that "listening" printed after it means serving. Call it from the main
/// runtime, which also serves `/metrics` and runs the periodic summary and
/// the shutdown timer.
pub async fn start(server: ConnectServer, listeners: Vec<StdTcpListener>) -> anyhow::Result<Workers> {
    // Certificates and token file read once, and a bad one reported before any worker starts.
    server.prepare()?;
    // One endpoint for all workers: they share one metrics registry.
    server.start_metrics_endpoint().await?;
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
                // A panic must still count as this worker ending, or `run` would wait forever.
                let result =
                    std::panic::catch_unwind(AssertUnwindSafe(|| run_worker(&server, listener, ready)))
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("worker {index} panicked")));
                // The receiver lives until every worker has reported; nothing to do if it is gone.
                let _ = done.send(result);
            })
            .context("cannot start a worker thread")?;
        threads.push(thread);
    }
    drop(ready_tx);
    // Each worker reports once and drops its sender; one that fails first only drops it.
    while ready.recv().await.is_some() {}
    Ok(Workers { server, threads, done })
}

impl Workers {
    /// Serves until `shutdown` resolves (or a worker fails), then drains every
    /// worker (see [`ConnectServer::shutdown_after`]).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Workers { server, threads, mut done } = self;
        let failed = CancellationToken::new();
        let serving = async {
            let mut outcome = Ok(());
            while let Some(result) = done.recv().await {
                if let Err(error) = result {
                    tracing::error!(error = format!("{error:#}"), "worker stopped: shutting down the others");
                    failed.cancel();
                    outcome = outcome.and(Err(error));
                }
            }
            outcome
        };
        let signal = async {
            tokio::select! {
                () = shutdown => {}
                () = failed.cancelled() => {}
            }
        };
        let result = server.run_until_drained(serving, signal).await;
        for thread in threads {
            // Each thread has already reported its result; joining only reaps it.
            let _ = thread.join();
        }
        result
    }
}

/// Runs one worker to completion on the calling thread.
fn run_worker(
    server: &ConnectServer,
    listener: StdTcpListener,
    ready: mpsc::UnboundedSender<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build a worker runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        // Accepting from here on: the first poll of `serve_listener` accepts.
        let _ = ready.send(());
        drop(ready);
        server.serve_listener(listener).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_every_listener_to_the_port_the_first_one_picked() {
        let count = NonZeroUsize::new(3).expect("3 is not zero");
        let listeners = bind("127.0.0.1:0".parse().expect("valid address"), count).expect("bind");
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().expect("local addr")).collect();
        assert_eq!(addrs.len(), 3);
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|addr| *addr == addrs[0]), "{addrs:?}");
    }

    #[test]
    fn a_single_worker_does_not_share_a_taken_port() {
        let taken = StdTcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("local addr");
        let error = bind(addr, NonZeroUsize::MIN).expect_err("the port is taken");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
