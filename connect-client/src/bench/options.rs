//! The flags of `connect-client bench`.

use std::{num::NonZeroUsize, time::Duration};

use clap::{Args, ValueEnum};

/// How long a run lasts when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Which RPC the benchmark calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rpc {
    /// `UnaryRPC`: one request, one response.
    Unary,
    /// `ServerStreamRPC`: one request, `--count` responses.
    ServerStream,
    /// `ClientStreamRPC`: `--count` requests, one response.
    ClientStream,
    /// `BidiStreamRPC`: `--count` requests and as many responses.
    Bidi,
}

impl Rpc {
    /// The method name as it appears on the wire.
    pub fn method(self) -> &'static str {
        match self {
            Self::Unary => "UnaryRPC",
            Self::ServerStream => "ServerStreamRPC",
            Self::ClientStream => "ClientStreamRPC",
            Self::Bidi => "BidiStreamRPC",
        }
    }

    /// Whether a call carries more than one message, so messages/s means something.
    pub fn is_stream(self) -> bool {
        self != Self::Unary
    }
}

/// Load-generator settings; every flag can also be set by its environment variable.
#[derive(Debug, Clone, Args)]
pub struct BenchOptions {
    /// Which RPC to call.
    #[arg(long, value_enum, env = "CONNECT_BENCH_RPC", default_value_t = Rpc::Unary)]
    pub rpc: Rpc,

    /// HTTP/2 connections to open (over the `--addr` servers in turn); calls are spread evenly over them.
    #[arg(long, env = "CONNECT_BENCH_CONNECTIONS", default_value = "1")]
    pub connections: NonZeroUsize,

    /// Calls in flight at once, in all.
    #[arg(long, env = "CONNECT_BENCH_CONCURRENCY", default_value = "50")]
    pub concurrency: NonZeroUsize,

    /// How long to measure, after the warm-up (default 10s unless `--requests` is given).
    #[arg(long, env = "CONNECT_BENCH_DURATION", value_parser = humantime::parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,

    /// How many calls to measure, after the warm-up, instead of a duration.
    #[arg(long, env = "CONNECT_BENCH_REQUESTS")]
    pub requests: Option<u64>,

    /// Calls per second to aim at in all (e.g. `1000` or `1000/s`); unlimited when absent.
    /// A call that falls behind schedule counts its latency from when it was due,
    /// so a slow server cannot hide its queue.
    #[arg(long, env = "CONNECT_BENCH_RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Bytes of `request_data` in each request.
    #[arg(long, env = "CONNECT_BENCH_DATA_SIZE", default_value_t = 16)]
    pub data_size: usize,

    /// Messages per streaming call: responses asked for (server-stream), requests sent
    /// (client-stream, bidi); 0 means 10.
    #[arg(long, env = "CONNECT_BENCH_COUNT", default_value_t = 10)]
    pub count: u32,

    /// How long to run before measuring; calls started in the warm-up are not counted.
    #[arg(long, env = "CONNECT_BENCH_WARMUP", default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// Threads driving the connections, each with its own runtime (default: one per core, at most one per connection).
    #[arg(long, env = "CONNECT_BENCH_THREADS")]
    pub threads: Option<NonZeroUsize>,

    /// Print one JSON object instead of the table.
    #[arg(long, env = "CONNECT_BENCH_JSON")]
    pub json: bool,
}

impl BenchOptions {
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
}

/// The lowest `--rate`: one call every 1,000 s. Lower rates make intervals
/// beyond what a `Duration` holds, and no run is that long.
const MIN_RATE: f64 = 0.001;

/// Parses `1000`, `1000/s` or `2.5/s` as calls per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let number = text.strip_suffix("/s").unwrap_or(text);
    match number.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= MIN_RATE => Ok(rate),
        _ => Err(format!(
            "rate must be a number of calls per second from {MIN_RATE}, like 1000/s, not {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_accepts_a_plain_number_or_per_second() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert_eq!(parse_rate("2.5/s"), Ok(2.5));
    }

    #[test]
    fn rate_rejects_zero_negative_tiny_and_words() {
        for bad in ["0", "-5/s", "fast", "10/m", "inf", "1e-300", "0.0009/s"] {
            assert!(parse_rate(bad).is_err(), "{bad} was accepted");
        }
    }
}
