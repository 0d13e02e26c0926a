//! A timer for socket wrappers, which look at it on every read.
//!
//! Polling a tokio [`Sleep`] registers the task's waker again each time
//! (atomic operations and a waker clone), and a busy connection reads
//! thousands of times a second. A [`WakeAt`] polls its `Sleep` only when it
//! has fired, was reset, or is asked by a different waker; otherwise the
//! registration from last time still stands and the answer is "not yet".

use std::{
    pin::Pin,
    task::{Context, Waker},
};

use tokio::time::{Instant, Sleep};

/// A deadline that wakes the task polling it; see the module docs.
#[derive(Debug)]
pub(crate) struct WakeAt {
    sleep: Pin<Box<Sleep>>,
    /// The waker the `Sleep` holds, once polled since the last reset.
    registered: Option<Waker>,
}

impl WakeAt {
    /// A timer firing at `deadline`.
    pub(crate) fn new(deadline: Instant) -> Self {
        Self { sleep: Box::pin(tokio::time::sleep_until(deadline)), registered: None }
    }

    /// Whether the deadline has passed; if not, the task of `cx` is woken when it does.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(waker) = &self.registered
            && waker.will_wake(cx.waker())
            && !self.sleep.is_elapsed()
        {
            return false;
        }
        let expired = self.sleep.as_mut().poll(cx).is_ready();
        self.registered = (!expired).then(|| cx.waker().clone());
        expired
    }

    /// Whether the deadline has passed, without arranging a wake-up.
    pub(crate) fn is_expired(&self) -> bool {
        self.sleep.is_elapsed()
    }

    /// Moves the deadline to `deadline`.
    pub(crate) fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.registered = None;
    }
}

#[cfg(test)]
mod tests {
    use std::{task::Poll, time::Duration};

    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    async fn poll_once(timer: &mut WakeAt) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(timer.poll_expired(cx))).await
    }

    #[tokio::test]
    async fn fires_once_the_deadline_passes_and_again_after_a_reset() {
        let mut timer = WakeAt::new(Instant::now() + SHORT);
        assert!(!poll_once(&mut timer).await);
        // Only a wake-up from the registration made above gets this task polled again.
        let woken =
            std::future::poll_fn(|cx| if timer.poll_expired(cx) { Poll::Ready(()) } else { Poll::Pending });
        tokio::time::timeout(Duration::from_secs(10), woken).await.expect("woken at the deadline");
        assert!(timer.is_expired());
        timer.reset(Instant::now() + SHORT);
        assert!(!timer.is_expired());
        assert!(!poll_once(&mut timer).await);
        tokio::time::sleep(SHORT * 2).await;
        assert!(poll_once(&mut timer).await);
    }
}
