//! The producing side of a response stream.
//!
//! Every streamed response is produced by a task writing into a bounded
//! channel. The task stops as soon as one of four things happens: the client
//! goes away (the channel closes), the call's deadline passes, the server's
//! shutdown grace runs out, or the work is done. It ends the stream with a
//! status and an `x-message-count` trailer either way.
//!
//! The final status does not travel through the channel: a client that stops
//! reading keeps the channel full, and a producer waiting to queue its status
//! would never stop (nor release its stream). The producer leaves the status
//! in a slot beside the channel and stops at once; [`ResponseStream`] hands the
//! queued messages to tonic, then the status. A stream that ends with no status
//! (a producer that died) ends non-OK, never as a silent, truncated success.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, ready},
    time::Duration,
};

use connect_proto::ResponseMessage;
use tokio::{
    sync::mpsc,
    time::{Instant, Sleep},
};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, metadata::MetadataMap};

use crate::stats::{OpenStream, Stats};

/// Responses buffered between a producer and the connection; flow control does the rest.
const CHANNEL_CAPACITY: usize = 64;

/// The trailer that tells the client how many messages the server sent.
pub const MESSAGE_COUNT_TRAILER: &str = "x-message-count";

/// The slot where a producer leaves the stream's final status.
type FinalStatus = Arc<Mutex<Option<Status>>>;

/// The stream handed to tonic for every streaming response: the produced
/// messages, then the producer's final status.
#[derive(Debug)]
pub struct ResponseStream {
    messages: ReceiverStream<ResponseMessage>,
    final_status: FinalStatus,
    ended: bool,
}

impl Stream for ResponseStream {
    type Item = Result<ResponseMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut self.messages).poll_next(cx)) {
            Some(message) => Poll::Ready(Some(Ok(message))),
            None => {
                // Every sender is gone: the status, if any, is in the slot by now.
                self.ended = true;
                let status = take_status(&self.final_status)
                    .unwrap_or_else(|| Status::internal("stream ended without a status"));
                Poll::Ready(Some(Err(status)))
            }
        }
    }
}

fn take_status(slot: &FinalStatus) -> Option<Status> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Why a producer stopped before finishing its work.
#[derive(Debug)]
pub enum Interrupted {
    /// The client cancelled, reset the stream or disconnected.
    ClientGone,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// The server's shutdown grace ran out.
    ShuttingDown,
    /// The client's request stream failed with this status.
    Inbound(Status),
}

/// The sending half of a response stream, with everything that may end it early.
#[derive(Debug)]
pub struct Producer {
    method: &'static str,
    tx: mpsc::Sender<ResponseMessage>,
    final_status: FinalStatus,
    deadline: Option<Pin<Box<Sleep>>>,
    hard_stop: CancellationToken,
    sent: u64,
    _open: OpenStream,
}

impl Producer {
    /// Opens a response stream for `method`; hand the returned stream to tonic.
    pub fn open(
        method: &'static str,
        deadline: Option<Instant>,
        hard_stop: CancellationToken,
        stats: &Arc<Stats>,
    ) -> (Self, ResponseStream) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let final_status = FinalStatus::default();
        let producer = Self {
            method,
            tx,
            final_status: Arc::clone(&final_status),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            hard_stop,
            sent: 0,
            _open: stats.open_stream(),
        };
        (producer, ResponseStream { messages: ReceiverStream::new(rx), final_status, ended: false })
    }

    /// Sends one response, unless the stream is interrupted first.
    pub async fn send(&mut self, response: ResponseMessage) -> Result<(), Interrupted> {
        let Self { tx, deadline, hard_stop, .. } = self;
        tokio::select! {
            biased;
            () = hard_stop.cancelled() => return Err(Interrupted::ShuttingDown),
            () = until(deadline) => return Err(Interrupted::DeadlineExceeded),
            sent = tx.send(response) => sent.map_err(|_| Interrupted::ClientGone)?,
        }
        self.sent += 1;
        Ok(())
    }

    /// Waits for `pause`, unless the stream is interrupted first.
    pub async fn pause(&mut self, pause: Duration) -> Result<(), Interrupted> {
        tokio::select! {
            interrupted = self.interrupted() => Err(interrupted),
            () = tokio::time::sleep(pause) => Ok(()),
        }
    }

    /// Resolves when the client goes away, the deadline passes or the grace runs out.
    pub async fn interrupted(&mut self) -> Interrupted {
        let Self { tx, deadline, hard_stop, .. } = self;
        tokio::select! {
            biased;
            () = hard_stop.cancelled() => Interrupted::ShuttingDown,
            () = until(deadline) => Interrupted::DeadlineExceeded,
            () = tx.closed() => Interrupted::ClientGone,
        }
    }

    /// Ends the stream: an OK status when `outcome` is `Ok`, the matching error otherwise.
    pub async fn finish(self, outcome: Result<(), Interrupted>) {
        let status = match outcome {
            Ok(()) => Status::ok(""),
            // The observe layer counts the call as cancelled (or, past the deadline, deadline
            // exceeded) in `Stats`: it alone sees every way a client can leave.
            Err(Interrupted::ClientGone) => {
                tracing::info!(method = self.method, sent = self.sent, "Connection dropped!");
                return;
            }
            Err(Interrupted::DeadlineExceeded) => {
                tracing::info!(method = self.method, sent = self.sent, "deadline exceeded");
                Status::deadline_exceeded("deadline exceeded")
            }
            Err(Interrupted::ShuttingDown) => {
                tracing::info!(method = self.method, sent = self.sent, "ended by shutdown");
                Status::unavailable("server shutting down")
            }
            Err(Interrupted::Inbound(status)) => {
                if status.code() == Code::Cancelled || status.code() == Code::Unknown {
                    tracing::info!(method = self.method, sent = self.sent, "Connection dropped!");
                    return;
                }
                status
            }
        };
        let status = with_message_count(status, self.sent);
        // Delivered after the queued messages; dropping `self` closes the channel.
        *self.final_status.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
    }
}

/// Copies `status` with an `x-message-count` trailer added.
fn with_message_count(status: Status, sent: u64) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(MESSAGE_COUNT_TRAILER, sent.into());
    Status::with_metadata(status.code(), status.message(), metadata)
}

/// Resolves when `deadline` fires, or never when there is none.
async fn until(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
