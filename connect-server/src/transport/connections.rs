//! How many connections are open, and what the calls of one connection share.
//!
//! hyper bounds what happens *inside* an HTTP/2 connection, but nothing bounds
//! the connections themselves: a permit of [`Connections`] is taken before
//! `accept` and held by the connection's task, so beyond `--max-connections`
//! new connections wait in the kernel's backlog instead of costing a file
//! descriptor and a task each.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// The connections open across every listener of a server, and their limit.
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    /// Connections open now (the semaphore also counts the permits held by pending accepts).
    open_count: AtomicUsize,
    /// Woken whenever a connection closes.
    closed: Notify,
}

impl Connections {
    /// At most `max_connections` open at once.
    pub(crate) fn new(max_connections: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_connections)),
                open_count: AtomicUsize::new(0),
                closed: Notify::new(),
            }),
        }
    }

    /// How many connections are open now, across every listener.
    pub fn open(&self) -> usize {
        self.inner.open_count.load(Ordering::Acquire)
    }

    /// Waits until at most `count` connections are open (for tests).
    pub async fn wait_until_at_most(&self, count: usize) {
        loop {
            let closed = self.inner.closed.notified();
            tokio::pin!(closed);
            // Register before checking, so a close in between is not missed.
            closed.as_mut().enable();
            if self.open() <= count {
                return;
            }
            closed.await;
        }
    }

    /// Waits for room for one more connection.
    pub(crate) async fn reserve(&self) -> Reserved {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        Reserved { permit, connections: self.clone() }
    }
}

/// Room for one connection, before it is accepted.
#[derive(Debug)]
pub(crate) struct Reserved {
    permit: OwnedSemaphorePermit,
    connections: Connections,
}

impl Reserved {
    /// The connection is accepted: it counts as open until the permit is dropped.
    pub(crate) fn open(self) -> Permit {
        self.connections.inner.open_count.fetch_add(1, Ordering::AcqRel);
        Permit { permit: Some(self.permit), connections: self.connections }
    }
}

/// An open connection's share of `--max-connections`; dropping it lets another in.
#[derive(Debug)]
pub(crate) struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    connections: Connections,
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Release first, so the woken waiters see the new count.
        drop(self.permit.take());
        let inner = &self.connections.inner;
        inner.open_count.fetch_sub(1, Ordering::AcqRel);
        inner.closed.notify_waiters();
    }
}

/// What the calls of one connection share: its peer, as logged, and how many
/// are in flight (which the idle timeout needs and only the call layer sees).
/// No table and no lock: a few atomics per call.
#[derive(Debug)]
pub(crate) struct ConnectionCalls {
    /// The client's address as text (formatted once, logged with every call).
    peer: Box<str>,
    addr: Option<std::net::SocketAddr>,
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last call ended (or the connection opened), in milliseconds since `opened`.
    idle_since_ms: AtomicU64,
}

impl ConnectionCalls {
    /// A connection from `peer` (`-` when unknown), opened now.
    pub(crate) fn new(peer: Option<std::net::SocketAddr>) -> Self {
        let peer_addr = peer;
        let peer = peer.map_or_else(|| "-".into(), |addr| addr.to_string().into_boxed_str());
        Self {
            peer,
            addr: peer_addr,
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    /// The client's address as text, `-` when unknown.
    pub(crate) fn peer(&self) -> &str {
        &self.peer
    }

    /// The client's address, when known.
    pub(crate) fn addr(&self) -> Option<std::net::SocketAddr> {
        self.addr
    }

    /// A call started on this connection.
    pub(crate) fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A call that started ended at `at`.
    pub(crate) fn call_ended(&self, at: Instant) {
        // The time first: whoever sees no call in flight also sees when the last one ended.
        let millis = u64::try_from(at.saturating_duration_since(self.opened).as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.fetch_max(millis, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Since when the connection has had no call in flight; `None` while it has.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)))
    }

    /// When the connection was accepted.
    pub(crate) fn opened(&self) -> Instant {
        self.opened
    }
}
