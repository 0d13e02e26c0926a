//! A client that can cancel its call the way gRPC clients do: by resetting
//! the HTTP/2 stream with `RST_STREAM(CANCEL)`.
//!
//! Dropping a tonic call is not enough once the response headers have
//! arrived: hyper keeps streaming the request body, so the stream stays open
//! as long as the request stream does. Here, cancelling makes the request
//! body fail with the h2 `CANCEL` reason, and hyper answers that by resetting
//! the stream with it, exactly what `grpcio`'s `call.cancel()` sends.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use connect_proto::ConnectServiceClient;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{body::Body as TonicBody, transport::Channel};
use tower::Service;

/// A client whose calls all end when the paired token is cancelled.
pub type CancellableClient = ConnectServiceClient<Cancellable>;

/// Wraps a channel so that cancelling `token` resets every call made through it.
pub fn cancellable(channel: Channel, token: CancellationToken) -> CancellableClient {
    ConnectServiceClient::new(Cancellable { inner: channel, token })
}

/// The transport of a [`CancellableClient`].
#[derive(Debug, Clone)]
pub struct Cancellable {
    inner: Channel,
    token: CancellationToken,
}

impl Service<Request<TonicBody>> for Cancellable {
    type Response = <Channel as Service<Request<TonicBody>>>::Response;
    type Error = <Channel as Service<Request<TonicBody>>>::Error;
    type Future = <Channel as Service<Request<TonicBody>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<TonicBody>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<TonicBody>) -> Self::Future {
        let cancelled = Box::pin(self.token.clone().cancelled_owned());
        let request = request.map(|inner| TonicBody::new(CancellableBody { inner, cancelled }));
        self.inner.call(request)
    }
}

struct CancellableBody {
    inner: TonicBody,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Body for CancellableBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(h2::Error::from(h2::Reason::CANCEL))));
        }
        // tonic's encoder does not fail on valid messages; should it, the call is cancelled too.
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|frame| frame.map_err(|_| h2::Error::from(h2::Reason::CANCEL))))
    }

    fn is_end_stream(&self) -> bool {
        // Never claim the end early: the cancel may still come.
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
