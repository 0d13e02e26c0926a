//! What the `ConnectService` handlers saw (calls by kind, streams open) and
//! the ends the observe layer counts, with a wait for a condition on them:
//! what tests observe the handlers by. The periodic summary is read from
//! the metrics instead (`Metrics::summarize_every`), over every service.

use std::sync::{
    Arc,
    atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering},
};

use connect_proto::RpcKind;
use tokio::sync::Notify;

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
    /// Callers of `wait_until` now: changes wake them only when there are any
    /// (`notify_waiters` takes a lock, which every call would pay otherwise).
    watchers: AtomicUsize,
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
    /// Streaming calls still open (server, client or bidi streams).
    pub streams_open: i64,
    /// Calls that ended `CANCELLED`: the client cancelled or went away (counted by the observe layer).
    pub cancelled: u64,
    /// Calls that ended `DEADLINE_EXCEEDED` (counted by the observe layer).
    pub deadline_exceeded: u64,
}

impl Stats {
    /// Counts a call of `kind` as started.
    pub(crate) fn record_call(&self, kind: RpcKind) {
        let counter = match kind {
            RpcKind::Unary => &self.unary,
            RpcKind::ServerStream => &self.server_stream,
            RpcKind::ClientStream => &self.client_stream,
            RpcKind::Bidi => &self.bidi,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        self.notify_watchers();
    }

    /// Counts a call that the client cancelled or abandoned.
    pub(crate) fn record_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
        self.notify_watchers();
    }

    /// Counts a call that the server ended at its deadline.
    pub(crate) fn record_deadline_exceeded(&self) {
        self.deadline_exceeded.fetch_add(1, Ordering::SeqCst);
        self.notify_watchers();
    }

    /// Marks a stream as open until the returned guard is dropped.
    pub(crate) fn open_stream(self: &Arc<Self>) -> OpenStream {
        self.streams_open.fetch_add(1, Ordering::SeqCst);
        self.notify_watchers();
        OpenStream(Arc::clone(self))
    }

    /// Wakes the callers of `wait_until`, if any. Counters change with `SeqCst` and
    /// watchers register with `SeqCst` before they read: either this sees the
    /// watcher, or the watcher sees the change.
    fn notify_watchers(&self) {
        if self.watchers.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            unary: self.unary.load(Ordering::SeqCst),
            server_stream: self.server_stream.load(Ordering::SeqCst),
            client_stream: self.client_stream.load(Ordering::SeqCst),
            bidi: self.bidi.load(Ordering::SeqCst),
            streams_open: self.streams_open.load(Ordering::SeqCst),
            cancelled: self.cancelled.load(Ordering::SeqCst),
            deadline_exceeded: self.deadline_exceeded.load(Ordering::SeqCst),
        }
    }

    /// Waits until `condition` holds for a snapshot; wake-ups come from every counter change.
    pub async fn wait_until(&self, condition: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        let _watching = Watching(self);
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
}

/// An open stream; dropping it closes the stream in [`Stats`].
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<Stats>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::SeqCst);
        self.0.notify_watchers();
    }
}

/// One caller of `wait_until`, counted until it returns or is dropped.
struct Watching<'a>(&'a Stats);

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}
