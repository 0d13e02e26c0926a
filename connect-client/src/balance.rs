//! The client's channel: one server, or calls balanced over several.
//!
//! gRPC keeps one long-lived HTTP/2 connection per server, so a single
//! connection pins every call to one replica. With several `--addr`, or one
//! DNS name that resolves to several addresses, the client opens a balanced
//! channel instead (tonic's `Channel::balance_channel`, power-of-two-choices
//! over one connection per replica) and keeps its replica set current from a
//! background task that, every `--resolve-interval`:
//!
//! - re-resolves each name, so replicas added to or removed from DNS (a
//!   Kubernetes headless Service) come and go;
//! - probes each address with a TCP connect, so a replica that died is taken
//!   out of rotation and one that came back is put back in. A failed call
//!   ([`Balanced::reprobe`]) triggers a probe at once rather than at the next tick.
//!
//! tonic itself keeps a dead endpoint in the set (its lazy connection just
//! fails each call routed to it), which is why the probing is needed.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use clap::Args;
use tokio::{
    net::TcpStream,
    sync::{Notify, mpsc::Sender, watch},
    time::Instant,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Uri, channel::Change};

use crate::{
    cli::Cli,
    connection::TlsFiles,
    exit::{ClientError, one_line},
};

/// How many replica-set changes may queue up for the balancer.
const CHANGE_QUEUE: usize = 64;

/// Shortest gap between two probe rounds triggered by failed calls, so a burst
/// of failures causes one round, not one each.
const MIN_REPROBE_GAP: Duration = Duration::from_millis(20);

/// Pause between connection attempts while `--wait-for-ready` waits.
const READY_POLL: Duration = Duration::from_millis(50);

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

/// A connected channel and, when balanced, the handle to its replica tracker.
#[derive(Debug, Clone)]
pub struct Balanced {
    /// The channel to make calls on.
    pub channel: Channel,
    /// Set when the channel balances over several addresses: notifying it
    /// re-probes the replicas now (after a failed call).
    pub reprobe: Option<Arc<Notify>>,
}

/// Connects as `cli` asks: a plain channel for one address, a balanced one for several.
pub async fn connect(cli: &Cli) -> Result<Balanced, ClientError> {
    let give_up = Instant::now() + cli.timeout.unwrap_or(cli.connect_timeout);
    let options = Options {
        tls: TlsFiles::from(cli).config_for(&cli.addr)?,
        connect_timeout: cli.connect_timeout,
        resolve_interval: cli.balance.resolve_interval,
        wait_until: cli.balance.wait_for_ready.then_some(give_up),
        failed_attempts: watch::Sender::new(0),
    };
    connect_addrs(&cli.addr, &options).await
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
        match options.wait_until {
            Some(until) if Instant::now() + READY_POLL < until => tokio::time::sleep(READY_POLL).await,
            _ => return Err(failed(format!("no replica reachable ({})", tracker.last_error))),
        }
    }
    let (channel, changes) = Channel::balance_channel(CHANGE_QUEUE);
    let reprobe = Arc::new(Notify::new());
    for addr in tracker.live.clone() {
        tracker.insert(&changes, addr).await;
    }
    tokio::spawn(tracker.run(changes, Arc::clone(&reprobe), options.resolve_interval));
    Ok(Balanced { channel, reprobe: Some(reprobe) })
}

/// One address: an ordinary channel, retried until ready with `--wait-for-ready`.
async fn connect_one(target: &Target, options: &Options) -> Result<Balanced, String> {
    let endpoint = target.endpoint(None, options)?;
    loop {
        let error = match endpoint.connect().await {
            Ok(channel) => return Ok(Balanced { channel, reprobe: None }),
            Err(error) => error,
        };
        options.failed_attempts.send_modify(|attempts| *attempts += 1);
        match options.wait_until {
            Some(until) if Instant::now() + READY_POLL < until => tokio::time::sleep(READY_POLL).await,
            _ => return Err(one_line(&error)),
        }
    }
}

/// One `--addr`: its URL and where its host resolves.
#[derive(Debug, Clone)]
struct Target {
    uri: Uri,
    host: String,
    port: u16,
}

/// `addr` as a URL: `host:port` means `http://host:port`, as in `--help`.
pub(crate) fn url(addr: &str) -> String {
    if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") }
}

impl Target {
    fn parse(addr: &str) -> Result<Self, ClientError> {
        let url = url(addr);
        let invalid = |reason: &str| ClientError::Other(format!("invalid --addr {addr:?}: {reason}"));
        let uri: Uri = url.parse().map_err(|error: http::uri::InvalidUri| invalid(&error.to_string()))?;
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = match (uri.port_u16(), uri.scheme_str()) {
            (Some(port), _) => port,
            (None, Some("https")) => 443,
            (None, _) => 80,
        };
        Ok(Self { uri, host, port })
    }

