//! One connection to a server: TCP, then TLS for `https://`. The client's own
//! connector, for the connections tonic's cannot make: HTTP/1.1 (`http1.rs`)
//! and HTTP/2 whose frames the client watches (`ping_backoff.rs`), both of
//! which need the plain bytes above TLS.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{ClientConfig, pki_types::ServerName},
};
use tower::BoxError;

use super::target::Target;

/// A connection's byte stream, plain or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where and how to connect: a host and port, with TLS for `https://`.
#[derive(Clone)]
pub(crate) struct Dialer {
    host: String,
    port: u16,
    connect_timeout: Duration,
    /// For `https://`: the TLS settings and the name the certificate must have.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Dialer {
    /// Dials `target`, over TLS with `tls` when it is `https://`.
    pub(crate) fn new(
        target: &Target,
        tls: Option<ClientConfig>,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let tls = match tls {
            Some(config) if target.uri.scheme_str() == Some("https") => {
                let name = ServerName::try_from(target.host.clone()).map_err(|error| error.to_string())?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(Self { host: target.host.clone(), port: target.port, connect_timeout, tls })
    }

    /// A new connection; each step gets `connect_timeout`, and its error says which step failed.
    pub(crate) async fn dial(&self) -> Result<Box<dyn Io>, BoxError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(format!("tcp connect error: {error}").into()),
            Err(_) => {
                return Err(format!("tcp connect error: no answer within {:?}", self.connect_timeout).into());
            }
        };
        stream.set_nodelay(true)?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        match tokio::time::timeout(self.connect_timeout, connector.connect(name.clone(), stream)).await {
            Ok(Ok(stream)) => Ok(Box::new(stream)),
            Ok(Err(error)) => Err(format!("tls handshake error: {error}").into()),
            Err(_) => Err(format!("tls handshake error: no answer within {:?}", self.connect_timeout).into()),
        }
    }
}
