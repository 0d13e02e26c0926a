//! A run's plan: the addresses parsed and every call's headers and request
//! frames encoded once, before any connection opens, so a call only clones them.

use std::{sync::Arc, time::Duration};

use connect_proto::RpcKind;
use tokio_rustls::rustls::ClientConfig;

use super::{connection, payload::Payload, settings::BenchSettings, wire::CallTemplate};
use crate::{
    call::metadata::bearer,
    channel::{Target, url},
    error::ClientError,
};

/// Everything a call loop needs to know, shared read-only by every thread.
#[derive(Debug)]
pub(super) struct Plan {
    /// The servers' URLs; connection `c` goes to `addrs[c % addrs.len()]`.
    pub(super) addrs: Vec<String>,
    /// Each of `addrs`, parsed.
    pub(super) targets: Vec<Target>,
    /// TLS for the `https://` addresses.
    pub(super) tls: Option<Arc<ClientConfig>>,
    pub(super) connect_timeout: Duration,
    /// With `--wait-for-ready`: connections are retried until then.
    pub(super) wait_until: Option<tokio::time::Instant>,
    /// The kind of the method called.
    pub(super) rpc: RpcKind,
    /// How the report names the method.
    pub(super) method: String,
    /// Calls per second aimed at, in all (`--rate`).
    pub(super) rate: Option<f64>,
    pub(super) connections: usize,
    pub(super) concurrency: usize,
    pub(super) threads: usize,
    pub(super) warmup: Duration,
    pub(super) duration: Option<Duration>,
    /// Time between two calls of one loop, when `--rate` is set.
    pub(super) interval: Option<Duration>,
    /// `--timeout`: each call's deadline, counted from when it was due; a call
    /// sends what is left of it (`grpc-timeout`) and gives up at it.
    pub(super) timeout: Option<Duration>,
    /// Request messages each call sends.
    pub(super) messages_per_call: u64,
    /// One per address (each with its own `:authority`), like `addrs`.
    pub(super) templates: Vec<CallTemplate>,
}

/// The run's plan: the addresses parsed and every call's headers and
/// request frames encoded once, before any connection opens.
pub(super) fn plan(
    settings: &BenchSettings,
    payload: &Payload,
    duration: Option<Duration>,
) -> Result<Plan, ClientError> {
    let concurrency = settings.concurrency.get();
    // `host:port` as the other commands take it, once for the connections and the templates.
    let addrs: Vec<String> = settings.addrs.iter().map(|addr| url(addr)).collect();
    if addrs.is_empty() {
        return Err(ClientError::Other("no server address".into()));
    }
    let targets = addrs.iter().map(|addr| connection::bench_target(addr)).collect::<Result<_, _>>()?;
    // As the other commands: TLS for `https://`, and TLS files without one refused.
    let tls = match settings.tls.config_for(&addrs)? {
        Some(_) => Some(Arc::new(settings.tls.h2_config()?)),
        None => None,
    };
    let authorization = settings.token.as_deref().map(bearer).transpose()?;
    let templates = addrs
        .iter()
        .map(|addr| {
            CallTemplate::new(addr, payload, settings.protocol, &settings.headers, authorization.as_ref())
        })
        .collect::<Result<_, _>>()?;
    Ok(Plan {
        addrs,
        targets,
        tls,
        connect_timeout: settings.connect_timeout,
        wait_until: settings.wait_for_ready.map(|budget| tokio::time::Instant::now() + budget),
        rpc: payload.kind,
        method: payload.name.clone(),
        rate: settings.rate,
        connections: settings.connections.get(),
        concurrency,
        threads: settings.thread_count().get(),
        warmup: settings.warmup,
        duration,
        interval: settings.rate.map(|rate| Duration::from_secs_f64(concurrency as f64 / rate)),
        timeout: settings.timeout,
        messages_per_call: payload.messages.len() as u64,
        templates,
    })
}
