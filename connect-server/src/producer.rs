//! The producing side of a response stream.
//!
//! Every streamed response is produced by a task writing into a bounded
//! channel, in batches: a long stream hands the connection up to
//! [`MAX_BATCH`] responses per channel operation ([`Producer::queue`]), which
//! is most of the cost of a small message otherwise. The task stops as soon as one of four things happens: the client
//! goes away (the channel closes), the call's deadline passes, the server's
//! shutdown grace runs out, or the work is done. It ends the stream with a
//! status and an `x-message-count` trailer either way.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use connect_proto::ResponseMessage;
use tokio::{
    sync::mpsc,
    time::{Instant, Sleep},
};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, metadata::MetadataMap};

use crate::stats::{OpenStream, Stats};

/// Batches buffered between a producer and the connection; flow control does the rest.
/// With [`MAX_BATCH`], a stream still buffers at most 64 responses, as before batching.
const CHANNEL_CAPACITY: usize = 4;

/// Most responses [`Producer::queue`] gathers before it hands them over.
pub const MAX_BATCH: usize = 16;

/// One response or the final status, as tonic takes them.
type Item = Result<ResponseMessage, Status>;

/// The trailer that tells the client how many messages the server sent.
pub const MESSAGE_COUNT_TRAILER: &str = "x-message-count";

/// The stream handed to tonic for every streaming response: the producer's
/// batches, one response at a time.
#[derive(Debug)]
pub struct ResponseStream {
    rx: mpsc::Receiver<Vec<Item>>,
    batch: std::vec::IntoIter<Item>,
}

impl Stream for ResponseStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        loop {
            if let Some(item) = self.batch.next() {
                return Poll::Ready(Some(item));
            }
            match std::task::ready!(self.rx.poll_recv(cx)) {
                Some(batch) => self.batch = batch.into_iter(),
                None => return Poll::Ready(None),
            }
        }
    }
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
    tx: mpsc::Sender<Vec<Item>>,
    /// Responses queued but not yet handed to the connection.
    pending: Vec<Item>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The same deadline as an instant, for the fast path's cheap comparison.
    deadline_at: Option<Instant>,
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
        let producer = Self {
            method,
            tx,
            pending: Vec::new(),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            deadline_at: deadline,
            hard_stop,
            sent: 0,
            _open: stats.open_stream(),
        };
        (producer, ResponseStream { rx, batch: Vec::new().into_iter() })
    }

    /// Sends one response (and any queued before it) at once, unless the stream is interrupted first.
    pub async fn send(&mut self, response: ResponseMessage) -> Result<(), Interrupted> {
        self.queue(response).await?;
        self.flush().await
    }

    /// Queues one response, handing the batch over when it is full, unless the
    /// stream is interrupted first. Queued responses go out at the next
    /// [`send`](Self::send), [`pause`](Self::pause) or [`finish`](Self::finish).
    pub async fn queue(&mut self, response: ResponseMessage) -> Result<(), Interrupted> {
        if self.deadline_at.is_some_and(|at| Instant::now() >= at) {
            return Err(Interrupted::DeadlineExceeded);
        }
        self.pending.push(Ok(response));
        if self.pending.len() >= MAX_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands the queued responses to the connection, waiting for room if need be.
    async fn flush(&mut self) -> Result<(), Interrupted> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Fast path: room in the channel means no waker to register on the token,
        // the deadline timer or the channel, which is most of the cost of a send.
        if self.hard_stop.is_cancelled() {
            return Err(Interrupted::ShuttingDown);
        }
        let batch = std::mem::take(&mut self.pending);
        let count = batch.len() as u64;
        let batch = match self.tx.try_send(batch) {
            Ok(()) => {
                self.sent += count;
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Interrupted::ClientGone),
            Err(mpsc::error::TrySendError::Full(batch)) => batch,
        };
        // Slow path: the connection is behind, so wait for room or an interruption.
        let Self { tx, deadline, hard_stop, .. } = self;
        tokio::select! {
            biased;
            () = hard_stop.cancelled() => return Err(Interrupted::ShuttingDown),
            () = until(deadline) => return Err(Interrupted::DeadlineExceeded),
            sent = tx.send(batch) => sent.map_err(|_| Interrupted::ClientGone)?,
        }
        self.sent += count;
        Ok(())
    }

    /// Hands over what is queued if there is room right now; used once the stream is
    /// interrupted, so that responses produced before it still go out as they would have.
    fn flush_if_room(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let count = batch.len() as u64;
        if self.tx.try_send(batch).is_ok() {
            self.sent += count;
        }
    }

    /// Waits for `pause`, unless the stream is interrupted first.
    pub async fn pause(&mut self, pause: Duration) -> Result<(), Interrupted> {
        self.flush().await?;
        tokio::select! {
            interrupted = self.interrupted() => Err(interrupted),
            () = tokio::time::sleep(pause) => Ok(()),
        }
    }

    /// Resolves when the client goes away, the deadline passes or the grace runs out.
    /// Nothing queued is handed over meanwhile: use it after [`send`](Self::send).
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
    pub async fn finish(mut self, outcome: Result<(), Interrupted>) {
        let outcome = match outcome {
            Ok(()) => self.flush().await,
            Err(interrupted) => {
                self.flush_if_room();
                Err(interrupted)
            }
        };
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
        // The status travels as the trailers; if the client left meanwhile there is nobody to tell.
        let _ = self.tx.send(vec![Err(status)]).await;
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
