//! Why a TLS handshake failed, in words an operator can act on, logged at
//! `WARN` with a bound on how many lines a scanner can cause, and counted in
//! `connect_tls_handshake_failures_total{reason}`.
//!
//! The bound is a token bucket shared by every worker: a burst of
//! [`LOG_BURST`] lines, then one line per [`LOG_EVERY`]; the lines held back
//! meanwhile are counted, and the next line says how many (`suppressed=N`).
//! The counter counts every failure.

use std::{
    io,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use prometheus::IntCounterVec;
use tokio_rustls::rustls::{self, CertificateError, OtherError};

/// The log target of the refusal lines (`RUST_LOG=connect_server::tls=off` silences them).
pub(crate) const TLS_LOG_TARGET: &str = "connect_server::tls";

/// Lines logged at once before the rate applies.
const LOG_BURST: u32 = 10;

/// One more line may be logged per this much time.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Why a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// mTLS, and the client sent no certificate.
    NoClientCertificate,
    /// The client's certificate is X.509 v1 (or v2), which webpki refuses.
    UnsupportedCertificateVersion,
    /// The client's certificate does not chain to `--tls-client-ca`.
    UnknownCa,
    /// The client's certificate is expired or not yet valid.
    ExpiredCertificate,
    /// The client's certificate is refused for another reason.
    BadCertificate,
    /// The client refused the server's certificate (it sent an alert).
    ClientRefused,
    /// The bytes were not a TLS handshake.
    NotTls,
    /// The handshake took longer than `--tls-handshake-timeout`.
    TimedOut,
    /// The client closed the connection before the handshake was done.
    Closed,
    /// Anything else.
    Other,
}

impl Refusal {
    /// Every reason, for the counter's series.
    pub(crate) const ALL: [Self; 10] = [
        Self::NoClientCertificate,
        Self::UnsupportedCertificateVersion,
        Self::UnknownCa,
        Self::ExpiredCertificate,
        Self::BadCertificate,
        Self::ClientRefused,
        Self::NotTls,
        Self::TimedOut,
        Self::Closed,
        Self::Other,
    ];

    /// The failure `error` of a handshake.
    pub(crate) fn of(error: &io::Error) -> Self {
        let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
            return match error.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                    Self::Closed
                }
                // tokio-rustls reports a record that is not TLS as invalid data.
                io::ErrorKind::InvalidData => Self::NotTls,
                // The preface timeout of the socket below fails the handshake's read: a
                // client that never started the handshake (it also bounds the TLS one).
                io::ErrorKind::TimedOut => Self::TimedOut,
                _ => Self::Other,
            };
        };
        match tls {
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate,
            rustls::Error::InvalidCertificate(certificate) => Self::of_certificate(certificate),
            rustls::Error::AlertReceived(_) => Self::ClientRefused,
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateHandshakeMessage { .. } => {
                Self::NotTls
            }
            _ => Self::Other,
        }
    }

    fn of_certificate(error: &CertificateError) -> Self {
        match error {
            CertificateError::UnknownIssuer => Self::UnknownCa,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Self::ExpiredCertificate,
            CertificateError::Other(OtherError(inner))
                if matches!(
                    inner.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::UnsupportedCertVersion)
                ) =>
            {
                Self::UnsupportedCertificateVersion
            }
            _ => Self::BadCertificate,
        }
    }

    /// The `reason` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::NoClientCertificate => "no_client_certificate",
            Self::UnsupportedCertificateVersion => "unsupported_certificate_version",
            Self::UnknownCa => "unknown_ca",
            Self::ExpiredCertificate => "expired_certificate",
            Self::BadCertificate => "bad_certificate",
            Self::ClientRefused => "client_refused",
            Self::NotTls => "not_tls",
            Self::TimedOut => "timeout",
            Self::Closed => "closed",
            Self::Other => "other",
        }
    }

    /// What happened, and what to do about it, in plain words.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            Self::NoClientCertificate => "no client certificate (mTLS requires one)",
            Self::UnsupportedCertificateVersion => {
                "client certificate refused: X.509 v1 certificates are not supported; issue a v3 certificate"
            }
            Self::UnknownCa => {
                "client certificate refused: unknown CA (it does not chain to --tls-client-ca)"
            }
            Self::ExpiredCertificate => "client certificate refused: expired or not yet valid",
            Self::BadCertificate => "client certificate refused",
            Self::ClientRefused => {
                "the client refused the server's certificate (it does not trust its CA, or the name does not match)"
            }
            Self::NotTls => "not a TLS handshake (a plaintext client?)",
            Self::TimedOut => "handshake timed out",
            Self::Closed => "the client closed the connection during the handshake",
            Self::Other => "handshake failed",
        }
    }
}

