//! Fuzzes the server's real HTTP/2 connection handling: arbitrary bytes after
//! a valid client preface, over an in-memory duplex, through the public entry
//! point (`ConnectServer::serve` on a `MemoryListener`), so hyper/h2 (SETTINGS,
//! HEADERS/CONTINUATION, HPACK, DATA, RST_STREAM, WINDOW_UPDATE, PING, GOAWAY),
//! the connection taps (timeouts), the gRPC layer and the handlers all run.
//!
//! One server per fuzz process, with small limits so each input is short. Per
//! input: connect, send `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` and the input,
//! half-close, and read what the server sends until it closes the connection.
//! Findings, each a panic:
//! - the server does not close the connection within `HANG_BOUND` (it must
//!   never hang on a connection; with the half-closed client it should end at
//!   once, and the idle and keepalive timeouts bound it anyway);
//! - what it sent does not start with its SETTINGS frame, or holds a frame of
//!   a type it never sends;
//! - afterwards a fresh connection's real unary call (tonic) does not answer
//!   `Hello, x` (checked after every `CHECK_EVERY`th input, and after any input
//!   whose connection ended in an unusual way);
//! - a connection stays open on the server after its client is gone
//!   (checked after every input);
//! - the serve task has ended (a worker panic makes `serve` return an error).
//!
//! Seeds (`seeds/http2_connection/`) are real sessions captured from Python
//! `grpcio` (one per RPC kind, a cancel) plus hand-built floods; see
//! `seeds/README.md` and `seeds/capture_http2.py`.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=../target/fuzz nice -n 19 cargo fuzz run http2_connection corpus/http2_connection seeds/http2_connection -- -max_total_time=120`
//! (new inputs go to the git-ignored `corpus/`; the committed seeds stay as they are)
#![no_main]

use std::{
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use clap::Parser;
use connect_proto::{ConnectServiceClient, RequestMessage};
use connect_server::{Config, ConnectServer, Connections, MemoryConnector, MemoryListener};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    runtime::Runtime,
    task::JoinHandle,
};
use tonic::transport::Endpoint;

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long the server may take to close a connection whose client has
/// sent everything and half-closed.
const HANG_BOUND: Duration = Duration::from_secs(3);

/// How long the liveness call, and the close of every connection after it, may take.
const CHECK_BOUND: Duration = Duration::from_secs(3);

/// The liveness call runs after every this many inputs.
const CHECK_EVERY: u64 = 16;

/// The most bytes of the server's answer kept for the frame checks.
const KEEP: usize = 1 << 20;

/// Small limits keep each input short: no pauses, few messages, fast timeouts.
const ARGS: &[&str] = &[
    "connect-server",
    "--metrics-addr",
    "off",
    "--stats-interval",
    "0",
    "--workers",
    "1",
    "--max-stream-count",
    "50",
    "--max-interval-ms",
    "0",
    "--max-client-stream-bytes",
    "4096",
    "--handshake-timeout",
    "1s",
    "--idle-timeout",
    "1s",
    "--keepalive-interval",
    "1s",
    "--keepalive-timeout",
    "1s",
];

struct Fuzz {
    runtime: Runtime,
    connector: MemoryConnector,
    connections: Connections,
    serving: Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
    inputs: AtomicU64,
}

fn fuzz() -> &'static Fuzz {
    static FUZZ: OnceLock<Fuzz> = OnceLock::new();
    FUZZ.get_or_init(|| {
        // One thread for the client side and the serve task; the server's
        // worker runs on a thread and runtime of its own.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let config = Config::parse_from(ARGS);
        let (listener, connector) = MemoryListener::new();
        let (serving, connections) = runtime.block_on(async {
            let server = ConnectServer::new(config).expect("a valid configuration");
            let connections = server.connections().clone();
            let serving = tokio::spawn(server.clone().serve(vec![listener], std::future::pending()));
            tokio::time::timeout(CHECK_BOUND, server.ready()).await.expect("the server is ready in time");
            (serving, connections)
        });
        Fuzz { runtime, connector, connections, serving: Mutex::new(Some(serving)), inputs: AtomicU64::new(0) }
    })
}

impl Fuzz {
    /// Panics with serve's result when the serve task has ended: it never should.
    fn assert_serving(&self) {
        let mut serving = self.serving.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if serving.as_ref().is_some_and(JoinHandle::is_finished) {
            let handle = serving.take().expect("checked");
            let result = self.runtime.block_on(handle);
            panic!("the server stopped serving: serve() returned {result:?}");
        }
    }

