//! The producing side of a response stream.
//!
//! Every streamed response is produced by a task writing into a bounded
//! channel, in batches: a long stream hands the connection up to
//! [`MAX_BATCH`] responses per channel operation ([`Producer::queue`]), which
//! is most of the cost of a small message otherwise. The task stops as soon as one of four things happens: the client
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
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::{
    grpc::{deadline, status::with_message_count},
    telemetry::{OpenStream, Stats},
};

/// Batches buffered between a producer and the connection; flow control does the rest.
/// With [`MAX_BATCH_BYTES`], a stream buffers at most about 32 KiB of small responses
/// (or two large ones): two keep the producer one batch ahead of the connection,
/// and every admitted stream of a client that never reads holds them
/// (RELIABILITY.md, the unread server streams).
const CHANNEL_CAPACITY: usize = 2;

/// Most responses [`Producer::queue`] gathers before it hands them over.
pub(crate) const MAX_BATCH: usize = 256;

/// Most payload bytes [`Producer::queue`] gathers before it hands them over. Why
/// batches this large: tonic encodes a response stream until it waits, so each
/// batch becomes one HTTP/2 data write; batches of a few hundred bytes cost a
/// long stream a write (and a task switch) every few messages.
pub(crate) const MAX_BATCH_BYTES: usize = 16 * 1024;

/// The slot where a producer leaves the stream's final status.
type FinalStatus = Arc<Mutex<Option<Status>>>;

/// The stream handed to tonic for every streaming response: the producer's
/// batches of messages, one message at a time, then its final status.
#[derive(Debug)]
pub struct ResponseStream {
    rx: mpsc::Receiver<Vec<ResponseMessage>>,
    batch: std::vec::IntoIter<ResponseMessage>,
    final_status: FinalStatus,
    ended: bool,
}

impl Stream for ResponseStream {
    type Item = Result<ResponseMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            if let Some(message) = self.batch.next() {
                return Poll::Ready(Some(Ok(message)));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(batch) => self.batch = batch.into_iter(),
                None => {
                    // Every sender is gone: the status, if any, is in the slot by now.
                    self.ended = true;
                    let status = take_status(&self.final_status)
                        .unwrap_or_else(|| Status::internal("stream ended without a status"));
                    return Poll::Ready(Some(Err(status)));
                }
            }
        }
    }
}

fn take_status(slot: &FinalStatus) -> Option<Status> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Why a producer stopped before finishing its work.
#[derive(Debug)]
pub(crate) enum Interrupted {
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
pub(crate) struct Producer {
    method: &'static str,
    tx: mpsc::Sender<Vec<ResponseMessage>>,
    /// Responses queued but not yet handed to the connection.
    pending: Vec<ResponseMessage>,
    /// Payload bytes in `pending`.
    pending_bytes: usize,
    /// Size of the last batch handed over: room reserved for the next one, so
    /// a long stream's batches do not grow one reallocation at a time.
    last_batch: usize,
    final_status: FinalStatus,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The same deadline as an instant, for the fast path's cheap comparison.
    deadline_at: Option<Instant>,
    hard_stop: CancellationToken,
    sent: u64,
    _open: OpenStream,
}

impl Producer {
    /// Opens a response stream for `method`; hand the returned stream to tonic.
    pub(crate) fn open(
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
            pending: Vec::new(),
            pending_bytes: 0,
            last_batch: 0,
            final_status: Arc::clone(&final_status),
            deadline: deadline::timer(deadline),
            deadline_at: deadline,
            hard_stop,
            sent: 0,
            _open: stats.open_stream(),
        };
        let stream = ResponseStream { rx, batch: Vec::new().into_iter(), final_status, ended: false };
        (producer, stream)
    }

    /// Sends one response (and any queued before it) at once, unless the stream is interrupted first.
    pub(crate) async fn send(&mut self, response: ResponseMessage) -> Result<(), Interrupted> {
        self.queue(response).await?;
        self.flush().await
    }

    /// Queues one response, handing the batch over when it is full, unless the
    /// stream is interrupted first. Queued responses go out at the next
    /// [`send`](Self::send), [`pause`](Self::pause) or [`finish`](Self::finish).
    pub(crate) async fn queue(&mut self, response: ResponseMessage) -> Result<(), Interrupted> {
        if self.deadline_at.is_some_and(|at| Instant::now() >= at) {
            return Err(Interrupted::DeadlineExceeded);
        }
        if self.pending.is_empty() {
            self.pending.reserve(self.last_batch);
        }
        self.pending_bytes += response.response_data.len();
        self.pending.push(response);
        if self.pending.len() >= MAX_BATCH || self.pending_bytes >= MAX_BATCH_BYTES {
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
        self.pending_bytes = 0;
        self.last_batch = batch.len();
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
            () = deadline::expired(deadline) => return Err(Interrupted::DeadlineExceeded),
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
        self.pending_bytes = 0;
        let count = batch.len() as u64;
        if self.tx.try_send(batch).is_ok() {
            self.sent += count;
        }
    }

    /// Waits for `pause`, unless the stream is interrupted first.
    pub(crate) async fn pause(&mut self, pause: Duration) -> Result<(), Interrupted> {
        self.flush().await?;
        tokio::select! {
            interrupted = self.interrupted() => Err(interrupted),
            () = tokio::time::sleep(pause) => Ok(()),
        }
    }

    /// Resolves when the client goes away, the deadline passes or the grace runs out.
    /// Nothing queued is handed over meanwhile: use it after [`send`](Self::send).
    pub(crate) async fn interrupted(&mut self) -> Interrupted {
        let Self { tx, deadline, hard_stop, .. } = self;
        tokio::select! {
            biased;
            () = hard_stop.cancelled() => Interrupted::ShuttingDown,
            () = deadline::expired(deadline) => Interrupted::DeadlineExceeded,
            () = tx.closed() => Interrupted::ClientGone,
        }
    }

    /// Ends the stream: an OK status when `outcome` is `Ok`, the matching error otherwise.
    pub(crate) async fn finish(mut self, outcome: Result<(), Interrupted>) {
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
        // Delivered after the queued messages; dropping `self` closes the channel.
        *self.final_status.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
    }
}
