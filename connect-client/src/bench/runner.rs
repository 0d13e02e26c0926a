//! Drives the load: one OS thread per slice of the connections, each with a
//! current-thread runtime running that slice's call loops, so the load
//! generator spends its time on calls rather than on cross-thread wake-ups.

use std::{
    cell::RefCell,
    num::NonZeroUsize,
    sync::{
        Arc, Barrier, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use connect_proto::{RpcKind, codes::canonical_name};
use futures::future::join_all;
use tonic::Status;

use super::{
    connection::Connection,
    payload::{self, Payload},
    plan::{Plan, plan},
    progress::{self, ClearOnDrop, Counters, Goal},
    report::{Report, Tally},
    settings::BenchSettings,
    slot::{Slot, connection_lost},
    wire::{self, CallTemplate},
};
use crate::{error::ClientError, output::Output};

/// How long past the end of the run a call still in flight may take before
/// the client gives up on it (a backstop for a server that stopped answering).
const END_GRACE: Duration = Duration::from_secs(5);

/// State the threads coordinate through.
#[derive(Debug)]
struct Shared {
    /// Every thread waits here with its connections open, so the clock starts once for all.
    connected: Barrier,
    /// The first connection failure, which calls the run off.
    failure: Mutex<Option<ClientError>>,
    /// When the run (warm-up included) started; set by the first thread past the barrier.
    started: Mutex<Option<Instant>>,
    /// Measured calls still to start, in `--requests` mode.
    remaining: Option<AtomicI64>,
}

/// What one thread hands back.
#[derive(Debug)]
struct ThreadResult {
    tally: Tally,
    started: Option<Instant>,
    last_done: Option<Instant>,
}

/// Runs the benchmark `settings` describe (connections spread over the
/// addresses in turn) and returns what it measured.
/// (A schedule's steps are left to [`run_steps`].)
pub async fn run(settings: &BenchSettings) -> Result<Report, ClientError> {
    let payload = payload::resolve(settings).await?;
    run_with_output(settings, &payload, &Output::stdio()).await
}

/// Runs every step of the schedule in `settings` (or the one constant run)
/// and returns what each measured, in order.
pub async fn run_steps(settings: &BenchSettings) -> Result<Vec<Report>, ClientError> {
    run_steps_with_output(settings, &Output::stdio()).await
}

/// [`run_steps`], drawing its progress bar (on a terminal) through `output`.
pub(crate) async fn run_steps_with_output(
    settings: &BenchSettings,
    output: &Output,
) -> Result<Vec<Report>, ClientError> {
    // The method is looked up and its messages encoded once for every step.
    let payload = payload::resolve(settings).await?;
    if settings.steps.is_empty() {
        return Ok(vec![run_with_output(settings, &payload, output).await?]);
    }
    let mut reports = Vec::with_capacity(settings.steps.len());
    for (index, step) in settings.steps.iter().enumerate() {
        let step_settings = BenchSettings {
            rate: step.rate,
            concurrency: NonZeroUsize::new(step.concurrency).unwrap_or(NonZeroUsize::MIN),
            duration: step.duration.or(settings.duration),
            requests: if step.duration.is_some() { None } else { settings.requests },
            // Only the first step warms up: the others follow a measured load.
            warmup: if index == 0 { settings.warmup } else { Duration::ZERO },
            steps: Vec::new(),
            ..settings.clone()
        };
        reports.push(run_with_output(&step_settings, &payload, output).await?);
    }
    Ok(reports)
}

/// One run of `payload` at the load `settings` give (their steps ignored),
/// drawing its progress bar (on a terminal) through `output`.
async fn run_with_output(
    settings: &BenchSettings,
    payload: &Payload,
    output: &Output,
) -> Result<Report, ClientError> {
    let duration = settings.measured_duration();
    let plan = Arc::new(plan(settings, payload, duration)?);
    let shared = Arc::new(Shared {
        connected: Barrier::new(plan.threads),
        failure: Mutex::new(None),
        started: Mutex::new(None),
        remaining: settings.requests.map(|n| AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX))),
    });
    let counters: Counters = (0..plan.threads).map(|_| Arc::new(AtomicU64::new(0))).collect();

    let mut handles = Vec::with_capacity(plan.threads);
    for index in 0..plan.threads {
        let (plan, shared, counter) = (Arc::clone(&plan), Arc::clone(&shared), Arc::clone(&counters[index]));
        let handle = std::thread::Builder::new()
            .name(format!("bench-{index}"))
            .spawn(move || run_thread(index, &plan, &shared, &counter))
            .map_err(|error| ClientError::Other(format!("cannot start a load thread: {error}")))?;
        handles.push(handle);
    }
    let joined = tokio::task::spawn_blocking(move || {
        handles.into_iter().map(|handle| handle.join()).collect::<Vec<_>>()
    });
    let goal = match (duration, settings.requests) {
        (Some(duration), _) => Goal::Time(settings.warmup + duration),
        (None, Some(requests)) => Goal::Calls(requests),
        (None, None) => unreachable!("a duration is set when requests is not"),
    };
    let results = {
        let _clear = ClearOnDrop(output);
        tokio::select! {
            joined = joined => joined.map_err(|error| ClientError::Other(format!("load threads lost: {error}")))?,
            () = progress::show(goal, counters, output) => unreachable!("the progress bar never ends"),
        }
    };

    if let Some(error) = shared.failure.lock().map_or(None, |mut failure| failure.take()) {
        return Err(error);
    }
    let mut tally = Tally::default();
    let (mut started, mut last_done) = (None::<Instant>, None::<Instant>);
    for result in results {
        let result = result.map_err(|_| ClientError::Other("a load thread panicked".into()))?;
        tally.merge(&result.tally);
        started = started.or(result.started);
        last_done = last_done.max(result.last_done);
    }
    let measured_from = started.map(|at| at + plan.warmup);
    let elapsed = match (measured_from, last_done) {
        (Some(from), Some(to)) => to.saturating_duration_since(from),
        _ => Duration::ZERO,
    };
    Ok(Report {
        rpc: plan.rpc,
        method: plan.method.clone(),
        offered_rate: plan.rate,
        addr: plan.addrs.join(","),
        connections: plan.connections,
        concurrency: plan.concurrency,
        elapsed,
        tally,
    })
}

