//! The command line of `connect-client`: the only module that sees the flags.
//! [`Cli::settings`] turns them into the settings everything else takes, once.

mod bench;

use std::{num::NonZeroUsize, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use connect_proto::RequestMessage;
use tonic::codec::CompressionEncoding;

pub use bench::BenchArgs;

use crate::{
    call::{
        CallOptions,
        metadata::{Header, parse_header},
        retry::RetrySettings,
    },
    channel::{ChannelSettings, Codec, Keepalive, Protocol, TlsFiles},
    commands::{
        Action, Settings,
        dynamic::{DynamicCall, Input},
        repeat::RepeatSettings,
        ui::UiSettings,
    },
    error::ClientError,
    output::Output,
    schema::SchemaSource,
};

/// Calls `ConnectService`; every option can also be set by its environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "connect-client", version, about = "Command-line client for ConnectService")]
pub struct Cli {
    /// Server address; repeat it (or separate with commas) to balance calls over several replicas.
    #[arg(
        long,
        env = "CONNECT_SERVER",
        default_value = "http://localhost:50051",
        value_delimiter = ',',
        global = true
    )]
    pub addr: Vec<String>,

    /// Deadline for the call, sent as `grpc-timeout` (e.g. `500ms`, `5s`).
    #[arg(long, env = "CONNECT_TIMEOUT", value_parser = humantime::parse_duration, global = true)]
    pub timeout: Option<Duration>,

    /// Most time to spend connecting to the server.
    #[arg(long, env = "CONNECT_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub connect_timeout: Duration,

    /// CA certificate (PEM) to trust for `https://` addresses, instead of the system's roots.
    #[arg(long, env = "CONNECT_CA", global = true)]
    pub ca: Option<PathBuf>,

    /// Client certificate (PEM) for mTLS; needs `--key`.
    #[arg(long, env = "CONNECT_CERT", requires = "key", global = true)]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(long, env = "CONNECT_KEY", requires = "cert", global = true)]
    pub key: Option<PathBuf>,

    /// Bearer token sent as `authorization: Bearer <token>` on ConnectService calls.
    #[arg(long, env = "CONNECT_AUTH_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// Compress requests with this encoding (responses are then asked for compressed the same way).
    #[arg(long, env = "CONNECT_COMPRESS", value_enum, global = true)]
    pub compress: Option<Compression>,
    /// HTTP/2 keepalive pings, to find a dead connection.
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,

    /// The protocol to call in (`buf curl`'s names): gRPC, gRPC-Web or Connect (binary only, over HTTP/2, for `bench`).
    #[arg(long, env = "CONNECT_PROTOCOL", value_enum, default_value_t, global = true)]
    pub protocol: Protocol,

    /// How the Connect protocol encodes messages: binary protobuf, or JSON (`--protocol connect` only).
    #[arg(long, env = "CONNECT_CODEC", value_enum, default_value_t, global = true)]
    pub codec: Codec,

    /// Call over HTTP/1.1 instead of HTTP/2 (gRPC-Web and Connect; gRPC needs HTTP/2).
    #[arg(long, env = "CONNECT_HTTP1", global = true)]
    pub http1: bool,

    /// Balancing over several replicas and waiting for them.
    #[command(flatten)]
    pub balance: BalanceArgs,

    /// Retrying idempotent calls.
    #[command(flatten)]
    pub retry: RetryArgs,

    /// Repeating the unary call and tallying a response header.
    #[command(flatten)]
    pub repeat: RepeatArgs,
    /// Where `list`, `describe` and `call` find the schema instead of reflection.
    #[command(flatten)]
    pub schema: SchemaArgs,

    /// Request metadata `key: value` (repeatable); `-bin` keys take base64 values.
    #[arg(short = 'H', long = "header", value_name = "KEY: VALUE", value_parser = parse_header, global = true)]
    pub headers: Vec<Header>,

    /// Print the response headers and trailers to stderr (`header k: v`, `trailer k: v`).
    #[arg(short, long, env = "CONNECT_VERBOSE", global = true)]
    pub verbose: bool,

    /// What to call.
    #[command(subcommand)]
    pub command: Command,
}

