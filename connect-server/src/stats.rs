//! Counters of the calls served, shared by every handler, and the periodic
//! summary task (the original server's background `testing2`/`testing3` tasks).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

/// The four RPC kinds of `ConnectService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcKind {
    /// `UnaryRPC`.
    Unary,
    /// `ServerStreamRPC`.
    ServerStream,
    /// `ClientStreamRPC`.
    ClientStream,
    /// `BidiStreamRPC`.
    Bidi,
}

/// Live counters of the server, cheap to update from any task.
#[derive(Debug, Default)]
pub struct Stats {
    unary: AtomicU64,
    server_stream: AtomicU64,
    client_stream: AtomicU64,
    bidi: AtomicU64,
    streams_open: AtomicI64,
    cancelled: AtomicU64,
    deadline_exceeded: AtomicU64,
    changed: Notify,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// `UnaryRPC` calls started.
    pub unary: u64,
    /// `ServerStreamRPC` calls started.
    pub server_stream: u64,
    /// `ClientStreamRPC` calls started.
    pub client_stream: u64,
    /// `BidiStreamRPC` calls started.
    pub bidi: u64,
    /// Streams whose producer is still running.
    pub streams_open: i64,
    /// Calls that ended `CANCELLED`: the client cancelled or went away (counted by the observe layer).
    pub cancelled: u64,
    /// Calls that ended `DEADLINE_EXCEEDED` (counted by the observe layer).
    pub deadline_exceeded: u64,
}

impl Stats {
    /// Counts a call of `kind` as started.
    pub fn record_call(&self, kind: RpcKind) {
        let counter = match kind {
            RpcKind::Unary => &self.unary,
            RpcKind::ServerStream => &self.server_stream,
            RpcKind::ClientStream => &self.client_stream,
            RpcKind::Bidi => &self.bidi,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Counts a call that the client cancelled or abandoned.
    pub fn record_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Counts a call that the server ended at its deadline.
    pub fn record_deadline_exceeded(&self) {
        self.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Marks a stream as open until the returned guard is dropped.
    pub fn open_stream(self: &Arc<Self>) -> OpenStream {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
        OpenStream(Arc::clone(self))
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            unary: self.unary.load(Ordering::Relaxed),
            server_stream: self.server_stream.load(Ordering::Relaxed),
            client_stream: self.client_stream.load(Ordering::Relaxed),
            bidi: self.bidi.load(Ordering::Relaxed),
            streams_open: self.streams_open.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            deadline_exceeded: self.deadline_exceeded.load(Ordering::Relaxed),
        }
    }

    /// Waits until `condition` holds for a snapshot; wake-ups come from every counter change.
    pub async fn wait_until(&self, condition: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Register before checking, so a change between the check and the await is not missed.
            changed.as_mut().enable();
            let snapshot = self.snapshot();
            if condition(&snapshot) {
                return snapshot;
            }
            changed.await;
        }
    }

    /// Logs a one-line summary every `interval` until the task is dropped.
    pub async fn report_every(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await; // the first tick is immediate; skip it
        loop {
            ticker.tick().await;
            let s = self.snapshot();
            tracing::info!(
                unary = s.unary,
                server_stream = s.server_stream,
                client_stream = s.client_stream,
                bidi = s.bidi,
                streams_open = s.streams_open,
                cancelled = s.cancelled,
                "stats"
            );
        }
    }
}

/// An open stream; dropping it closes the stream in [`Stats`].
#[derive(Debug)]
pub struct OpenStream(Arc<Stats>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
        self.0.changed.notify_waiters();
    }
}
