//! How the client reaches the server: one connection, or calls balanced
//! over several replicas; TLS; waiting for a server that is not ready yet.
//!
//! gRPC keeps one long-lived HTTP/2 connection per server, so a single
//! connection pins every call to one replica. With several `--addr`, or one
//! DNS name that resolves to several addresses, the client opens a balanced
//! channel instead (tonic's `Channel::balance_channel`, power-of-two-choices
//! over one connection per replica) and keeps its replica set current from a
//! background task (`tracker`) that, every `--resolve-interval`:
//!
//! - re-resolves each name, so replicas added to or removed from DNS (a
//!   Kubernetes headless Service) come and go;
//! - probes each address with a TCP connect, so a replica that died is taken
//!   out of rotation and one that came back is put back in. A failed call
//!   ([`Balanced::reprobe`]) triggers a probe at once rather than at the next tick.
//!
//! Over that connection (`http1.rs` instead with `--http1`), [`protocol`]
//! speaks gRPC, gRPC-Web or Connect (`connect/`): `open` gives the
//! [`Transport`] every command calls on.

pub(crate) mod connect;
mod dial;
mod http1;
mod ping_backoff;
pub mod protocol;
mod target;
mod tls;
mod tracker;

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use tonic::transport::{Channel, ClientTlsConfig};

pub use protocol::{Codec, Protocol, Transport};
pub(crate) use target::{Target, invalid, url};
pub use tls::TlsFiles;
use tracker::Tracker;

use crate::{
    error::{ClientError, one_line},
    output::Output,
};

/// How many replica-set changes may queue up for the balancer.
const CHANGE_QUEUE: usize = 64;

/// Pause between connection attempts while `--wait-for-ready` waits.
const READY_POLL: Duration = Duration::from_millis(50);

/// Where and how to connect, as the command line asks.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// The `--addr` values.
    pub addrs: Vec<String>,
    /// The TLS files for `https://` addresses.
    pub tls: TlsFiles,
    /// Most time one connection attempt may take.
    pub connect_timeout: Duration,
    /// How often the replica set is refreshed (0: never).
    pub resolve_interval: Duration,
    /// With `--wait-for-ready`: how long to keep trying from the start.
    pub wait_for_ready: Option<Duration>,
    /// HTTP/2 keepalive pings on every connection (none: no pings).
    pub keepalive: Option<Keepalive>,
    /// The protocol calls are made in.
    pub protocol: Protocol,
    /// How Connect encodes messages.
    pub codec: Codec,
    /// HTTP/1.1 instead of HTTP/2.
    pub http1: bool,
}

/// HTTP/2 keepalive: without it a connection whose peer vanished (no FIN,
/// no RST) is only noticed when TCP gives up, many minutes later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// How often to send a PING, also while no call is open.
    pub interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub timeout: Duration,
}

/// A connected channel and, when balanced, the handle to its replica tracker.
#[derive(Debug, Clone)]
pub struct Balanced {
    /// The channel to make calls on.
    pub channel: Channel,
    /// Set when the channel balances over several addresses: notifying it
    /// re-probes the replicas now (after a failed call).
    pub reprobe: Option<Arc<Notify>>,
}

/// How [`connect_addrs`] connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// TLS settings for `https://` addresses.
    pub tls: Option<ClientTlsConfig>,
    /// Most time one connection attempt may take.
    pub connect_timeout: Duration,
    /// How often the replica set is refreshed (0: never).
    pub resolve_interval: Duration,
    /// With `--wait-for-ready`: keep trying until then.
    pub wait_until: Option<Instant>,
    /// Counts the failed attempts to connect (tests watch it to know the client is waiting).
    pub failed_attempts: watch::Sender<u32>,
    /// HTTP/2 keepalive pings (none: no pings).
    pub keepalive: Option<Keepalive>,
}

/// A connected transport and, when balanced, the handle to its replica tracker.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The transport to make calls on, in the protocol asked for.
    pub transport: Transport,
    /// As [`Balanced::reprobe`].
    pub reprobe: Option<Arc<Notify>>,
}

/// Connects as `settings` say, over HTTP/2 (balanced over several addresses)
/// or HTTP/1.1, and speaks the protocol they ask for on that connection.
/// With keepalive and one address, the keepalive backs off when the server
/// says `too_many_pings` (`ping_backoff.rs`), saying so on `output`.
pub(crate) async fn open(settings: &ChannelSettings, output: &Output) -> Result<Connected, ClientError> {
    let options = options(settings)?;
    let (transport, reprobe) = if settings.http1 {
        let [addr] = settings.addrs.as_slice() else {
            return Err(ClientError::Usage("--http1 takes one --addr (balancing needs HTTP/2)".into()));
        };
        let target = Target::parse(addr)?;
        let tls = options.tls.is_some().then(|| settings.tls.http1_config()).transpose()?;
        let http1 = http1::Http1::connect(&target, tls, &options)
            .await
            .map_err(|reason| connect_error(settings, reason))?;
        (Transport::new(http1), None)
    } else if let Some(keepalive) = settings.keepalive
        && let Some(target) = one_address(settings).await?
    {
        let tls = options.tls.is_some().then(|| settings.tls.h2_config()).transpose()?;
        let backing_off = ping_backoff::BackingOff::connect(&target, tls, &options, keepalive, output)
            .await
            .map_err(|reason| connect_error(settings, reason))?;
        (Transport::new(backing_off), None)
    } else {
        let balanced = connect_addrs(&settings.addrs, &options).await?;
        (Transport::from(balanced.channel), balanced.reprobe)
    };
    let transport = transport.speaking(settings.protocol, settings.codec, settings.http1);
    Ok(Connected { transport, reprobe })
}

