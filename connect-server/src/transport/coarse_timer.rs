//! hyper's timer, with a clock that is cheap to read.
//!
//! With HTTP/2 keepalive on, hyper reads the time on every frame it receives
//! (to know when the peer was last heard from) and at every wake-up of every
//! connection: a few clock reads per call, each a noticeable share of a
//! unary call on a virtual machine. Keepalive works in tens of seconds, so
//! the kernel's coarse monotonic clock (one tick, a few milliseconds, read
//! from memory) is precise enough. Sleeps are tokio's, unchanged.

use std::{
    pin::Pin,
    sync::OnceLock,
    time::{Duration, Instant},
};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;
use rustix::time::{ClockId, clock_gettime};

/// tokio's timer for hyper, answering `now` from the coarse clock.
#[derive(Debug, Clone, Default)]
pub(crate) struct CoarseTimer(TokioTimer);

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.0.sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.0.sleep_until(deadline)
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        self.0.reset(sleep, new_deadline);
    }

    fn now(&self) -> Instant {
        coarse_now()
    }
}

/// Now, to within a clock tick: an `Instant` anchored once, moved on by the coarse clock.
pub(crate) fn coarse_now() -> Instant {
    static ANCHOR: OnceLock<(Instant, Duration)> = OnceLock::new();
    let (instant, coarse) = *ANCHOR.get_or_init(|| (Instant::now(), coarse_clock()));
    instant + coarse_clock().saturating_sub(coarse)
}

fn coarse_clock() -> Duration {
    let now = clock_gettime(ClockId::MonotonicCoarse);
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_a_few_ticks_of_the_fine_clock() {
        let _ = coarse_now();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(20));
            let (fine, coarse) = (Instant::now(), coarse_now());
            let apart = if fine > coarse { fine - coarse } else { coarse - fine };
            assert!(apart < Duration::from_millis(25), "{apart:?}");
        }
    }
}