/// One load thread: opens its connections, waits for the others, runs its call loops.
fn run_thread(index: usize, plan: &Plan, shared: &Shared, counter: &AtomicU64) -> ThreadResult {
    let idle = ThreadResult { tally: Tally::default(), started: None, last_done: None };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            fail(shared, ClientError::Other(format!("cannot build a load runtime: {error}")));
            shared.connected.wait();
            return idle;
        }
    };
    // Connection `c` belongs to thread `c % threads`; call loop `j` uses connection `j % connections`.
    let mine: Vec<usize> = (0..plan.connections).filter(|c| c % plan.threads == index).collect();
    let connected = runtime.block_on(join_all(mine.iter().map(|&c| Slot::open(plan, c))));
    let mut slots = Vec::with_capacity(connected.len());
    for slot in connected {
        match slot {
            Ok(slot) => slots.push(slot),
            Err(error) => fail(shared, error),
        }
    }
    shared.connected.wait();
    if shared.failure.lock().map_or(true, |failure| failure.is_some()) {
        return idle;
    }
    // The first thread past the barrier sets the start for all (a poisoned lock: its own).
    let started = shared
        .started
        .lock()
        .map_or_else(|_| Instant::now(), |mut started| *started.get_or_insert_with(Instant::now));

    let thread = LoadThread {
        plan,
        shared,
        started,
        counter,
        tally: RefCell::default(),
        last_done: RefCell::default(),
    };
    let loops = (0..plan.concurrency).filter_map(|j| {
        let connection = j % plan.connections;
        let slot = mine.iter().position(|&c| c == connection)?;
        let template = &plan.templates[connection % plan.addrs.len()];
        Some(thread.call_loop(j, &slots[slot], template))
    });
    runtime.block_on(join_all(loops));
    let mut tally = thread.tally.into_inner();
    tally.reconnects = slots.iter().map(Slot::reconnects).sum();
    ThreadResult { tally, started: Some(started), last_done: thread.last_done.into_inner() }
}

/// Keeps the first failure; later ones are usually the same cause.
fn fail(shared: &Shared, error: ClientError) {
    if let Ok(mut failure) = shared.failure.lock() {
        failure.get_or_insert(error);
    }
}

/// What the call loops of one load thread share: the run's plan and state,
/// and what the thread measures (its loops take turns on one thread, so a
/// `RefCell` is enough).
struct LoadThread<'a> {
    plan: &'a Plan,
    shared: &'a Shared,
    /// When the run (warm-up included) started.
    started: Instant,
    /// The thread's measured calls, for the progress bar.
    counter: &'a AtomicU64,
    tally: RefCell<Tally>,
    last_done: RefCell<Option<Instant>>,
}