/// Where refusals go: the counter and the rate-limited log; clones share both.
#[derive(Debug, Clone)]
pub(crate) struct Refusals {
    counter: Option<IntCounterVec>,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: u32,
    refilled: Instant,
    suppressed: u64,
}

impl Default for Bucket {
    fn default() -> Self {
        Self { tokens: LOG_BURST, refilled: Instant::now(), suppressed: 0 }
    }
}

impl Bucket {
    /// Whether a line may be logged now, and how many were held back before it.
    fn take(&mut self, now: Instant) -> Option<u64> {
        let earned = now.saturating_duration_since(self.refilled).as_nanos() / LOG_EVERY.as_nanos();
        if earned > 0 {
            self.tokens =
                LOG_BURST.min(self.tokens.saturating_add(u32::try_from(earned).unwrap_or(u32::MAX)));
            self.refilled = now;
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Refusals {
    /// Counts into `counter`, whose every reason's series exists from now on.
    pub(crate) fn counting_into(counter: IntCounterVec) -> Self {
        for reason in Refusal::ALL {
            counter.with_label_values(&[reason.label()]);
        }
        Self { counter: Some(counter), bucket: Arc::default() }
    }

    /// Records a failed handshake from `peer`; `detail` is the library's own words.
    pub(crate) fn record(&self, refusal: Refusal, peer: &str, detail: &dyn std::fmt::Display) {
        if let Some(counter) = &self.counter {
            counter.with_label_values(&[refusal.label()]).inc();
        }
        let allowed = self.bucket.lock().unwrap_or_else(PoisonError::into_inner).take(Instant::now());
        if let Some(suppressed) = allowed {
            tracing::warn!(
                target: TLS_LOG_TARGET,
                peer,
                reason = refusal.explain(),
                error = %detail,
                suppressed,
                "TLS handshake failed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_one_line_a_second_and_counts_the_rest() {
        let start = Instant::now();
        let mut bucket = Bucket { tokens: LOG_BURST, refilled: start, suppressed: 0 };
        for _ in 0..LOG_BURST {
            assert_eq!(bucket.take(start), Some(0));
        }
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.take(start + Duration::from_millis(500)), None);
        assert_eq!(bucket.take(start + Duration::from_millis(1000)), Some(2));
        assert_eq!(bucket.take(start + Duration::from_millis(1500)), None);
        // One line a second, steady: the half second before is not lost.
        assert_eq!(bucket.take(start + Duration::from_millis(2000)), Some(1));
        assert_eq!(bucket.take(start + Duration::from_millis(2600)), None);
        assert_eq!(bucket.take(start + Duration::from_millis(3000)), Some(1));
        // A long quiet spell refills the burst, no more.
        let later = start + Duration::from_secs(3600);
        for _ in 0..LOG_BURST {
            assert!(bucket.take(later).is_some());
        }
        assert_eq!(bucket.take(later), None);
    }

    #[test]
    fn io_errors_without_a_tls_error_are_classified_by_kind() {
        let closed = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(Refusal::of(&closed), Refusal::Closed);
        let no_cert = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::NoCertificatesPresented);
        assert_eq!(Refusal::of(&no_cert), Refusal::NoClientCertificate);
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(Refusal::of(&io::Error::new(io::ErrorKind::InvalidData, unknown)), Refusal::UnknownCa);
        let v1 = CertificateError::Other(OtherError(Arc::new(webpki::Error::UnsupportedCertVersion)));
        let v1 = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(v1));
        assert_eq!(Refusal::of(&v1), Refusal::UnsupportedCertificateVersion);
    }
}
