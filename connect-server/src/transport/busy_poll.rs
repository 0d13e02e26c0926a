//! Busy polling: while requests arrive close together, a worker keeps
//! polling its sockets instead of going to sleep between them.
//!
//! Why: a client making one call at a time spends most of each round trip
//! waking sleeping threads. A worker that sleeps in `epoll_wait` between a
//! response and the next request pays a wake-up on every request; on a
//! virtual machine that is a halted vCPU woken by an interrupt, tens of
//! microseconds (the README's Performance section has the figures). So once
//! two reads have come less than `window` apart, the worker yields in a loop
//! for as long as reads keep coming within `window`: tokio's current-thread
//! scheduler then polls the sockets with a zero timeout and serves the next
//! request at once.
//!
//! The cost is CPU, and it is bounded: an idle worker sleeps,
//! traffic sparser than `window` never starts a spin, and each turn of the
//! loop offers the core to any other runnable thread (`sched_yield`), so a
//! load generator or a neighbour on the same core is not starved. A busy
//! worker rarely gets to the loop at all.
//!
//! It is off by default (`--busy-poll 0`): under a container's CPU quota the
//! spin is billed like any other work and turns into throttling, so only a
//! deployment with dedicated cores that wants the lowest latency should turn
//! it on (`--busy-poll 100us`; BENCHMARKS.md has both settings side by side).
//! The time spent in the loop with no new bytes is counted in the
//! `connect_busy_poll_seconds_total` metric.
//!
//! The state is per thread: each worker is one thread with its own
//! connections, and the reads of one worker say nothing about another.

use std::{
    cell::Cell,
    convert::Infallible,
    future::{Future, poll_fn},
    task::{Poll, Waker},
    thread,
    time::{Duration, Instant},
};

use prometheus::Counter;

use super::tap::Tap;

thread_local! {
    /// Reads that returned bytes on this thread's connections.
    static READS: Cell<u64> = const { Cell::new(0) };
    /// The spinner of this thread while it waits for the next read.
    static WAITING: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// Bytes arrived on a connection served by this thread. Called on every
/// connection's read path, so it is two thread-local accesses at most.
fn note_read() {
    READS.with(|reads| reads.set(reads.get().wrapping_add(1)));
    if let Some(waker) = WAITING.with(Cell::take) {
        waker.wake();
    }
}

/// The tap that tells this thread's spinner about every read with bytes in it.
#[derive(Debug, Default)]
pub(crate) struct NoteReads;

impl Tap for NoteReads {
    fn after_read(&mut self, bytes: usize) {
        if bytes > 0 {
            note_read();
        }
    }
}

/// Runs `serving` with busy polling alongside it on the current thread, for
/// the given `window` (zero: no busy polling); adds the time spent polling
/// with nothing arriving to `idle_seconds`.
pub(crate) async fn alongside<F: Future>(window: Duration, idle_seconds: Counter, serving: F) -> F::Output {
    if window.is_zero() {
        return serving.await;
    }
    tokio::select! {
        biased;
        output = serving => output,
        never = spin(window, idle_seconds) => match never {},
    }
}

fn reads() -> u64 {
    READS.with(Cell::get)
}

/// Resolves at the next read on this thread.
async fn next_read() {
    let seen = reads();
    poll_fn(|cx| {
        if reads() != seen {
            Poll::Ready(())
        } else {
            WAITING.with(|waiting| waiting.set(Some(cx.waker().clone())));
            Poll::Pending
        }
    })
    .await;
}

/// The spinner of one worker: waits for reads, spins while they come close
/// together, and counts the turns in which none came (other tasks may have
/// run in them too, so the count is an upper bound on the CPU the spin cost).
async fn spin(window: Duration, idle_seconds: Counter) -> Infallible {
    let mut last_read: Option<Instant> = None;
    loop {
        next_read().await;
        let now = Instant::now();
        let close_together = last_read.is_some_and(|last| now.duration_since(last) < window);
        last_read = Some(now);
        if !close_together {
            // Sparse traffic: a spin would most likely end before the next read.
            continue;
        }
        let mut seen = reads();
        let (mut last, mut turn) = (now, now);
        // Turns with no read in between: time the worker would have slept.
        let mut idle = Duration::ZERO;
        loop {
            // Back to the scheduler, which polls the sockets without blocking
            // when it has nothing else to run, then to the kernel, which runs
            // any other thread waiting for this core.
            tokio::task::yield_now().await;
            thread::yield_now();
            let now = Instant::now();
            let current = reads();
            if current != seen {
                seen = current;
                last = now;
            } else {
                idle += now.duration_since(turn);
                if now.duration_since(last) >= window {
                    last_read = Some(last);
                    // One shared atomic add per spin, not per turn.
                    idle_seconds.inc_by(idle.as_secs_f64());
                    break;
                }
            }
            turn = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a spinner on this thread waits for a read (rather than spins).
    fn spinner_waits() -> bool {
        WAITING.with(|waiting| {
            let waker = waiting.take();
            let waits = waker.is_some();
            waiting.set(waker);
            waits
        })
    }

    /// Yields to the spinner until it waits for a read; at most 5 s.
    async fn until_spinner_waits() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !spinner_waits() {
            assert!(Instant::now() < deadline, "the spinner never went back to waiting");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn serving_output_is_returned_with_and_without_busy_polling() {
        let idle = Counter::new("idle", "help").expect("valid counter");
        assert_eq!(alongside(Duration::ZERO, idle.clone(), async { 7 }).await, 7);
        assert_eq!(alongside(Duration::from_micros(100), idle, async { 8 }).await, 8);
    }

    #[tokio::test]
    async fn one_read_does_not_start_a_spin_two_close_reads_spin_for_the_window() {
        let window = Duration::from_millis(200);
        let idle = Counter::new("idle", "help").expect("valid counter");
        let spinner = tokio::spawn(spin(window, idle.clone()));
        until_spinner_waits().await;

        // A lone read: the spinner notes it and, at its next turn, waits again.
        note_read();
        assert!(!spinner_waits(), "the read took the waker");
        tokio::task::yield_now().await;
        assert!(spinner_waits(), "no spin after a lone read");
        assert_eq!(idle.get(), 0.0);

        // A second read well inside the window: the spinner spins, then waits
        // again once a whole window has passed without a read.
        note_read();
        let second_read = Instant::now();
        tokio::task::yield_now().await;
        assert!(!spinner_waits(), "spinning after two close reads");
        until_spinner_waits().await;
        let spun = second_read.elapsed();
        assert!(spun >= window, "spun {spun:?}, less than the window");
        // Nothing arrived during the spin: all of it, from its start to the
        // turn that ended it, is counted as idle.
        let idle = idle.get();
        assert!(idle >= window.as_secs_f64() && idle <= spun.as_secs_f64(), "idle {idle} s of {spun:?}");
        spinner.abort();
    }
}
