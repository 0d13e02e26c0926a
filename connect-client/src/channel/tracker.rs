//! The balanced channel's replica set, kept equal to the addresses that
//! resolve and answer.
//!
//! tonic keeps a dead endpoint in a balanced channel (its lazy connection
//! just fails each call routed to it), so the tracker probes every address
//! with a TCP connect and takes the ones that do not answer out.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use tokio::{
    net::TcpStream,
    sync::{Notify, mpsc::Sender},
};
use tonic::transport::{Endpoint, channel::Change};

use super::{Options, target::Target};

/// Shortest gap between two probe rounds triggered by failed calls, so a burst
/// of failures causes one round, not one each.
const MIN_REPROBE_GAP: Duration = Duration::from_millis(20);

/// The balancer's queue of replica-set changes.
pub(super) type Changes = Sender<Change<SocketAddr, Endpoint>>;

/// Keeps the balancer's replica set equal to the addresses that resolve and answer.
#[derive(Debug)]
pub(super) struct Tracker {
    targets: Vec<Target>,
    options: Options,
    /// Every address last resolved, with the target it came from.
    known: BTreeMap<SocketAddr, usize>,
    /// The addresses that answered the last probe.
    pub(super) live: BTreeSet<SocketAddr>,
    /// The addresses currently in the balancer.
    inserted: BTreeSet<SocketAddr>,
    /// Why the last address that failed did, for the error when none answers.
    pub(super) last_error: String,
}

impl Tracker {
    pub(super) fn new(targets: Vec<Target>, options: &Options) -> Self {
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
    pub(super) async fn refresh(&mut self) {
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

    /// Puts every live address into the balancer.
    pub(super) async fn insert_live(&mut self, changes: &Changes) {
        for addr in self.live.clone() {
            self.insert(changes, addr).await;
        }
    }

    async fn insert(&mut self, changes: &Changes, addr: SocketAddr) {
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
    pub(super) async fn run(mut self, changes: Changes, reprobe: Arc<Notify>, interval: Duration) {
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