    async fn resolve(&self) -> Result<BTreeSet<SocketAddr>, String> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(BTreeSet::from([SocketAddr::new(ip, self.port)]));
        }
        let found = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|error| format!("cannot resolve {}: {error}", self.host))?;
        Ok(found.collect())
    }

    /// The endpoint for one resolved address of this target (or the target
    /// itself), keeping the target's name as the `:authority` of calls.
    fn endpoint(&self, addr: Option<SocketAddr>, options: &Options) -> Result<Endpoint, String> {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let url = match addr {
            Some(addr) => format!("{scheme}://{addr}"),
            None => self.uri.to_string(),
        };
        let endpoint = Endpoint::from_shared(url).map_err(|error| one_line(&error))?;
        let endpoint =
            endpoint.origin(self.uri.clone()).connect_timeout(options.connect_timeout).tcp_nodelay(true);
        match (&options.tls, scheme) {
            // The certificate names the target's host, not the address it resolved to.
            (Some(tls), "https") => endpoint
                .tls_config(tls.clone().domain_name(self.host.clone()))
                .map_err(|error| one_line(&error)),
            _ => Ok(endpoint),
        }
    }
}

/// Keeps the balancer's replica set equal to the addresses that resolve and answer.
#[derive(Debug)]
struct Tracker {
    targets: Vec<Target>,
    options: Options,
    /// Every address last resolved, with the target it came from.
    known: BTreeMap<SocketAddr, usize>,
    /// The addresses that answered the last probe.
    live: BTreeSet<SocketAddr>,
    /// The addresses currently in the balancer.
    inserted: BTreeSet<SocketAddr>,
    last_error: String,
}

impl Tracker {
    fn new(targets: Vec<Target>, options: &Options) -> Self {
        Self {
            targets,
            options: options.clone(),
            known: BTreeMap::new(),
            live: BTreeSet::new(),
            inserted: BTreeSet::new(),
            last_error: String::from("nothing probed yet"),
        }
    }

    /// Re-resolves every target and probes every address.
    async fn refresh(&mut self) {
        let mut known = BTreeMap::new();
        for (index, target) in self.targets.iter().enumerate() {
            match target.resolve().await {
                Ok(addrs) => known.extend(addrs.into_iter().map(|addr| (addr, index))),
                Err(error) => {
                    // A DNS blip must not empty the replica set: keep what it resolved to before.
                    known.extend(self.known.iter().filter(|(_, i)| **i == index).map(|(a, i)| (*a, *i)));
                    self.last_error = error;
                }
            }
        }
        let probes = known.keys().map(|addr| probe(*addr, self.options.connect_timeout));
        let results = futures::future::join_all(probes).await;
        self.live.clear();
        for (addr, result) in known.keys().zip(results) {
            match result {
                Ok(()) => {
                    self.live.insert(*addr);
                }
                Err(error) => self.last_error = format!("{addr}: {error}"),
            }
        }
        self.known = known;
    }

    async fn insert(&mut self, changes: &Sender<Change<SocketAddr, Endpoint>>, addr: SocketAddr) {
        let Some(target) = self.known.get(&addr).and_then(|index| self.targets.get(*index)) else {
            return;
        };
        // The URL was parsed once already, so this cannot fail; skip the address if it somehow does.
        if let Ok(endpoint) = target.endpoint(Some(addr), &self.options)
            && changes.send(Change::Insert(addr, endpoint)).await.is_ok()
        {
            self.inserted.insert(addr);
        }
    }

    /// Refreshes every `interval` and whenever `reprobe` fires, until the channel is gone.
    async fn run(
        mut self,
        changes: Sender<Change<SocketAddr, Endpoint>>,
        reprobe: Arc<Notify>,
        interval: Duration,
    ) {
        while !changes.is_closed() {
            let tick = async {
                if interval.is_zero() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(interval).await;
            };
            tokio::select! {
                () = tick => {}
                () = reprobe.notified() => tokio::time::sleep(MIN_REPROBE_GAP).await,
                () = changes.closed() => return,
            }
            self.refresh().await;
            // With no replica answering, keep the set as it is: calls then fail
            // fast with UNAVAILABLE instead of waiting on an empty balancer.
            if self.live.is_empty() {
                continue;
            }
            for gone in self.inserted.difference(&self.live).copied().collect::<Vec<_>>() {
                if changes.send(Change::Remove(gone)).await.is_err() {
                    return;
                }
                self.inserted.remove(&gone);
            }
            for new in self.live.difference(&self.inserted).copied().collect::<Vec<_>>() {
                self.insert(&changes, new).await;
            }
        }
    }
}

/// Whether something accepts TCP connections at `addr`.
async fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn host_and_port_without_a_scheme_mean_http() {
        let target = Target::parse("127.0.0.1:50051").expect("valid");
        assert_eq!(target.uri.to_string(), "http://127.0.0.1:50051/");
        assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", 50051));
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets_and_ports_default_by_scheme() {
        let target = Target::parse("http://[::1]").expect("valid");
        assert_eq!((target.host.as_str(), target.port), ("::1", 80));
        let target = Target::parse("https://connect.example").expect("valid");
        assert_eq!((target.host.as_str(), target.port), ("connect.example", 443));
    }

    #[test]
    fn an_address_without_a_host_is_refused() {
        let error = Target::parse("http://").expect_err("no host");
        assert_eq!(error.to_string(), r#"invalid --addr "http://": empty string"#);
    }
}