    /// One connection: preface, `input`, half-close; everything the server
    /// sent, and whether it ended with EOF (rather than an error).
    async fn session(&self, input: &[u8]) -> (Vec<u8>, bool) {
        let io = self.connector.connect().expect("the in-memory server accepts");
        let (mut read, mut write) = tokio::io::split(io);
        let writing = async move {
            // The server may close before reading everything: a failed write is its right.
            if write.write_all(PREFACE).await.is_ok() && write.write_all(input).await.is_ok() {
                let _ = write.shutdown().await;
            }
            // Dropping the write half here would not close anything: the read
            // half keeps the pipe, so the server sees only the half-close.
            write
        };
        let reading = async move {
            let mut received = Vec::new();
            let mut buf = vec![0; 64 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) => return (received, true),
                    Ok(n) => {
                        let room = KEEP.saturating_sub(received.len());
                        received.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(_) => return (received, false),
                }
            }
        };
        let both = async { tokio::join!(writing, reading).1 };
        match tokio::time::timeout(HANG_BOUND, both).await {
            Ok(done) => done,
            Err(_) => panic!(
                "the server did not close the connection within {HANG_BOUND:?} after the client \
                 sent {} bytes after the preface and half-closed",
                input.len()
            ),
        }
    }

    /// A fresh connection's real unary call answers `Hello, x`, and once its
    /// channel is dropped no connection stays open.
    async fn assert_alive(&self) {
        let connector = self.connector.clone();
        let check = async {
            let channel = Endpoint::from_static("http://fuzz")
                .connect_with_connector(tower::service_fn(move |_| {
                    let connector = connector.clone();
                    async move { connector.connect().map(TokioIo::new) }
                }))
                .await
                .expect("a fresh connection after the input");
            let mut client = ConnectServiceClient::new(channel);
            let request = RequestMessage { request_data: "x".into(), count: 0, interval_ms: 0 };
            let response = client.unary_rpc(request).await.expect("the unary call after the input");
            assert_eq!(response.into_inner().response_data, "Hello, x", "the unary answer after the input");
        };
        tokio::time::timeout(CHECK_BOUND, check)
            .await
            .unwrap_or_else(|_| panic!("the unary call after the input took more than {CHECK_BOUND:?}"));
        self.assert_all_closed().await;
    }

    /// Once every client is gone, the server lets go of every connection.
    ///
    /// Also keeps LeakSanitizer quiet: the server drops its end of the pipe
    /// before its connection count drops. Without this wait, an input could
    /// end while the pipe's buffer is still allocated, and a first run reported
    /// it as a "direct leak" (3731 bytes from `SimplexStream` writes, not
    /// reproducible from the saved input): most likely the `BytesMut` whose
    /// reader consumed all of it points one past its end, which LSan does not
    /// count as a reference.
    async fn assert_all_closed(&self) {
        if tokio::time::timeout(CHECK_BOUND, self.connections.wait_until_at_most(0)).await.is_err() {
            panic!(
                "{} connection(s) still open {CHECK_BOUND:?} after every client closed",
                self.connections.open()
            );
        }
    }
}

/// What the server sent is HTTP/2 frames, starting with its SETTINGS (a
/// truncated last frame is allowed: the server may close mid-write).
fn check_frames(received: &[u8]) {
    let mut rest = received;
    let mut first = true;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        if first {
            assert!(kind == 4 && flags & 1 == 0, "the server's first frame is not its SETTINGS: {:02x?}", &rest[..9]);
            first = false;
        }
        // DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE,
        // CONTINUATION; never PRIORITY or PUSH_PROMISE, nor an extension.
        assert!(kind <= 9 && kind != 2 && kind != 5, "the server sent a frame of type {kind}: {:02x?}", &rest[..9]);
        if rest.len() < 9 + len {
            break;
        }
        rest = &rest[9 + len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let fuzz = fuzz();
    fuzz.assert_serving();
    let n = fuzz.inputs.fetch_add(1, Ordering::Relaxed);
    fuzz.runtime.block_on(async {
        let (received, eof) = fuzz.session(data).await;
        check_frames(&received);
        fuzz.assert_all_closed().await;
        if !eof || n % CHECK_EVERY == 0 {
            fuzz.assert_alive().await;
        }
    });
    fuzz.assert_serving();
});
