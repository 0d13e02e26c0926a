//! The hard end of a connection's life: `--max-connection-age` plus
//! `--max-connection-age-grace` after it was accepted, its socket fails.
//!
//! The GOAWAY at the age itself is sent by the HTTP/2 side
//! ([`super::http`]), after which calls finish; this is the backstop for
//! calls that do not finish in the grace.

use std::{io, task::Context};

use tokio::time::Instant;

use super::{tap::Tap, wake_at::WakeAt};

/// Fails every read and write once the connection's lifetime is over.
#[derive(Debug)]
pub(crate) struct Lifetime {
    end_of_life: WakeAt,
}

impl Lifetime {
    /// A connection that may live until `end`.
    pub(crate) fn until(end: Instant) -> Self {
        Self { end_of_life: WakeAt::new(end) }
    }
}

fn expired() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "max connection age grace is over")
}

impl Tap for Lifetime {
    /// Reads arrange the wake-up: a live HTTP/2 connection always has a read
    /// pending, so it reaches the connection even when it is idle.
    fn before_read(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.end_of_life.poll_expired(cx) { Err(expired()) } else { Ok(()) }
    }

    fn before_write(&self) -> io::Result<()> {
        if self.end_of_life.is_expired() { Err(expired()) } else { Ok(()) }
    }
}