/// The calls the client can make.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// One request, one response.
    Unary {
        /// The request data.
        #[arg(default_value = "People")]
        data: String,
    },
    /// One request, a stream of responses.
    ServerStream {
        /// The request data.
        #[arg(default_value = "People")]
        data: String,
        /// How many responses to ask for (0: the server's default of 10).
        #[arg(long, default_value_t = 0)]
        count: u32,
        /// Pause between responses, in milliseconds.
        #[arg(long, default_value_t = 0)]
        interval_ms: u32,
    },
    /// A stream of requests (the arguments, or one per stdin line), one response.
    ClientStream {
        /// The request data; read from stdin, one message per line, when empty.
        data: Vec<String>,
    },
    /// Sends stdin lines as requests and prints each reply as it arrives.
    Bidi,
    /// Asks `grpc.health.v1` for a service's status and prints it; exits 1 unless `SERVING`.
    Health {
        /// The service to ask about; empty: the whole server.
        #[arg(default_value = "")]
        service: String,
    },
    /// Lists the server's services through gRPC reflection (v1, else v1alpha), or those `--proto`/`--protoset` define.
    List,
    /// Describes the server's services (through reflection, or `--proto`/`--protoset`), or one service, method, message or enum.
    Describe {
        /// A fully qualified name (e.g. `ConnectService`, `ConnectService.UnaryRPC`, `RequestMessage`); none: every service.
        symbol: Option<String>,
    },
    /// Calls any method of a server with reflection (or given `--proto`/`--protoset`), printing each response as one JSON line.
    Call {
        /// The method, as `SERVICE/METHOD` (the service fully qualified, e.g. `grpc.health.v1.Health/Check`).
        method: String,
        /// The request as JSON, `@FILE` or `@-` (stdin); one JSON object per line for a request stream. Default: `{}`.
        #[arg(short = 'd', long = "data", value_name = "JSON|@FILE|@-")]
        data: Option<String>,
    },
    /// Load-tests the server and reports throughput and latency (see `bench --help`).
    Bench(Box<BenchArgs>),
    /// Serves the browser playground for the server (schema from reflection or `--proto`/`--protoset`) and prints its URL; opens nothing.
    Ui {
        /// Where to serve the page; on a loopback address only loopback names may open it.
        #[arg(long, env = "CONNECT_UI_LISTEN", default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Most calls the page may run at once; beyond it a call is refused.
        #[arg(long, env = "CONNECT_UI_MAX_CALLS", default_value_t = NonZeroUsize::new(16).expect("16 is not zero"))]
        max_calls: NonZeroUsize,
        /// The largest request message the page may send, in bytes of protobuf.
        #[arg(long, env = "CONNECT_UI_MAX_MESSAGE_SIZE", default_value_t = 4 * 1024 * 1024)]
        max_message_size: usize,
    },
}

/// Message compression the client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl From<Compression> for CompressionEncoding {
    fn from(compression: Compression) -> Self {
        match compression {
            Compression::Gzip => Self::Gzip,
            Compression::Zstd => Self::Zstd,
        }
    }
}

/// Flags for HTTP/2 keepalive pings, as the server's: off unless `--keepalive-interval` is given.
#[derive(Debug, Clone, Args)]
pub struct KeepaliveArgs {
    /// How often to send an HTTP/2 PING to find a dead connection, also while no call is open (default: never; 0: never).
    #[arg(long, env = "CONNECT_KEEPALIVE_INTERVAL", value_parser = humantime::parse_duration, global = true)]
    pub keepalive_interval: Option<Duration>,

    /// A PING unanswered this long closes the connection (with `--keepalive-interval`); its calls end UNAVAILABLE.
    #[arg(long, env = "CONNECT_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration, global = true)]
    pub keepalive_timeout: Duration,
}

