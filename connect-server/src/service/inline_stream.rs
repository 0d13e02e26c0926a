//! Short unpaced response streams, made inline as tonic polls them.
//!
//! A `ServerStreamRPC` with no pause between its responses and few enough
//! bytes in all to fit the client's initial flow-control window (64 KiB) is
//! never held up by a slow reader: tonic polls it to the end at once. For
//! those, a task and a channel ([`super::producer`]) are pure overhead (they
//! cost a stream of ten messages more than the messages themselves), so the
//! responses are made in `poll_next` instead. Everything else about the
//! stream is the same: it checks the deadline (and the handler the shutdown
//! grace) before the first message, ends with a status carrying
//! `x-message-count`, and logs "Connection dropped!" when the client leaves
//! before the end. Paced and larger streams keep the
//! producer task, which can stop at the deadline while nobody polls it.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use connect_proto::ResponseMessage;
use tokio::time::Instant;
use tokio_stream::Stream;
use tonic::Status;

use super::greeting::{GREETING, stream_item};
use crate::{grpc::status::with_message_count, telemetry::OpenStream};

/// Total response bytes up to which a stream is made inline: below the
/// 65,535-byte initial window of HTTP/2, with room for the gRPC framing.
pub(crate) const MAX_INLINE_BYTES: u64 = 60 * 1024;

/// Whether `count` responses to `data`, with no pause, are made inline.
pub(crate) fn fits(data: &str, count: u32) -> bool {
    // Per message: the 5-byte gRPC prefix, the field tag and length (up to 4 bytes),
    // the greeting, the data and ": server(" + up to ten digits + ") ".
    let per_message = (5 + 4 + GREETING.len() + data.len() + 21) as u64;
    per_message * u64::from(count) <= MAX_INLINE_BYTES
}

/// A response stream of `count` greetings, made as they are polled.
#[derive(Debug)]
pub struct InlineStream {
    method: &'static str,
    data: String,
    next: u32,
    count: u32,
    deadline: Option<Instant>,
    ended: bool,
    _open: OpenStream,
}

impl InlineStream {
    /// `count` responses to `data` for `method`, or none when `deadline` has passed.
    pub(crate) fn new(
        method: &'static str,
        data: String,
        count: u32,
        deadline: Option<Instant>,
        open: OpenStream,
    ) -> Self {
        Self { method, data, next: 1, count, deadline, ended: false, _open: open }
    }

    fn sent(&self) -> u64 {
        u64::from(self.next - 1)
    }

    /// Ends the stream with `status`, counting the messages sent.
    fn end(&mut self, status: Status) -> Poll<Option<Result<ResponseMessage, Status>>> {
        self.ended = true;
        Poll::Ready(Some(Err(with_message_count(status, self.sent()))))
    }
}

impl Stream for InlineStream {
    type Item = Result<ResponseMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // The whole stream takes microseconds: the clock is read once, before the first message.
        if self.next == 1 && self.deadline.is_some_and(|at| Instant::now() >= at) {
            tracing::info!(method = self.method, sent = 0, "deadline exceeded");
            return self.end(Status::deadline_exceeded("deadline exceeded"));
        }
        if self.next > self.count {
            return self.end(Status::ok(""));
        }
        let message = stream_item(&self.data, self.next);
        self.next += 1;
        Poll::Ready(Some(Ok(message)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.count + 1).saturating_sub(self.next) as usize + usize::from(!self.ended);
        (left, Some(left))
    }
}

impl Drop for InlineStream {
    fn drop(&mut self) {
        if !self.ended {
            // tonic drops the stream unfinished only when the client has gone.
            tracing::info!(method = self.method, sent = self.sent(), "Connection dropped!");
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use tonic::Code;

    use super::*;
    use crate::telemetry::Stats;

    fn stream(count: u32, deadline: Option<Instant>) -> InlineStream {
        let stats = std::sync::Arc::new(Stats::default());
        InlineStream::new("ServerStreamRPC", "people".into(), count, deadline, stats.open_stream())
    }

    #[tokio::test]
    async fn yields_the_greetings_then_ok_with_the_count() {
        let items: Vec<_> = stream(3, None).collect().await;
        assert_eq!(items.len(), 4);
        for (i, item) in items[..3].iter().enumerate() {
            let expected = format!("Hello, people: server({}) ", i + 1);
            assert_eq!(item.as_ref().unwrap().response_data, expected);
        }
        let status = items[3].as_ref().unwrap_err();
        assert_eq!(status.code(), Code::Ok);
        assert_eq!(status.metadata().get("x-message-count").unwrap(), "3");
    }

    #[tokio::test]
    async fn past_its_deadline_it_sends_nothing() {
        let items: Vec<_> = stream(3, Some(Instant::now())).collect().await;
        assert_eq!(items.len(), 1);
        let status = items[0].as_ref().unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::DeadlineExceeded, "deadline exceeded"));
        assert_eq!(status.metadata().get("x-message-count").unwrap(), "0");
    }

    #[test]
    fn only_short_streams_fit() {
        assert!(fits("world", 10));
        assert!(fits("world", 1000));
        assert!(!fits("world", 2000));
        assert!(!fits(&"x".repeat(1000), 100));
    }
}
