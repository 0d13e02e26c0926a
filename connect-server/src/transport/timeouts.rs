//! The two timeouts of a connection that keepalive pings cannot give: one
//! for a client that connects and sends nothing (slowloris before the
//! preface), one for a client that stays connected with no call (after it).

use std::{io, sync::Arc, task::Context, time::Duration};

use tokio::time::Instant;

use super::{connections::ConnectionCalls, tap::Tap, wake_at::WakeAt};

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0...`).
const PREFACE_LEN: usize = 24;

/// Closes a connection that has not sent the 24 bytes of the HTTP/2 preface
/// (or, under TLS, the start of its handshake) within `--handshake-timeout`.
#[derive(Debug)]
pub(crate) struct PrefaceTimeout {
    left: usize,
    /// `None` once the preface is in.
    timer: Option<WakeAt>,
}

impl PrefaceTimeout {
    /// A timeout of `timeout` from `opened`.
    pub(crate) fn new(opened: Instant, timeout: Duration) -> Self {
        Self { left: PREFACE_LEN, timer: Some(WakeAt::new(opened + timeout)) }
    }
}

impl Tap for PrefaceTimeout {
    fn after_read(&mut self, bytes: usize) {
        if self.timer.is_some() {
            self.left = self.left.saturating_sub(bytes);
            if self.left == 0 {
                self.timer = None;
            }
        }
    }

    fn read_pending(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(timer) = &mut self.timer
            && timer.poll_expired(cx)
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface before the handshake timeout",
            ));
        }
        Ok(())
    }
}

/// Closes a connection that has had no call in flight for `--idle-timeout`.
#[derive(Debug)]
pub(crate) struct IdleTimeout {
    timeout: Duration,
    timer: WakeAt,
    calls: Arc<ConnectionCalls>,
}

impl IdleTimeout {
    /// A timeout of `timeout` without a call on the connection of `calls`.
    pub(crate) fn new(calls: Arc<ConnectionCalls>, timeout: Duration) -> Self {
        Self { timeout, timer: WakeAt::new(calls.opened() + timeout), calls }
    }
}

impl Tap for IdleTimeout {
    fn read_pending(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while self.timer.poll_expired(cx) {
            let now = Instant::now();
            match self.calls.idle_since() {
                Some(since) if now >= since + self.timeout => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long"));
                }
                Some(since) => self.timer.reset(since + self.timeout),
                // Calls in flight: look again one timeout from now.
                None => self.timer.reset(now + self.timeout),
            }
        }
        Ok(())
    }
}
