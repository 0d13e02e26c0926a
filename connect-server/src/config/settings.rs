//! The flags turned into what the server runs with, once, before anything
//! is bound or announced: a bad certificate or token file fails here, and N
//! workers do not read the same files N times.

use std::{path::PathBuf, time::Duration};

use http::HeaderValue;
use prometheus::IntCounterVec;

use super::{
    Config, MetricsAddr, Switch,
    tls::{CertificateInfo, TlsFiles},
};
use crate::{
    service::{BearerAuth, Limits, MessageLimits},
    transport::{ConnectionRules, Http1Limits, Http2Limits, PingPolicy, Tls, TransportSettings},
    web::{EdgeLayer, Enabled, Schema, WebShared},
};

/// The largest HTTP/1.1 read buffer, which bounds a request's line and headers.
const HTTP1_MAX_BUFFER: usize = 64 * 1024;

/// TLS as the flags ask for it, or `None`; failed handshakes count into `refusals`.
fn tls(
    config: &Config,
    refusals: IntCounterVec,
    http1: bool,
) -> anyhow::Result<Option<(Tls, TlsFiles, CertificateInfo)>> {
    let Some(files) = config.tls.files() else {
        return Ok(None);
    };
    let material = files.load()?;
    let tls = Tls::new(material.config, config.tls.tls_handshake_timeout, refusals, http1);
    Ok(Some((tls, files, material.certificate)))
}

impl Limits {
    /// The limits `config` sets.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            max_stream_count: config.max_stream_count,
            max_interval_ms: config.max_interval_ms,
            max_client_stream_bytes: config.max_client_stream_bytes,
        }
    }
}

impl MessageLimits {
    /// The message size limits `config` sets.
    pub(crate) fn of(config: &Config) -> Self {
        Self { max_recv: config.limits.max_recv_message_size, max_send: config.limits.max_send_message_size }
    }
}

/// Everything the server needs from its configuration.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// How connections are served.
    pub(crate) transport: TransportSettings,
    /// `--max-connections`.
    pub(crate) max_connections: usize,
    /// `--max-calls-in-flight`.
    pub(crate) max_calls_in_flight: usize,
    /// `--body-read-timeout`.
    pub(crate) body_read_timeout: Duration,
    /// `--max-pending-message-bytes`.
    pub(crate) max_pending_message_bytes: usize,
    /// `--otlp-endpoint`, when given.
    pub(crate) otlp_endpoint: Option<String>,
    /// Largest messages received and sent.
    pub(crate) messages: MessageLimits,
    /// The `ConnectService` token check.
    pub(crate) auth: BearerAuth,
    /// The web protocols and CORS, in front of every connection's service.
    pub(crate) web: EdgeLayer,
    /// `--server-id`, when given.
    pub(crate) server_id: Option<String>,
    /// Where [`ConnectServer::run`](crate::ConnectServer::run) listens.
    pub(crate) listen: Listen,
    /// The busy-polling window; zero: off.
    pub(crate) busy_poll: Duration,
    /// Where `/metrics` is served.
    pub(crate) metrics_addr: MetricsAddr,
    /// The periodic summary's interval; `None`: off.
    pub(crate) stats_interval: Option<Duration>,
    /// How a shutdown goes.
    pub(crate) shutdown: ShutdownSettings,
    /// The playground's most calls at once; `None`: off.
    pub(crate) playground: Option<std::num::NonZeroUsize>,
    /// What a reload reads again.
    pub(crate) reload: ReloadSettings,
}

/// The files a reload reads again, and what was read from them at start;
/// the TLS configuration and the tokens they replace are `transport.tls()`'s
/// and `auth`'s.
#[derive(Debug, Clone)]
pub(crate) struct ReloadSettings {
    /// The certificate, key and client CA, when TLS is on.
    pub(crate) tls: Option<TlsFiles>,
    /// The serving certificate read at start, when TLS is on.
    pub(crate) certificate: Option<CertificateInfo>,
    /// `--auth-token-file`.
    pub(crate) token_file: Option<PathBuf>,
    /// Whether changes in the files' directories reload (`--reload-watch`).
    pub(crate) watch: bool,
}