impl KeepaliveArgs {
    /// The pings these flags ask for, if any.
    fn settings(&self) -> Option<Keepalive> {
        self.keepalive_interval
            .filter(|interval| !interval.is_zero())
            .map(|interval| Keepalive { interval, timeout: self.keepalive_timeout })
    }
}

/// Flags for balancing over several replicas.
#[derive(Debug, Clone, Args)]
pub struct BalanceArgs {
    /// How often to re-resolve DNS names and re-probe replicas when balancing over several (0: never).
    #[arg(long, env = "CONNECT_RESOLVE_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub resolve_interval: Duration,

    /// Keep trying to connect until the deadline (`--timeout`, else `--connect-timeout`) instead of failing at once.
    #[arg(long, env = "CONNECT_WAIT_FOR_READY", global = true)]
    pub wait_for_ready: bool,
}

/// Flags for retrying idempotent calls.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// How many times to retry an idempotent call (unary; server stream before its first response) that failed with UNAVAILABLE.
    #[arg(long, env = "CONNECT_RETRIES", default_value_t = 0, global = true)]
    pub retries: u32,

    /// Pause before the first retry; doubled for each next one (with ±20% jitter).
    #[arg(long, env = "CONNECT_RETRY_BACKOFF", default_value = "50ms", value_parser = humantime::parse_duration, global = true)]
    pub retry_backoff: Duration,

    /// Longest pause between two retries.
    #[arg(long, env = "CONNECT_RETRY_MAX_BACKOFF", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub retry_max_backoff: Duration,
}

/// Flags giving `list`, `describe` and `call` the schema in files, for a
/// server without reflection (grpcurl's `-proto`, `-import-path`, `-protoset`).
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// A `.proto` file defining the server's services (repeatable), compiled at run time; `list`, `describe`, `call` and `ui` then use it instead of reflection.
    #[arg(long, env = "CONNECT_PROTO", value_name = "FILE", global = true)]
    pub proto: Vec<PathBuf>,

    /// A directory to find `--proto` files and their imports in (repeatable); default: the directory of each `--proto` file. `google/protobuf/*.proto` need none.
    #[arg(long, env = "CONNECT_IMPORT_PATH", value_name = "DIR", global = true)]
    pub import_path: Vec<PathBuf>,

    /// An encoded `FileDescriptorSet` (`protoc --include_imports -o`, `buf build -o`) to use instead of reflection (repeatable).
    #[arg(long, env = "CONNECT_PROTOSET", value_name = "FILE", global = true)]
    pub protoset: Vec<PathBuf>,
}

impl SchemaArgs {
    /// Reflection unless files are given. The checks are here, not clap's
    /// `requires`/`conflicts_with`: those miss a global flag given on the
    /// other side of the command (`--proto a.proto list --import-path dir`).
    fn source(self) -> Result<SchemaSource, ClientError> {
        match (self.proto.is_empty(), self.protoset.is_empty()) {
            (false, false) => {
                Err(ClientError::Usage("--proto and --protoset cannot be used together".into()))
            }
            (true, _) if !self.import_path.is_empty() => {
                Err(ClientError::Usage("--import-path needs --proto".into()))
            }
            (false, true) => Ok(SchemaSource::Files { protos: self.proto, import_paths: self.import_path }),
            (true, false) => Ok(SchemaSource::Protoset(self.protoset)),
            (true, true) => Ok(SchemaSource::Reflection),
        }
    }
}

/// Flags for repeating the unary call.
#[derive(Debug, Clone, Args)]
pub struct RepeatArgs {
    /// Make the unary call this many times over one channel, one after another, printing a summary instead of each response.
    #[arg(long, env = "CONNECT_REPEAT", default_value_t = 1, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Count the unary calls per value of this response header (e.g. `x-served-by`) and print the table.
    #[arg(long, env = "CONNECT_TALLY", global = true)]
    pub tally: Option<String>,
}