impl LoadThread<'_> {
    /// One call loop: calls back to back (or on schedule with `--rate`) until the run is over.
    async fn call_loop(&self, index: usize, slot: &Slot, template: &CallTemplate) {
        let (mut generation, mut client) = slot.current();
        let plan = self.plan;
        let measured_from = self.started + plan.warmup;
        let end = plan.duration.map(|duration| measured_from + duration);
        // Loops start staggered over one interval so a fixed rate does not arrive in bursts.
        let mut due = plan
            .interval
            .map(|interval| self.started + interval.mul_f64(index as f64 / plan.concurrency as f64));
        // One timer for the loop, reset only when the give-up time changes (with
        // `--timeout`, every call): a timer per call would cost the load generator.
        let backstop = tokio::time::sleep_until((self.started + END_GRACE).into());
        tokio::pin!(backstop);
        loop {
            let Some(call_started) = next_start(&mut due, plan.interval, end).await else {
                break;
            };
            let measured = call_started >= measured_from;
            if measured
                && let Some(remaining) = &self.shared.remaining
                && remaining.fetch_sub(1, Ordering::Relaxed) <= 0
            {
                break;
            }
            let give_up_at = [
                end.map(|end| end + END_GRACE),
                // At its deadline, as a gRPC client does: the server's clock starts
                // only when it reads the request, which under load is late.
                plan.timeout.map(|timeout| call_started + timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            let outcome = match give_up_at {
                Some(at) => {
                    if backstop.deadline() != at.into() {
                        backstop.as_mut().reset(at.into());
                    }
                    tokio::select! {
                        biased;
                        outcome = call(&mut client, template, plan, call_started) => outcome,
                        () = &mut backstop => Err(Status::deadline_exceeded("no answer from the server (client-side backstop)")),
                    }
                }
                None => call(&mut client, template, plan, call_started).await,
            };
            let failed = outcome.is_err();
            if !failed {
                slot.served();
            }
            if measured {
                self.record(call_started, outcome);
            }
            // A connection the server has closed fails every call at once: this loop
            // fails one call, then goes on on a new connection, or stops, instead of
            // counting millions of failures.
            if failed && connection_lost(&mut client) {
                match slot.redial(plan, generation).await {
                    Some(renewed) => (generation, client) = renewed,
                    None => {
                        self.tally.borrow_mut().loops_stopped += 1;
                        break;
                    }
                }
            }
        }
    }

    /// Counts a measured call that started at `call_started` and has just ended with `outcome`.
    fn record(&self, call_started: Instant, outcome: Result<u64, Status>) {
        let done = Instant::now();
        self.counter.fetch_add(1, Ordering::Relaxed);
        let mut tally = self.tally.borrow_mut();
        match outcome {
            Ok(messages) => tally.record_ok(done - call_started, messages),
            Err(status) => tally.record_error(canonical_name(status.code())),
        }
        *self.last_done.borrow_mut() = Some(done);
    }
}

/// When the next call of a loop starts: now, or when it is due with `--rate`
/// (`due` then moves on by one interval); none once the run is over.
async fn next_start(
    due: &mut Option<Instant>,
    interval: Option<Duration>,
    end: Option<Instant>,
) -> Option<Instant> {
    let start = match (due, interval) {
        (Some(due), Some(interval)) => {
            let at = *due;
            *due += interval;
            if end.is_some_and(|end| at >= end) {
                // Not due before the end: no waiting past it (a low rate would).
                return None;
            }
            wait_until(at).await;
            // Latency counts from when the call was due, so a slow server cannot hide its queue.
            at
        }
        _ => Instant::now(),
    };
    if end.is_some_and(|end| start >= end) { None } else { Some(start) }
}

/// Makes one call due at `due` (its `--timeout` counts from then); returns
/// the messages it carried (requests sent, for client-stream).
async fn call(
    connection: &mut Connection,
    template: &CallTemplate,
    plan: &Plan,
    due: Instant,
) -> Result<u64, Status> {
    let received = wire::call(connection, template, plan.timeout.map(|timeout| due + timeout)).await?;
    Ok(match plan.rpc {
        RpcKind::ClientStream => plan.messages_per_call,
        RpcKind::Unary | RpcKind::ServerStream | RpcKind::Bidi => received,
    })
}

/// tokio's timers fire on whole milliseconds: up to one late, more when the
/// thread wakes late. At thousands of calls per second that would send calls
/// in bursts and count the timer's lateness as the server's latency.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Waits until `at`, to within a few microseconds: sleeps on a timer until
/// `at` is less than [`TIMER_SLACK`] away, then yields until it has passed
/// (other calls of this thread go on meanwhile).
async fn wait_until(at: Instant) {
    if let Some(early) = at.checked_sub(TIMER_SLACK)
        && Instant::now() < early
    {
        tokio::time::sleep_until(early.into()).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}