/// `--addr`, `--workers` and `--share-port`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listen {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) workers: std::num::NonZeroUsize,
    pub(crate) share_port: bool,
}

/// The phases of a graceful shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShutdownSettings {
    /// Still serving, health `NOT_SERVING`, before the drain begins.
    pub(crate) lame_duck: Duration,
    /// How long in-flight calls may run once the drain has begun.
    pub(crate) grace: Duration,
}

impl Settings {
    /// Reads the files the flags name and checks what clap cannot, for a
    /// server of the services of `schema`; failed TLS handshakes will count
    /// into `tls_refusals`.
    pub(crate) fn build(
        config: &Config,
        schema: Schema,
        tls_refusals: IntCounterVec,
    ) -> anyhow::Result<Self> {
        if let Some(id) = &config.server_id {
            HeaderValue::from_str(id)
                .map_err(|_| anyhow::anyhow!("server id {id:?} is not a valid header value"))?;
        }
        let limits = &config.limits;
        let enabled = Enabled::from_list(&config.web.protocols);
        let http1 = enabled.needs_http1().then_some(Http1Limits {
            header_timeout: config.handshake_timeout,
            max_buf_size: HTTP1_MAX_BUFFER,
        });
        let messages = MessageLimits::of(config);
        let (tls, tls_files, certificate) = match tls(config, tls_refusals, http1.is_some())? {
            Some((tls, files, certificate)) => (Some(tls), Some(files), Some(certificate)),
            None => (None, None, None),
        };
        let transport = TransportSettings::new(ConnectionRules {
            http2: Http2Limits {
                max_concurrent_streams: limits.max_concurrent_streams,
                max_local_error_reset_streams: limits.max_local_error_reset_streams,
                max_pending_accept_reset_streams: limits.max_pending_accept_reset_streams,
                keepalive_interval: limits.keepalive_interval,
                keepalive_timeout: limits.keepalive_timeout,
            },
            http1,
            tls,
            preface_timeout: config.handshake_timeout,
            idle_timeout: non_zero(config.idle_timeout),
            max_age: limits.max_connection_age,
            max_age_grace: limits.max_connection_age_grace,
            ping_policy: non_zero(limits.keepalive_min_interval).map(|min_interval| PingPolicy {
                min_interval,
                permit_without_calls: limits.keepalive_permit_without_calls,
            }),
        });
        Ok(Self {
            transport,
            max_connections: config.max_connections,
            max_calls_in_flight: limits.max_calls_in_flight.get(),
            body_read_timeout: limits.body_read_timeout,
            max_pending_message_bytes: limits.max_pending_message_bytes,
            otlp_endpoint: config.otlp_endpoint.clone(),
            messages,
            auth: BearerAuth::new(config.auth.tokens()?),
            web: EdgeLayer::new(WebShared::new(
                enabled,
                &config.web.cors_allow_origins,
                messages,
                limits.body_read_timeout,
                schema,
            )?),
            server_id: config.server_id.clone(),
            listen: Listen {
                addr: config.addr,
                workers: config.workers.unwrap_or_else(crate::default_count),
                share_port: config.share_port,
            },
            busy_poll: config.busy_poll,
            metrics_addr: config.metrics_addr,
            stats_interval: non_zero(config.stats_interval),
            shutdown: ShutdownSettings { lame_duck: config.lame_duck, grace: config.shutdown_grace },
            playground: config.playground.max_calls(),
            reload: ReloadSettings {
                tls: tls_files,
                certificate,
                token_file: config.auth.token_file().map(PathBuf::from),
                watch: config.reload_watch == Switch::On,
            },
        })
    }
}

/// `None` for the zero that turns a duration flag off.
fn non_zero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}
