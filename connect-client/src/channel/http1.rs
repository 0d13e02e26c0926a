//! `--http1`: calls over HTTP/1.1 connections instead of one HTTP/2
//! connection, for gRPC-Web and Connect through proxies that speak only
//! HTTP/1.1. One call at a time per connection: a call reuses the last
//! connection when it is free, and opens another when it is not.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use http::{
    HeaderName, HeaderValue, Request, Response, Version,
    header::{CONNECTION, HOST, TRANSFER_ENCODING},
    uri::PathAndQuery,
};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tonic::body::Body;
use tower::{BoxError, Service};

use super::{
    Options,
    dial::{Dialer, Io},
    target::Target,
    wait_before_retry,
};
use crate::error::one_line;

/// HTTP/1.1 connections to one address.
#[derive(Clone)]
pub(crate) struct Http1 {
    dialer: Dialer,
    /// The `Host` header of every call.
    authority: HeaderValue,
    /// The connection of the last call, for the next one.
    idle: Arc<Mutex<Option<Connection>>>,
}

/// One HTTP/1.1 connection: where calls are sent, and why it ended, once it has.
struct Connection {
    sender: SendRequest<Body>,
    /// Set to the connection's error if it fails; closed when its task ends.
    ended: watch::Receiver<Option<String>>,
}

impl Connection {
    /// Why the connection ended (a TLS alert, a reset), once its task is done;
    /// none when it ended cleanly. Only for a connection known to be closing.
    async fn failure(mut self) -> Option<String> {
        let _ = self.ended.wait_for(Option::is_some).await;
        self.ended.borrow().clone()
    }
}

impl std::fmt::Debug for Http1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1").field("authority", &self.authority).finish_non_exhaustive()
    }
}

impl Http1 {
    /// Connects to `target` once, so an unreachable server is reported before
    /// any call (retried until ready with `--wait-for-ready`, as for HTTP/2);
    /// over TLS with `tls` for an `https://` target.
    pub(crate) async fn connect(
        target: &Target,
        tls: Option<tokio_rustls::rustls::ClientConfig>,
        options: &Options,
    ) -> Result<Self, String> {
        let authority = target.uri.authority().map(|authority| authority.as_str()).unwrap_or(&target.host);
        let authority = HeaderValue::from_str(authority).map_err(|error| error.to_string())?;
        let dialer = Dialer::new(target, tls, options.connect_timeout)?;
        let http1 = Self { dialer, authority, idle: Arc::default() };
        loop {
            let error = match http1.open().await {
                Ok(connection) => {
                    *http1.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(connection);
                    return Ok(http1);
                }
                Err(error) => error,
            };
            options.failed_attempts.send_modify(|attempts| *attempts += 1);
            if !wait_before_retry(options.wait_until).await {
                return Err(error.to_string());
            }
        }
    }

    /// A new connection.
    async fn open(&self) -> Result<Connection, BoxError> {
        handshake(self.dialer.dial().await?).await
    }

    /// The free connection of an earlier call, if there is one.
    fn take_idle(&self) -> Option<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()?;
        idle.sender.is_ready().then_some(idle)
    }
}

/// HTTP/1.1 on `io`, its connection driven by a task of its own.
/// How long a failed call waits for its connection to say why it failed.
const FAILURE_WAIT: Duration = Duration::from_secs(1);

/// Whether hyper's `error` is the socket's (an I/O error under it).
fn is_io(error: &hyper::Error) -> bool {
    std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>())
}

async fn handshake(io: Box<dyn Io>) -> Result<Connection, BoxError> {
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    let (failed, ended) = watch::channel(None);
    // The connection ends with its last call, or when the server closes it.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            failed.send_replace(Some(one_line(&error)));
        }
    });
    let mut connection = Connection { sender, ended };
    // Ready once the connection task has run: until then `is_ready` says no.
    if let Err(error) = connection.sender.ready().await {
        // Closed before its first call (a server refusing the client's certificate): say why.
        return Err(connection.failure().await.unwrap_or_else(|| one_line(&error)).into());
    }
    Ok(connection)
}

impl Service<Request<Body>> for Http1 {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Incoming>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut connection = match this.take_idle() {
                Some(connection) => connection,
                None => this.open().await?,
            };
            *request.version_mut() = Version::HTTP_11;
            request.headers_mut().insert(HOST, this.authority.clone());
            // HTTP/1.1 sends the path alone (origin form); the host is in `Host`.
            let path =
                request.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
            *request.uri_mut() = path.into();
            let mut response = match connection.sender.send_request(request).await {
                Ok(response) => response,
                // The connection closed or failed under the call (under TLS 1.3 a refused client
                // certificate shows as a failed write): its own error, read from the alert, says why.
                Err(error) if error.is_canceled() || error.is_closed() || is_io(&error) => {
                    let why = tokio::time::timeout(FAILURE_WAIT, connection.failure()).await.ok().flatten();
                    return Err(why
                        .map_or_else(|| one_line(&error), |why| format!("{}: {why}", one_line(&error)))
                        .into());
                }
                Err(error) => return Err(error.into()),
            };
            *this.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(connection);
            // They describe this HTTP/1.1 hop, not the call (HTTP/2 has none of them).
            for hop in [CONNECTION, HeaderName::from_static("keep-alive"), TRANSFER_ENCODING] {
                response.headers_mut().remove(hop);
            }
            Ok(response)
        })
    }
}
