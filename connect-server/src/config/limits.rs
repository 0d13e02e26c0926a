//! The HTTP/2, connection and message limits, as flags.
//!
//! tonic and hyper leave most HTTP/2 limits off; every one here has a finite
//! default so that one client cannot hold unbounded server memory or
//! connections. (Message sizes are applied to the generated service, in
//! `service::routes`; the rest by the transport.)

use std::{num::NonZeroUsize, time::Duration};

use clap::Args;

/// HTTP/2 and message limits; every flag also has an environment variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Most calls in flight across the whole server; beyond it new calls are refused at once
    /// with RESOURCE_EXHAUSTED (and past half of it, a connection gets no more than its
    /// fair share).
    #[arg(long, env = "CONNECT_MAX_CALLS_IN_FLIGHT", default_value = "4096")]
    pub max_calls_in_flight: NonZeroUsize,

    /// Most concurrent streams (calls) one connection may have open; clients queue beyond it.
    #[arg(long, env = "CONNECT_MAX_CONCURRENT_STREAMS", default_value_t = 1024)]
    pub max_concurrent_streams: u32,

    /// Most streams the server may reset for client errors on one connection before it closes it (GOAWAY).
    #[arg(long, env = "CONNECT_MAX_LOCAL_ERROR_RESET_STREAMS", default_value_t = 1024)]
    pub max_local_error_reset_streams: usize,

    /// Most streams a client may reset before the server accepts them, before the connection is closed (GOAWAY).
    #[arg(long, env = "CONNECT_MAX_PENDING_ACCEPT_RESET_STREAMS", default_value_t = 20)]
    pub max_pending_accept_reset_streams: usize,

    /// Largest message, in bytes, the server accepts; larger ones end the call with `OUT_OF_RANGE`.
    #[arg(long, env = "CONNECT_MAX_RECV_MESSAGE_SIZE", default_value_t = 4 * 1024 * 1024)]
    pub max_recv_message_size: usize,

    /// Largest message, in bytes, the server sends; larger ones end the call with `OUT_OF_RANGE`.
    #[arg(long, env = "CONNECT_MAX_SEND_MESSAGE_SIZE", default_value_t = 4 * 1024 * 1024)]
    pub max_send_message_size: usize,

    /// Bytes of incomplete request messages (of 64 KiB or more) the whole server holds at once;
    /// a message that does not fit ends its call with RESOURCE_EXHAUSTED.
    #[arg(long, env = "CONNECT_MAX_PENDING_MESSAGE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_pending_message_bytes: usize,

    /// How long a request body may go without a byte while a message is incomplete (a
    /// unary Connect body: until its end); then the call ends with DEADLINE_EXCEEDED.
    #[arg(long, env = "CONNECT_BODY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    /// How often the server pings each connection (HTTP/2 PING) to find dead peers.
    #[arg(long, env = "CONNECT_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub keepalive_interval: Duration,

    /// How long a ping may go unanswered before the connection is closed.
    #[arg(long, env = "CONNECT_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,

    /// Least time between two PINGs from a client while it has calls in flight; faster
    /// ones are strikes, and the third gets GOAWAY ENHANCE_YOUR_CALM `too_many_pings`
    /// (grpc-go's keepalive enforcement policy). 0 turns the policy off.
    #[arg(long, env = "CONNECT_KEEPALIVE_MIN_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub keepalive_min_interval: Duration,

    /// Let clients ping once per `--keepalive-min-interval` also without calls in flight
    /// (without it: once per 2 hours).
    #[arg(long, env = "CONNECT_KEEPALIVE_PERMIT_WITHOUT_CALLS")]
    pub keepalive_permit_without_calls: bool,

    /// Age at which a connection is asked to go away (GOAWAY), so clients reconnect and rebalance.
    #[arg(long, env = "CONNECT_MAX_CONNECTION_AGE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// How long calls on a connection past its age may still run before the connection is closed.
    #[arg(long, env = "CONNECT_MAX_CONNECTION_AGE_GRACE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_connection_age_grace: Duration,
}
