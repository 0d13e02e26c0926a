//! What a benchmark run does, made once from the command line.

use std::{num::NonZeroUsize, time::Duration};

use connect_proto::RpcKind;

use super::schedule::Step;
use crate::{
    call::metadata::Header,
    channel::{Protocol, TlsFiles},
    commands::dynamic::Input,
    schema::SchemaSource,
};

/// How long a run lasts when neither a duration nor a number of requests is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Everything a benchmark run needs.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// The servers (`--addr`); connection `c` goes to the `c % len`-th.
    pub addrs: Vec<String>,
    /// Most time one connection attempt may take.
    pub connect_timeout: Duration,
    /// Each call's deadline, counted from when the call is due; a call sends
    /// what is left of it as `grpc-timeout`.
    pub timeout: Option<Duration>,
    /// With `--wait-for-ready`: how long to keep trying to connect from the start.
    pub wait_for_ready: Option<Duration>,
    /// Bearer token sent on every call.
    pub token: Option<String>,
    /// `-H` request metadata sent on every call.
    pub headers: Vec<Header>,
    /// The TLS files for `https://` addresses.
    pub tls: TlsFiles,
    /// Which ConnectService RPC to call (unless `call` is set).
    pub rpc: RpcKind,
    /// `--call`: any method of any server, instead of `rpc`.
    pub call: Option<BenchCall>,
    /// The protocol calls are made in (over HTTP/2, binary messages).
    pub protocol: Protocol,
    /// HTTP/2 connections to open.
    pub connections: NonZeroUsize,
    /// Calls in flight at once, in all.
    pub concurrency: NonZeroUsize,
    /// How long to measure, after the warm-up.
    pub duration: Option<Duration>,
    /// How many calls to measure, after the warm-up, instead of a duration.
    pub requests: Option<u64>,
    /// Calls per second to aim at in all; unlimited when absent.
    pub rate: Option<f64>,
    /// Bytes of `request_data` in each request.
    pub data_size: usize,
    /// Messages per streaming call; 0 means 10.
    pub count: u32,
    /// How long to run before measuring.
    pub warmup: Duration,
    /// Threads driving the connections (default: one per core, at most one per connection).
    pub threads: Option<NonZeroUsize>,
    /// How the report is printed.
    pub output: OutputFormat,
    /// The steps of a `--rate-step`/`--rate-ramp`/`--concurrency-step`/`--concurrency-ramp`
    /// schedule, run in turn; none: one run at `rate` and `concurrency`.
    pub steps: Vec<Step>,
}

/// `bench --call`: the method, its requests and where its schema comes from.
#[derive(Debug, Clone)]
pub struct BenchCall {
    /// `Service/Method`, the service fully qualified.
    pub method: String,
    /// `-d`: the request (a JSON array or one object for a request stream); none: `{}`.
    pub input: Option<Input>,
    /// Reflection, or the `--proto`/`--protoset` files.
    pub schema: SchemaSource,
}

/// How `bench` prints what it measured (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people (one row per step for a schedule).
    #[default]
    Table,
    /// One JSON object.
    Json,
    /// A header line, then one line per step.
    Csv,
}

impl BenchSettings {
    /// Messages each streaming call carries, with 0 read as the server's default of 10.
    pub fn messages_per_call(&self) -> u32 {
        if self.count == 0 { 10 } else { self.count }
    }

    /// How many threads drive the load: `--threads`, else one per core but no more than connections.
    pub fn thread_count(&self) -> NonZeroUsize {
        self.threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
            cores.min(self.connections)
        })
    }

    /// How long the run measures: the duration given, else the default unless a number of requests is given.
    pub fn measured_duration(&self) -> Option<Duration> {
        match (self.duration, self.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (duration, _) => duration,
        }
    }
}
