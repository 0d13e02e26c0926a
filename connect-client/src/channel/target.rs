//! One `--addr`: parsed once, for the channels and for `bench`.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
};

use tonic::transport::{Endpoint, Uri};

use super::Options;
use crate::error::{ClientError, one_line};

/// One `--addr`: its URL and where its host resolves.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL; `host:port` was read as `http://host:port`.
    pub(crate) uri: Uri,
    /// The host, without the brackets of an IPv6 address.
    pub(crate) host: String,
    /// The port, defaulted by scheme.
    pub(crate) port: u16,
}

impl Target {
    /// Parses `addr`: a URL, or `host:port` meaning `http://host:port` (as in `--help`).
    pub(crate) fn parse(addr: &str) -> Result<Self, ClientError> {
        let uri: Uri =
            url(addr).parse().map_err(|error: http::uri::InvalidUri| invalid(addr, &error.to_string()))?;
        let host = uri.host().ok_or_else(|| invalid(addr, "no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = match (uri.port_u16(), uri.scheme_str()) {
            (Some(port), _) => port,
            (None, Some("https")) => 443,
            (None, _) => 80,
        };
        Ok(Self { uri, host, port })
    }

    pub(crate) async fn resolve(&self) -> Result<BTreeSet<SocketAddr>, String> {
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
    pub(crate) fn endpoint(&self, addr: Option<SocketAddr>, options: &Options) -> Result<Endpoint, String> {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let url = match addr {
            Some(addr) => format!("{scheme}://{addr}"),
            None => self.uri.to_string(),
        };
        let endpoint = Endpoint::from_shared(url).map_err(|error| one_line(&error))?;
        let endpoint =
            endpoint.origin(self.uri.clone()).connect_timeout(options.connect_timeout).tcp_nodelay(true);
        let endpoint = match options.keepalive {
            Some(keepalive) => endpoint
                .http2_keep_alive_interval(keepalive.interval)
                .keep_alive_timeout(keepalive.timeout)
                .keep_alive_while_idle(true),
            None => endpoint,
        };
        match (&options.tls, scheme) {
            // The certificate names the target's host, not the address it resolved to.
            (Some(tls), "https") => endpoint
                .tls_config(tls.clone().domain_name(self.host.clone()))
                .map_err(|error| one_line(&error)),
            _ => Ok(endpoint),
        }
    }
}

/// `addr` as a URL: `host:port` means `http://host:port`, as in `--help`.
pub(crate) fn url(addr: &str) -> String {
    if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") }
}

/// The usage error for an `--addr` that cannot be used.
pub(crate) fn invalid(addr: &str, reason: &str) -> ClientError {
    ClientError::Other(format!("invalid --addr {addr:?}: {reason}"))
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