impl Cli {
    /// Refuses `--protocol`, `--codec` and `--http1` together where the
    /// protocol cannot do what is asked (bench has its own check).
    fn check_protocol(&self) -> Result<(), ClientError> {
        let refused = match (self.protocol, &self.command) {
            (_, Command::Bench(_)) => return Ok(()),
            (Protocol::Grpc, _) if self.http1 => {
                "--http1: gRPC needs HTTP/2; over HTTP/1.1 use --protocol grpcweb or --protocol connect"
            }
            (Protocol::Grpc | Protocol::GrpcWeb, _) if self.codec == Codec::Json => {
                "--codec json is for --protocol connect (gRPC and gRPC-Web carry protobuf)"
            }
            (Protocol::Connect, _) if self.codec == Codec::Json && self.compress.is_some() => {
                "--codec json sends uncompressed JSON: drop --compress"
            }
            (Protocol::Connect, Command::Bidi) if self.http1 => {
                "bidi over the Connect protocol needs HTTP/2 (a full-duplex stream): drop --http1"
            }
            _ => return Ok(()),
        };
        Err(ClientError::Usage(refused.into()))
    }

    /// With `--wait-for-ready`, how long to keep trying to connect: the
    /// call's deadline, else the connect timeout.
    fn wait_for_ready(&self) -> Option<Duration> {
        self.balance.wait_for_ready.then(|| self.timeout.unwrap_or(self.connect_timeout))
    }

