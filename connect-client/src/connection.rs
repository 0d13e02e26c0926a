//! Opening a channel to the server.

use std::time::Duration;

use connect_proto::ConnectServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::exit::{ClientError, one_line};

/// Connects to `addr` (e.g. `http://localhost:50051`), giving up after `connect_timeout`.
pub async fn connect(
    addr: &str,
    connect_timeout: Duration,
) -> Result<ConnectServiceClient<Channel>, ClientError> {
    channel(addr, connect_timeout).await.map(ConnectServiceClient::new)
}

/// A channel to `addr`, for clients that wrap it (see [`crate::metadata`]).
pub async fn channel(addr: &str, connect_timeout: Duration) -> Result<Channel, ClientError> {
    let failed = |reason: String| ClientError::Connect { addr: addr.to_owned(), reason };
    let endpoint = Endpoint::from_shared(addr.to_owned())
        .map_err(|error| failed(one_line(&error)))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true);
    endpoint.connect().await.map_err(|error| failed(one_line(&error)))
}
