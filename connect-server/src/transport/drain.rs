//! The signal that starts a drain: every listener stops accepting, every
//! connection is sent a GOAWAY and finishes its calls.

use std::{
    future::Future,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Waker},
};

use tokio::sync::{Notify, futures::OwnedNotified};

/// The signal that starts a drain: no new connections, GOAWAY on the open ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    inner: Arc<DrainInner>,
}

#[derive(Debug, Default)]
struct DrainInner {
    started: AtomicBool,
    notify: Arc<Notify>,
}

impl Drain {
    /// Starts the drain on every listener and connection.
    pub(crate) fn start(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether the drain has started.
    pub(crate) fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// Resolves once the drain has started.
    pub(crate) async fn started(&self) {
        let notified = self.inner.notify.notified();
        let mut notified = pin!(notified);
        // Register before checking, so a start in between is not missed.
        notified.as_mut().enable();
        if !self.is_started() {
            notified.await;
        }
    }

    pub(crate) fn watch(&self) -> DrainWatch {
        DrainWatch { drain: self.clone(), notified: None, registered: None }
    }
}

/// One connection's view of the drain: registers for the wake-up once, then
/// reads a flag (polling a `Notified` again would take its lock on every wake-up).
pub(crate) struct DrainWatch {
    drain: Drain,
    notified: Option<Pin<Box<OwnedNotified>>>,
    registered: Option<Waker>,
}

impl DrainWatch {
    pub(crate) fn poll_started(&mut self, cx: &mut Context<'_>) -> bool {
        if self.drain.is_started() {
            return true;
        }
        if self.registered.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            return false;
        }
        let notified = self
            .notified
            .get_or_insert_with(|| Box::pin(Arc::clone(&self.drain.inner.notify).notified_owned()));
        if notified.as_mut().poll(cx).is_ready() {
            return true;
        }
        self.registered = Some(cx.waker().clone());
        // A start between the flag check and the registration has notified nobody.
        self.drain.is_started()
    }
}
