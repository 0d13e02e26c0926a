//! Soak: mixed load of all four RPC kinds with random cancellations and
//! deadlines against the server binary, reporting RSS and open files at the
//! start (after a warm-up) and at the end. Ignored by default; run
//! `scripts/soak [seconds]`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use connect_proto::{ConnectServiceClient, RequestMessage};
use integration_tests::{child::ChildServer, request};
use tokio_stream::StreamExt;
use tonic::{Code, transport::Channel};

/// Concurrent workers.
const WORKERS: usize = 16;
/// Each worker opens a fresh connection after this many calls (connection churn).
const CALLS_PER_CONNECTION: u64 = 500;

/// A small deterministic generator (xorshift64*): reproducible runs, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    cancelled_by_us: AtomicU64,
    deadline: AtomicU64,
    unexpected: AtomicU64,
}

impl Tally {
    fn record(&self, result: Result<(), tonic::Status>) {
        let counter = match result {
            Ok(()) => &self.ok,
            Err(status) if status.code() == Code::DeadlineExceeded => &self.deadline,
            // tonic's client ends the call itself when the deadline passes before the server's status arrives.
            Err(status) if status.code() == Code::Cancelled && status.message() == "Timeout expired" => {
                &self.deadline
            }
            Err(status) => {
                eprintln!("unexpected status: {status:?}");
                &self.unexpected
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One call in ten gets a deadline of 1 to 20 ms.
fn maybe_deadline<T>(request: &mut tonic::Request<T>, rng: &mut Rng) {
    if rng.below(10) == 0 {
        request.set_timeout(Duration::from_millis(1 + rng.below(20)));
    }
}

/// One call of a random kind; some are abandoned part-way, some get short deadlines.
async fn one_call(client: &mut ConnectServiceClient<Channel>, rng: &mut Rng, tally: &Tally) {
    let abandon = rng.below(5) == 0;
    match rng.below(4) {
        0 => unary(client, rng, tally).await,
        1 => server_stream(client, rng, tally, abandon).await,
        2 => client_stream(client, rng, tally, abandon).await,
        _ => bidi(client, rng, tally, abandon).await,
    }
}

/// One unary call, maybe with a deadline.
async fn unary(client: &mut ConnectServiceClient<Channel>, rng: &mut Rng, tally: &Tally) {
    let mut req = tonic::Request::new(request("soak"));
    maybe_deadline(&mut req, rng);
    tally
        .record(client.unary_rpc(req).await.map(|r| assert_eq!(r.into_inner().response_data, "Hello, soak")));
}

/// One server stream, maybe with a deadline, maybe abandoned part-way.
async fn server_stream(
    client: &mut ConnectServiceClient<Channel>,
    rng: &mut Rng,
    tally: &Tally,
    abandon: bool,
) {
    let count = 1 + rng.below(50) as u32;
    let mut req = tonic::Request::new(RequestMessage {
        request_data: "soak".into(),
        count,
        interval_ms: rng.below(3) as u32,
    });
    maybe_deadline(&mut req, rng);
    let stop_after = if abandon { Some(rng.below(u64::from(count))) } else { None };
    let result = async {
        let mut stream = client.server_stream_rpc(req).await?.into_inner();
        let mut received = 0u64;
        while let Some(_message) = stream.message().await? {
            received += 1;
            if Some(received) == stop_after {
                return Err(tonic::Status::cancelled("abandoned"));
            }
        }
        assert_eq!(received, u64::from(count), "OK means complete");
        Ok(())
    }
    .await;
    match result {
        Err(status) if status.code() == Code::Cancelled && stop_after.is_some() => {
            tally.cancelled_by_us.fetch_add(1, Ordering::Relaxed);
        }
        other => tally.record(other),
    }
}

/// One client stream, maybe with a deadline, maybe dropped mid-way.
async fn client_stream(
    client: &mut ConnectServiceClient<Channel>,
    rng: &mut Rng,
    tally: &Tally,
    abandon: bool,
) {
    let parts = 1 + rng.below(20) as usize;
    let messages = tokio_stream::iter((0..parts).map(|i| request(&i.to_string())));
    let mut req = tonic::Request::new(messages);
    maybe_deadline(&mut req, rng);
    if abandon {
        // Give up after 1 ms: the call is dropped mid-way (RST_STREAM).
        let _ = tokio::time::timeout(Duration::from_millis(1), client.client_stream_rpc(req)).await;
        tally.cancelled_by_us.fetch_add(1, Ordering::Relaxed);
    } else {
        tally.record(client.client_stream_rpc(req).await.map(|_| ()));
    }
}

/// One bidi stream, maybe with a deadline, maybe abandoned after its first reply.
async fn bidi(client: &mut ConnectServiceClient<Channel>, rng: &mut Rng, tally: &Tally, abandon: bool) {
    let parts = 1 + rng.below(20) as usize;
    let messages = tokio_stream::iter((0..parts).map(|i| request(&i.to_string())));
    let mut req = tonic::Request::new(messages);
    maybe_deadline(&mut req, rng);
    let result = async {
        let mut stream = client.bidi_stream_rpc(req).await?.into_inner();
        let mut received = 0;
        while let Some(item) = stream.next().await {
            item?;
            received += 1;
            if abandon && received == 1 {
                return Err(tonic::Status::cancelled("abandoned"));
            }
        }
        assert_eq!(received, parts, "OK means complete");
        Ok(())
    }
    .await;
    match result {
        Err(status) if status.code() == Code::Cancelled && abandon => {
            tally.cancelled_by_us.fetch_add(1, Ordering::Relaxed);
        }
        other => tally.record(other),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run scripts/soak"]
async fn soak_mixed_load_keeps_memory_and_files_flat() {
    let seconds: u64 = std::env::var("CONNECT_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let warmup = Duration::from_secs((seconds / 10).clamp(5, 60));
    let server = ChildServer::spawn(&["--idle-timeout", "30s"]).await;
    let url = server.url();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (url, tally, stop) = (url.clone(), Arc::clone(&tally), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1));
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut client = ConnectServiceClient::connect(url.clone()).await.expect("connect");
                for _ in 0..CALLS_PER_CONNECTION {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    one_call(&mut client, &mut rng, &tally).await;
                    calls += 1;
                }
            }
            calls
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(warmup).await;
    let (rss_start, fds_start) = (server.rss_kib(), server.open_files());
    println!(
        "soak: {seconds} s, {WORKERS} workers; after {warmup:?} warm-up: RSS {rss_start} KiB, {fds_start} open files"
    );
    let end = started + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(30).min(end.saturating_duration_since(Instant::now()))).await;
        println!(
            "soak: t={:>5.0}s RSS {} KiB, {} open files, ok {}",
            started.elapsed().as_secs_f64(),
            server.rss_kib(),
            server.open_files(),
            tally.ok.load(Ordering::Relaxed)
        );
    }
    let (rss_end, fds_end) = (server.rss_kib(), server.open_files());
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for worker in workers {
        calls += worker.await.expect("worker");
    }
    let rss_growth = (rss_end as f64 - rss_start as f64) / rss_start as f64 * 100.0;
    println!(
        "soak: {calls} calls: ok {}, abandoned by the client {}, deadline exceeded {}, unexpected {}",
        tally.ok.load(Ordering::Relaxed),
        tally.cancelled_by_us.load(Ordering::Relaxed),
        tally.deadline.load(Ordering::Relaxed),
        tally.unexpected.load(Ordering::Relaxed)
    );
    println!(
        "soak: RSS {rss_start} -> {rss_end} KiB ({rss_growth:+.1}%), open files {fds_start} -> {fds_end}"
    );
    assert_eq!(tally.unexpected.load(Ordering::Relaxed), 0);
    assert!(rss_growth < 10.0, "RSS grew {rss_growth:.1}%");
    // Open files vary with the connections open at the instant; bound the drift by the workers' connections.
    assert!(fds_end <= fds_start + WORKERS, "open files grew {fds_start} -> {fds_end}");
}