    /// The settings these flags ask for; fails (exit 2) on flags that cannot
    /// be used together, which clap cannot tell.
    pub fn settings(self) -> Result<Settings, ClientError> {
        self.check_protocol()?;
        let wait_for_ready = self.wait_for_ready();
        let action = match self.command.clone() {
            Command::Bench(args) => Action::Bench(Box::new(args.settings(&self)?)),
            Command::Unary { data } if self.repeat.repeat > 1 || self.repeat.tally.is_some() => {
                Action::Repeat(data, RepeatSettings { repeat: self.repeat.repeat, tally: self.repeat.tally })
            }
            Command::Unary { data } => Action::Unary(data),
            Command::ServerStream { data, count, interval_ms } => {
                Action::ServerStream(RequestMessage { request_data: data, count, interval_ms })
            }
            Command::ClientStream { data } => Action::ClientStream(data),
            Command::Bidi => Action::Bidi,
            Command::Health { service } => Action::Health(service),
            Command::List => Action::List,
            Command::Describe { symbol } => Action::Describe(symbol),
            Command::Call { method, data } => {
                Action::Call(DynamicCall { method, input: data.as_deref().map(Input::parse) })
            }
            Command::Ui { listen, max_calls, max_message_size } => {
                Action::Ui(UiSettings { listen, max_calls, max_message_bytes: max_message_size })
            }
        };
        Ok(Settings {
            channel: ChannelSettings {
                addrs: self.addr,
                tls: TlsFiles { ca: self.ca, cert: self.cert, key: self.key },
                connect_timeout: self.connect_timeout,
                resolve_interval: self.balance.resolve_interval,
                wait_for_ready,
                keepalive: self.keepalive.settings(),
                protocol: self.protocol,
                codec: self.codec,
                http1: self.http1,
            },
            call: CallOptions {
                headers: self.headers,
                verbose: self.verbose,
                token: self.token,
                compress: self.compress.map(CompressionEncoding::from),
                output: Output::stdio(),
            },
            timeout: self.timeout,
            retry: RetrySettings {
                retries: self.retry.retries,
                backoff: self.retry.retry_backoff,
                max_backoff: self.retry.retry_max_backoff,
            },
            schema: self.schema.source()?,
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(args: &[&str]) -> Action {
        let argv = ["connect-client"].iter().chain(args);
        Cli::try_parse_from(argv).expect("valid flags").settings().expect("usable flags").action
    }

    #[test]
    fn repeat_must_be_at_least_one() {
        let error = Cli::try_parse_from(["connect-client", "--repeat", "0", "unary"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(matches!(action(&["--repeat", "1", "unary"]), Action::Unary(data) if data == "People"));
    }

    #[test]
    fn repeat_or_tally_repeats_the_unary_call() {
        let Action::Repeat(data, repeat) = action(&["--tally", "x-served-by", "unary", "Ann"]) else {
            panic!("not repeated")
        };
        assert_eq!((data.as_str(), repeat.repeat, repeat.tally.as_deref()), ("Ann", 1, Some("x-served-by")));
    }

    #[test]
    fn keepalive_is_off_unless_an_interval_is_given() {
        let keepalive = |args: &[&str]| {
            let argv = ["connect-client"].iter().chain(args);
            Cli::try_parse_from(argv)
                .expect("valid flags")
                .settings()
                .expect("usable flags")
                .channel
                .keepalive
        };
        assert_eq!(keepalive(&["unary"]), None);
        assert_eq!(keepalive(&["--keepalive-interval", "0s", "unary"]), None);
        let interval = Duration::from_secs(2);
        assert_eq!(
            keepalive(&["--keepalive-interval", "2s", "unary"]),
            Some(Keepalive { interval, timeout: Duration::from_secs(20) })
        );
        assert_eq!(
            keepalive(&["unary", "--keepalive-interval", "2s", "--keepalive-timeout", "500ms"]),
            Some(Keepalive { interval, timeout: Duration::from_millis(500) })
        );
    }

    #[test]
    fn protocol_flags_that_cannot_work_together_are_usage_errors() {
        let refused = |args: &[&str]| {
            let argv = ["connect-client"].iter().chain(args);
            Cli::try_parse_from(argv).expect("valid flags").settings().expect_err("refused").to_string()
        };
        assert_eq!(
            refused(&["--http1", "unary"]),
            "error: --http1: gRPC needs HTTP/2; over HTTP/1.1 use --protocol grpcweb or --protocol connect"
        );
        assert_eq!(
            refused(&["--codec", "json", "unary"]),
            "error: --codec json is for --protocol connect (gRPC and gRPC-Web carry protobuf)"
        );
        assert_eq!(
            refused(&["--protocol", "connect", "--codec", "json", "--compress", "gzip", "unary"]),
            "error: --codec json sends uncompressed JSON: drop --compress"
        );
        assert_eq!(
            refused(&["--protocol", "connect", "bidi", "--http1"]),
            "error: bidi over the Connect protocol needs HTTP/2 (a full-duplex stream): drop --http1"
        );
        let settings = |args: &[&str]| {
            let argv = ["connect-client"].iter().chain(args);
            Cli::try_parse_from(argv).expect("valid flags").settings().expect("usable flags").channel
        };
        let channel = settings(&["--protocol", "grpcweb", "--http1", "unary"]);
        assert_eq!((channel.protocol, channel.codec, channel.http1), (Protocol::GrpcWeb, Codec::Proto, true));
        let channel = settings(&["unary"]);
        assert_eq!((channel.protocol, channel.codec, channel.http1), (Protocol::Grpc, Codec::Proto, false));
    }

    #[test]
    fn schema_flags_choose_the_source_once() {
        let schema = |args: &[&str]| {
            let argv = ["connect-client"].iter().chain(args);
            Cli::try_parse_from(argv).expect("valid flags").settings().expect("usable flags").schema
        };
        assert_eq!(schema(&["list"]), SchemaSource::Reflection);
        assert_eq!(
            schema(&["--proto", "a.proto", "--proto", "b.proto", "list", "--import-path", "dir"]),
            SchemaSource::Files {
                protos: vec!["a.proto".into(), "b.proto".into()],
                import_paths: vec!["dir".into()]
            }
        );
        assert_eq!(schema(&["describe", "--protoset", "x.pb"]), SchemaSource::Protoset(vec!["x.pb".into()]));
    }
}
