//! The `grpc.health.v1` service (tonic-health): `""` and every service
//! served report `SERVING` until the graceful shutdown starts.

use std::sync::Arc;

use futures::FutureExt as _;
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};

/// The health state shared by every listener; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    reporter: HealthReporter,
    /// The names health reports on: the whole server (`""`) and every service.
    services: Arc<[String]>,
    server: HealthServer<HealthService>,
}

impl Health {
    /// Health with the server and each of `services` `SERVING`.
    pub(crate) fn serving<'a>(services: impl IntoIterator<Item = &'a str>) -> Self {
        let reporter = HealthReporter::new();
        let mut names = vec![String::new()];
        for service in services {
            // The reporter's lock is new and uncontended, so this completes on its first poll.
            let registered = reporter.set_service_status(service, ServingStatus::Serving).now_or_never();
            debug_assert!(registered.is_some(), "a new health reporter is never locked");
            names.push(service.to_owned());
        }
        let server = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        Self { reporter, services: names.into(), server }
    }

    /// The `grpc.health.v1.Health` service, for one listener's router.
    pub(crate) fn service(&self) -> HealthServer<HealthService> {
        self.server.clone()
    }

    /// Reports every service `NOT_SERVING` (watchers are told at once).
    pub(crate) async fn set_not_serving(&self) {
        for service in self.services.iter() {
            self.reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
    }

    /// Ends every `Watch` stream (after delivering the last status), so that health
    /// watchers do not hold their connections open through the whole drain.
    /// `Check` answers `NOT_FOUND` afterwards.
    pub(crate) async fn end_watches(&self) {
        let mut reporter = self.reporter.clone();
        for service in self.services.iter() {
            reporter.clear_service_status(service).await;
        }
    }
}
