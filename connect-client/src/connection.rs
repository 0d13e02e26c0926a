//! What a call carries besides its message: the TLS files for `https://`
//! addresses, the bearer token and compression the command line asks for.
//! (The channel itself is opened by [`crate::balance`].)

use std::path::PathBuf;

use connect_proto::ConnectServiceClient;
use tonic::{
    Request, Status,
    codec::CompressionEncoding,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

use crate::{
    cli::{Cli, Compression},
    exit::ClientError,
    metadata::{CallMetadata, Header},
};

/// A channel that sends the configured credentials and `-H` headers on every
/// call, and prints the response metadata with `-v`: what every command calls on.
pub type CallChannel = CallMetadata<InterceptedService<Channel, Credentials>>;

/// A `ConnectService` client on a [`CallChannel`].
pub type Client = ConnectServiceClient<CallChannel>;

/// Everything a call carries besides its message.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// `-H` request metadata.
    pub headers: Vec<Header>,
    /// `-v`: print response headers and trailers to stderr.
    pub verbose: bool,
    /// Bearer token.
    pub token: Option<String>,
    /// Request compression.
    pub compress: Option<Compression>,
}

impl From<&Cli> for CallOptions {
    fn from(cli: &Cli) -> Self {
        Self {
            headers: cli.headers.clone(),
            verbose: cli.verbose,
            token: cli.token.clone(),
            compress: cli.compress,
        }
    }
}

/// The TLS files for `https://` addresses.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA certificate (PEM) that the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for mTLS.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    pub key: Option<PathBuf>,
}

impl From<&Cli> for TlsFiles {
    fn from(cli: &Cli) -> Self {
        Self { ca: cli.ca.clone(), cert: cli.cert.clone(), key: cli.key.clone() }
    }
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// The TLS settings for `addrs`: some when any is `https://`; the files
    /// without an `https://` address are a usage error.
    pub fn config_for(&self, addrs: &[String]) -> Result<Option<ClientTlsConfig>, ClientError> {
        if addrs.iter().any(|addr| addr.starts_with("https://")) {
            Ok(Some(self.config()?))
        } else if self.is_empty() {
            Ok(None)
        } else {
            Err(ClientError::Other("--ca, --cert and --key need an https:// address".into()))
        }
    }

    fn config(&self) -> Result<ClientTlsConfig, ClientError> {
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            config = config.ca_certificate(Certificate::from_pem(read(ca, "--ca")?));
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(read(cert, "--cert")?, read(key, "--key")?));
        }
        Ok(config)
    }
}

fn read(path: &PathBuf, flag: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|error| ClientError::Other(format!("cannot read {flag} {}: {error}", path.display())))
}

/// `channel` with the token, headers and `-v` of `options`.
pub fn call_channel(channel: Channel, options: &CallOptions) -> Result<CallChannel, ClientError> {
    let credentials = Credentials::bearer(options.token.as_deref())?;
    let authorized = InterceptedService::new(channel, credentials);
    Ok(CallMetadata::new(authorized, options.headers.clone(), options.verbose))
}

/// A client on `channel` making calls as `options` says.
pub fn client(channel: Channel, options: &CallOptions) -> Result<Client, ClientError> {
    let client = ConnectServiceClient::new(call_channel(channel, options)?);
    // Only ask for compressed responses with --compress: for small messages
    // compression costs more CPU than it saves bytes.
    Ok(match options.compress {
        None => client,
        Some(compress) => {
            let encoding = match compress {
                Compression::Gzip => CompressionEncoding::Gzip,
                Compression::Zstd => CompressionEncoding::Zstd,
            };
            client.send_compressed(encoding).accept_compressed(encoding)
        }
    })
}

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone, Default)]
pub struct Credentials {
    authorization: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("bearer", &self.authorization.is_some()).finish()
    }
}

impl Credentials {
    /// Credentials sending `token`, or none; fails if the token cannot be a header value.
    pub fn bearer(token: Option<&str>) -> Result<Self, ClientError> {
        let authorization = token
            .map(|token| {
                let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| ClientError::Other("--token must be printable ASCII".into()))?;
                value.set_sensitive(true);
                Ok::<_, ClientError>(value)
            })
            .transpose()?;
        Ok(Self { authorization })
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}
