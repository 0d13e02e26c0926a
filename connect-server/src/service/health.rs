//! The `grpc.health.v1` service (tonic-health): `""` and `ConnectService`
//! report `SERVING` until the graceful shutdown starts.

use connect_proto::SERVICE_NAME;
use futures::FutureExt as _;
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};

/// The names health reports on: the whole server (`""`) and `ConnectService`.
const SERVICES: [&str; 2] = ["", SERVICE_NAME];

/// The health state shared by every listener; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    reporter: HealthReporter,
    server: HealthServer<HealthService>,
}

impl Health {
    /// Health with every service `SERVING`.
    pub(crate) fn serving() -> Self {
        let reporter = HealthReporter::new();
        // The reporter's lock is new and uncontended, so this completes on its first poll.
        let registered = reporter.set_service_status(SERVICE_NAME, ServingStatus::Serving).now_or_never();
        debug_assert!(registered.is_some(), "a new health reporter is never locked");
        let server = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        Self { reporter, server }
    }

    /// The `grpc.health.v1.Health` service, for one listener's router.
    pub(crate) fn service(&self) -> HealthServer<HealthService> {
        self.server.clone()
    }

    /// Reports every service `NOT_SERVING` (watchers are told at once).
    pub(crate) async fn set_not_serving(&self) {
        for service in SERVICES {
            self.reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
    }

    /// Ends every `Watch` stream (after delivering the last status), so that health
    /// watchers do not hold their connections open through the whole drain.
    /// `Check` answers `NOT_FOUND` afterwards.
    pub(crate) async fn end_watches(&self) {
        let mut reporter = self.reporter.clone();
        for service in SERVICES {
            reporter.clear_service_status(service).await;
        }
    }
}
