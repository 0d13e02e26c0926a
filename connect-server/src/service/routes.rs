//! Taking each call to its service: one hash lookup of the path among every
//! method the schema describes, then the token check when the service asks
//! for it.
//!
//! Not tonic's router: its axum matching, boxed route clone and path
//! parameters cost each call more than a whole unary handler, and every
//! service here is found by the same single lookup.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use futures::future::{BoxFuture, FutureExt as _, ready};
use http::{Request, Response};
use std::{any::Any, panic::AssertUnwindSafe};
use tonic::{Status, body::Body};
use tower::{Service, ServiceExt as _};

use super::BearerAuth;
use crate::GrpcService;
use crate::web::Schema;

/// The future of every route: the services are of many types.
type RouteFuture = BoxFuture<'static, Result<Response<Body>, Infallible>>;

/// A service of any type, called through a shared reference.
trait Route: Send + Sync {
    fn call(&self, request: Request<Body>) -> RouteFuture;
}

/// A tonic service as a [`Route`]: each call gets a clone (an `Arc` for
/// tonic's generated servers), driven to ready and called.
struct Served<S>(S);

impl<S: GrpcService> Route for Served<S> {
    fn call(&self, request: Request<Body>) -> RouteFuture {
        let mut service = self.0.clone();
        // tonic's generated servers are always ready: then the call's future is
        // boxed alone, not with the whole request waiting for readiness.
        let call = match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => service.call(request).left_future(),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => service.oneshot(request).right_future(),
        };
        // A handler that panics ends its own call, not the connection's others.
        AssertUnwindSafe(call)
            .catch_unwind()
            .map(|outcome| outcome.unwrap_or_else(|panic| Ok(panicked(S::NAME, panic.as_ref()))))
            .boxed()
    }
}

/// The answer to a call whose handler panicked: `INTERNAL`, and the panic in the log.
fn panicked(service: &str, panic: &(dyn Any + Send)) -> Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    tracing::error!(service, panic = message, "a handler panicked: its call ends with INTERNAL");
    Status::internal("the handler panicked").into_http()
}

/// One service and whether its calls need the token.
#[derive(Clone)]
struct Entry {
    route: Arc<dyn Route>,
    auth: bool,
}

/// The services of a server by name; built once, shared by every connection.
#[derive(Clone, Default)]
pub(crate) struct Routes {
    services: HashMap<Box<str>, Entry>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.services.keys()).finish()
    }
}

impl Routes {
    /// Adds `service` under its name, behind the token check when `auth`;
    /// `false` when a service of that name is there already.
    pub(crate) fn add<S: GrpcService>(&mut self, service: S, auth: bool) -> bool {
        let entry = Entry { route: Arc::new(Served(service)), auth };
        self.services.insert(S::NAME.into(), entry).is_none()
    }

    /// The service that takes every call to a method of `schema`, checking tokens with `auth`.
    pub(crate) fn into_dispatch(self, schema: &Schema, auth: BearerAuth) -> Dispatch {
        let methods = schema
            .methods()
            .filter_map(|(path, method)| {
                let entry = self.services.get(method.parent_service().full_name())?;
                Some((path.into(), entry.clone()))
            })
            .collect();
        Dispatch { shared: Arc::new(DispatchShared { methods, services: self, auth }) }
    }
}

/// Sends each call to its service (see the module docs); cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    shared: Arc<DispatchShared>,
}

#[derive(Debug)]
struct DispatchShared {
    /// Every method's service, by path (`/package.Service/Method`).
    methods: HashMap<Box<str>, Entry, foldhash::fast::RandomState>,
    /// The services, to tell an unknown method from an unknown service.
    services: Routes,
    auth: BearerAuth,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("auth", &self.auth).finish_non_exhaustive()
    }
}

/// Why no service takes a call to `path`, in grpc-go's words.
fn unknown(path: &str, services: &Routes) -> Status {
    let (service, method) =
        path.strip_prefix('/').and_then(|path| path.split_once('/')).unwrap_or(("", path));
    if services.services.contains_key(service) {
        Status::unimplemented(format!("unknown method {method} for service {service}"))
    } else {
        Status::unimplemented(format!("unknown service {service}"))
    }
}

impl Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RouteFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each route is driven to ready on its own call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let shared = &*self.shared;
        let Some(entry) = shared.methods.get(request.uri().path()) else {
            return ready(Ok(unknown(request.uri().path(), &shared.services).into_http())).boxed();
        };
        if entry.auth
            && let Err(status) = shared.auth.check(request.headers())
        {
            return ready(Ok(status.into_http())).boxed();
        }
        entry.route.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_path_is_named_as_grpc_go_names_it() {
        let mut routes = Routes::default();
        let health = tonic_health::server::health_reporter().1;
        assert!(routes.add(health.clone(), false));
        assert!(!routes.add(health, false), "a second service of the same name");
        let message = |path: &str| unknown(path, &routes).message().to_owned();
        assert_eq!(
            message("/grpc.health.v1.Health/Nope"),
            "unknown method Nope for service grpc.health.v1.Health"
        );
        assert_eq!(message("/Nope/Check"), "unknown service Nope");
        assert_eq!(message("/a/b/c"), "unknown service a");
        assert_eq!(message("nothing"), "unknown service ");
    }
}