/// The one target of `settings`, unless they name several addresses, or a
/// name that resolves to several (which the balanced channel spreads calls over).
async fn one_address(settings: &ChannelSettings) -> Result<Option<Target>, ClientError> {
    let [addr] = settings.addrs.as_slice() else {
        return Ok(None);
    };
    let target = Target::parse(addr)?;
    let several = target.resolve().await.is_ok_and(|resolved| resolved.len() > 1);
    Ok((!several).then_some(target))
}

/// The error for a connection to `settings`' address that could not be made.
fn connect_error(settings: &ChannelSettings, reason: String) -> ClientError {
    ClientError::Connect { addr: settings.addrs.join(", "), reason }
}

/// How `settings` ask to connect.
fn options(settings: &ChannelSettings) -> Result<Options, ClientError> {
    Ok(Options {
        tls: settings.tls.config_for(&settings.addrs)?,
        connect_timeout: settings.connect_timeout,
        resolve_interval: settings.resolve_interval,
        wait_until: settings.wait_for_ready.map(|budget| Instant::now() + budget),
        failed_attempts: watch::Sender::new(0),
        keepalive: settings.keepalive,
    })
}

/// Connects to `addrs` (URLs such as `http://10.0.0.1:50051`; `host:port` means `http://host:port`).
pub async fn connect_addrs(addrs: &[String], options: &Options) -> Result<Balanced, ClientError> {
    let targets = addrs.iter().map(|addr| Target::parse(addr)).collect::<Result<Vec<_>, _>>()?;
    let shown = addrs.join(", ");
    let failed = |reason: String| ClientError::Connect { addr: shown.clone(), reason };
    if let [target] = targets.as_slice() {
        match target.resolve().await {
            Ok(resolved) if resolved.len() <= 1 => return connect_one(target, options).await.map_err(failed),
            // Several addresses: balanced below.
            Ok(_) => {}
            // With --wait-for-ready a name that does not resolve (yet) is waited for below,
            // like a replica that does not answer yet.
            Err(_) if options.wait_until.is_some() => {}
            Err(error) => return Err(failed(error)),
        }
    }
    let mut tracker = Tracker::new(targets, options);
    loop {
        tracker.refresh().await;
        if !tracker.live.is_empty() {
            break;
        }
        options.failed_attempts.send_modify(|attempts| *attempts += 1);
        if !wait_before_retry(options.wait_until).await {
            return Err(failed(format!("no replica reachable ({})", tracker.last_error)));
        }
    }
    let (channel, changes) = Channel::balance_channel(CHANGE_QUEUE);
    let reprobe = Arc::new(Notify::new());
    tracker.insert_live(&changes).await;
    tokio::spawn(tracker.run(changes, Arc::clone(&reprobe), options.resolve_interval));
    Ok(Balanced { channel, reprobe: Some(reprobe) })
}

/// One address: an ordinary channel, retried until ready with `--wait-for-ready`.
async fn connect_one(target: &Target, options: &Options) -> Result<Balanced, String> {
    let endpoint = target.endpoint(None, options)?;
    let channel = connect_retrying(options, || endpoint.connect()).await?;
    Ok(Balanced { channel, reprobe: None })
}

/// Makes a channel with `connect`, retried until ready with `--wait-for-ready`.
async fn connect_retrying<F, C>(options: &Options, mut connect: F) -> Result<Channel, String>
where
    F: FnMut() -> C,
    C: Future<Output = Result<Channel, tonic::transport::Error>>,
{
    loop {
        let error = match connect().await {
            Ok(channel) => return Ok(channel),
            Err(error) => error,
        };
        options.failed_attempts.send_modify(|attempts| *attempts += 1);
        if !wait_before_retry(options.wait_until).await {
            return Err(one_line(&error));
        }
    }
}

/// After a failed attempt to connect: pauses and returns true when
/// `--wait-for-ready` leaves time for another attempt before `wait_until`,
/// else returns false at once.
pub(crate) async fn wait_before_retry(wait_until: Option<Instant>) -> bool {
    match wait_until {
        Some(until) if Instant::now() + READY_POLL < until => {
            tokio::time::sleep(READY_POLL).await;
            true
        }
        _ => false,
    }
}
