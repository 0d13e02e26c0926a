//! `ui`: the server's browser playground (connect-playground), served
//! locally for any server: the page lists the services of the schema (the
//! server's reflection, or `--proto`/`--protoset` files), and each call the
//! page makes goes out over the client's own connection, in `--protocol`,
//! with TLS, `-H` and the token as every other command sends them.

use std::{convert::Infallible, net::SocketAddr, num::NonZeroUsize};

use connect_playground::{Schema as PlaygroundSchema, Settings};
use http::{Request, Response};
use prost_reflect::ServiceDescriptor;
use tonic::{Status, body::Body};
use tower::{BoxError, ServiceExt as _};

use crate::{
    call::CallChannel,
    channel::url,
    error::{ClientError, one_line},
    output::Output,
    schema::Schema,
};

/// Where the page is served and how much it may ask of the client.
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// `--listen`: where the page is served.
    pub listen: SocketAddr,
    /// `--max-calls`: most calls at once.
    pub max_calls: NonZeroUsize,
    /// `--max-message-size`: the largest request message, in bytes.
    pub max_message_bytes: usize,
}

/// Serves the playground for the server on `channel` (at `addr`) at
/// `settings.listen`, until Ctrl-C; prints `playground at http://ADDR/` once
/// it listens.
pub async fn serve(
    schema: Schema,
    channel: CallChannel,
    addr: &str,
    settings: &UiSettings,
    output: &Output,
) -> Result<(), ClientError> {
    let schema = playground_schema(schema, output).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|error| ClientError::Usage(format!("--listen {}: {error}", settings.listen)))?;
    let endpoint = listener.local_addr().map_err(|error| ClientError::Other(error.to_string()))?;
    // Any failure to reach the server is the call's status, as a gRPC client reports it.
    let stack = tower::service_fn(move |request: Request<Body>| {
        let channel = channel.clone();
        async move { Ok::<_, Infallible>(response_or_status(channel.oneshot(request).await)) }
    });
    let playground = Settings {
        max_message_bytes: settings.max_message_bytes,
        max_message_flag: "--max-message-size",
        max_calls: settings.max_calls,
        max_calls_flag: "--max-calls",
        endpoint,
        grpc_url: url(addr),
    };
    let router = connect_playground::router(move |_peer| stack.clone(), schema, playground);
    output.line(format_args!("playground at http://{endpoint}/"));
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // Without a signal handler the process cannot end cleanly; then it runs until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .map_err(|error| ClientError::Other(format!("serving the playground: {error}")))
}

/// The response, or the status of a call that never reached the server
/// (as a trailers-only response).
fn response_or_status<B>(result: Result<Response<B>, BoxError>) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match result {
        Ok(response) => response.map(Body::new),
        Err(error) => Status::unavailable(one_line(&*error)).into_http(),
    }
}

/// The schema's services with their descriptors, for the page: every
/// service of the files, or every one the server lists through reflection
/// and also describes (grpcio lists a service it cannot describe when it is
/// added by hand: that one is left out, with a line on stderr).
async fn playground_schema(mut schema: Schema, output: &Output) -> Result<PlaygroundSchema, ClientError> {
    let mut names = Vec::new();
    for name in schema.list_services().await? {
        match schema.pool(std::slice::from_ref(&name)).await {
            Ok(_) => names.push(name),
            Err(error) => output.error_line(format_args!("ui: {name} left out: {error}")),
        }
    }
    let mut pool = schema.pool(&names).await?;
    // The error details (`google.rpc.BadRequest`, ...) as JSON when the schema lacks them;
    // a schema with its own, different copies keeps those.
    let mut with_details = pool.clone();
    if with_details.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET).is_ok() {
        pool = with_details;
    }
    let served: Vec<ServiceDescriptor> =
        names.iter().filter_map(|name| pool.get_service_by_name(name)).collect();
    Ok(PlaygroundSchema::new(pool, served))
}
