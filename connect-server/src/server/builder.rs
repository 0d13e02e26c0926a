//! Building a server: the services it serves and the descriptors that
//! describe them, checked together once, before anything is bound.

use std::{convert::Infallible, sync::Arc};

use http::{Request, Response};
use prost_reflect::DescriptorPool;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService};

use super::{ConnectServer, Shared};
use crate::{
    Config, Error,
    config::Settings,
    service::{Health, Routes},
    telemetry::{Metrics, Stats},
};

/// What the builder serves: a tonic-generated server, or any tower service of
/// gRPC requests with a [`NamedService`] name (the fully-qualified service).
pub trait GrpcService:
    tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
    + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// How one service is served.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    auth: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceOptions {
    /// The defaults: calls need the bearer token when `--auth-token-file` sets one.
    pub fn new() -> Self {
        Self { auth: true }
    }

    /// Calls need no token, as health and reflection need none.
    pub fn without_auth(self) -> Self {
        Self { auth: false }
    }
}

/// Collects the services of a server and their descriptors; made by
/// [`ConnectServer::builder`], finished by [`build`](Self::build).
#[derive(Debug)]
pub struct Builder {
    config: Config,
    routes: Routes,
    /// The names of the services added, in order.
    added: Vec<String>,
    /// The first name added twice.
    duplicate: Option<String>,
    /// Every descriptor registered, for JSON, the playground and the checks of `build`.
    pool: DescriptorPool,
    /// The encoded sets as registered: reflection serves their files verbatim.
    sets: Vec<Vec<u8>>,
    pub(super) stats: Arc<Stats>,
    pub(super) hard_stop: CancellationToken,
}

impl Builder {
    pub(super) fn new(config: Config) -> Self {
        Self {
            config,
            routes: Routes::default(),
            added: Vec::new(),
            duplicate: None,
            pool: DescriptorPool::new(),
            sets: Vec::new(),
            stats: Arc::default(),
            hard_stop: CancellationToken::new(),
        }
    }

    /// The configuration the server is built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves `service`, a tonic-generated server (`GreeterServer::new(..)`)
    /// or any tower service with a [`NamedService`] name, behind the token
    /// check. Its descriptors must be registered with
    /// [`file_descriptor_set`](Self::file_descriptor_set).
    pub fn add_service<S: GrpcService>(self, service: S) -> Self {
        self.add_service_with(service, ServiceOptions::new())
    }

    /// [`add_service`](Self::add_service) with `options`.
    pub fn add_service_with<S: GrpcService>(mut self, service: S, options: ServiceOptions) -> Self {
        if !self.routes.add(service, options.auth) {
            self.duplicate.get_or_insert_with(|| S::NAME.to_owned());
        }
        self.added.push(S::NAME.to_owned());
        self
    }

    /// Registers an encoded `FileDescriptorSet` (what `protox`, `protoc -o`
    /// or `buf build -o` write; tonic-build's `file_descriptor_set_path`):
    /// the descriptors that give the services added reflection, JSON and
    /// the playground. Fails when it does not decode or its files do not link.
    pub fn file_descriptor_set(mut self, encoded: &[u8]) -> Result<Self, Error> {
        self.pool.decode_file_descriptor_set(encoded).map_err(Error::Descriptors)?;
        self.sets.push(encoded.to_vec());
        Ok(self)
    }

    /// The server: fails when a service was added twice or has no
    /// descriptors, or when the configuration is wrong (a TLS file, the
    /// token file, the metrics address).
    pub fn build(self) -> Result<ConnectServer, Error> {
        let Self { config, mut routes, added, duplicate, pool, sets, stats, hard_stop } = self;
        if let Some(name) = duplicate {
            return Err(Error::DuplicateService(name));
        }
        // Health and reflection are the server's own.
        if let Some(name) = added.iter().find(|name| STANDARD.contains(&name.as_str())) {
            return Err(Error::DuplicateService(name.clone()));
        }
        let health = Health::serving(added.iter().map(String::as_str));
        routes.add(health.service(), false);
        // Every service a client can reach, as reflection lists them.
        let mut served: Vec<&str> = added.iter().map(String::as_str).collect();
        served.push(HEALTH);
        add_reflection(&mut routes, &sets, &served)?;
        served.extend([REFLECTION_V1, REFLECTION_V1ALPHA]);
        let schema = crate::web::schema::load(pool, &served)?;
        let metrics = Arc::new(Metrics::new(schema.services()));
        let settings = Settings::build(&config, schema.clone(), metrics.tls_handshake_failures())
            .map_err(Error::config)?;
        let dispatch = routes.into_dispatch(&schema, settings.auth.clone());
        Shared::new(settings, schema, metrics, stats, health, dispatch, hard_stop)
            .map(|shared| ConnectServer { shared: Arc::new(shared) })
    }
}

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";
/// The services every server has.
const STANDARD: [&str; 3] = [HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA];

/// Adds reflection v1 and v1alpha over `sets` and health's descriptors to
/// `routes`, each listing `served` and itself.
fn add_reflection(routes: &mut Routes, sets: &[Vec<u8>], served: &[&str]) -> Result<(), Error> {
    let builder = |itself: &str| {
        let mut builder = tonic_reflection::server::Builder::configure()
            // So reflection tools can call the health service too.
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for set in sets {
            builder = builder.register_encoded_file_descriptor_set(set);
        }
        for name in served.iter().copied().chain([itself]) {
            builder = builder.with_service_name(name);
        }
        builder
    };
    let invalid = |error: tonic_reflection::server::Error| Error::Config(format!("reflection: {error}"));
    routes.add(builder(REFLECTION_V1).build_v1().map_err(invalid)?, false);
    routes.add(builder(REFLECTION_V1ALPHA).build_v1alpha().map_err(invalid)?, false);
    Ok(())
}
