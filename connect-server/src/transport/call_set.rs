//! A connection's calls run in the connection's own task.
//!
//! hyper hands each HTTP/2 stream (a call) to an executor. tokio's would
//! spawn a task per call: an allocation, a trip through the scheduler, and a
//! wake-up between the two tasks each way (the call's task when its request
//! body arrives, the connection's task when its response is ready to write).
//! A worker runs one connection and all its calls on one thread anyway
//! (`server::workers`), so here they also share one task: the executor puts
//! each new call in the [`CallSet`] of the connection being polled, which
//! polls its calls in the same turn as it reads their requests and writes
//! their responses. A turn then answers a whole batch of unary calls with
//! two polls of one task instead of two polls plus one task per call.
//!
//! A call that panics ends alone, as a task of its own would: its panic is
//! caught (and printed by the panic hook) and the other calls go on.

use std::{
    cell::RefCell,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
};

use futures::{FutureExt as _, StreamExt as _, stream::FuturesUnordered};

/// One call, as hyper made it (the service's future and its response body).
type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

thread_local! {
    /// The calls hyper started during the current poll of a connection on this
    /// thread; `None` outside such a poll.
    static STARTED: RefCell<Option<Vec<Call>>> = const { RefCell::new(None) };
}

/// The executor given to hyper: a call goes to the connection being polled,
/// or (started outside a connection's poll, which hyper does not do) to a task of its own.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectionExecutor;

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for ConnectionExecutor {
    fn execute(&self, call: F) {
        let call: Call = Box::pin(AssertUnwindSafe(call).catch_unwind().map(drop));
        let unclaimed = STARTED.with(|started| match started.borrow_mut().as_mut() {
            Some(calls) => {
                calls.push(call);
                None
            }
            None => Some(call),
        });
        if let Some(call) = unclaimed {
            tokio::spawn(call);
        }
    }
}

/// The calls of one connection, polled by the connection's task.
#[derive(Default)]
pub(crate) struct CallSet {
    /// Made at the first call: an empty set is two allocations, which an idle
    /// connection would hold for nothing.
    running: Option<FuturesUnordered<Call>>,
    /// Kept between polls so that collecting the started calls allocates once.
    started: Vec<Call>,
}

impl CallSet {
    /// Polls `connection` (hyper's), taking the calls it starts, then polls
    /// every call that is ready, new ones included, so that a request read in
    /// this turn is answered in it.
    pub(crate) fn poll_connection<F: Future + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        connection: Pin<&mut F>,
    ) -> Poll<F::Output> {
        STARTED.with(|started| *started.borrow_mut() = Some(std::mem::take(&mut self.started)));
        let polled = connection.poll(cx);
        let mut started = STARTED.with(|started| started.borrow_mut().take()).unwrap_or_default();
        if !started.is_empty() {
            self.running.get_or_insert_default().extend(started.drain(..));
        }
        self.started = started;
        if let Some(running) = &mut self.running {
            // The calls' wakers wake this task; ended calls leave the set.
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::poll_fn,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use hyper::rt::Executor as _;

    use super::*;

    /// A stand-in for hyper's connection: starts `count` calls on its first
    /// poll, each adding one to `done` when it runs, and then never ends.
    fn connection(count: usize, done: &Arc<AtomicUsize>) -> impl Future<Output = ()> {
        let done = Arc::clone(done);
        let mut started = false;
        poll_fn(move |_| {
            if !started {
                started = true;
                for _ in 0..count {
                    let done = Arc::clone(&done);
                    ConnectionExecutor.execute(async move {
                        done.fetch_add(1, Ordering::Relaxed);
                    });
                }
            }
            Poll::Pending
        })
    }

    #[tokio::test]
    async fn calls_started_in_a_poll_run_in_that_poll() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut calls = CallSet::default();
        let mut connection = Box::pin(connection(3, &done));
        let polled = poll_fn(|cx| Poll::Ready(calls.poll_connection(cx, connection.as_mut()))).await;
        assert!(polled.is_pending());
        assert_eq!(done.load(Ordering::Relaxed), 3);
        assert!(calls.running.is_some_and(|running| running.is_empty()), "ended calls leave the set");
    }

    #[tokio::test]
    async fn a_panicking_call_ends_alone() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut calls = CallSet::default();
        let after = Arc::clone(&done);
        let mut connection = Box::pin(poll_fn(move |_| {
            ConnectionExecutor.execute(async { panic!("a handler panicked") });
            let after = Arc::clone(&after);
            ConnectionExecutor.execute(async move {
                after.fetch_add(1, Ordering::Relaxed);
            });
            Poll::<()>::Pending
        }));
        let _ = poll_fn(|cx| Poll::Ready(calls.poll_connection(cx, connection.as_mut()))).await;
        assert_eq!(done.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_call_started_outside_a_connection_gets_a_task() {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        ConnectionExecutor.execute(async move {
            let _ = sender.send(7);
        });
        assert_eq!(receiver.await, Ok(7));
    }
}
