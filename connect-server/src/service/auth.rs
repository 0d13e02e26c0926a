//! Bearer-token authentication for `ConnectService` calls (the token is
//! read from the flags by `config`).
//!
//! Only `ConnectService` is wrapped: health and reflection stay open because
//! probes and tools carry no token.

use std::{fmt, sync::Arc};

use arc_swap::ArcSwap;
use subtle::{Choice, ConstantTimeEq};
use tonic::Status;

/// The tokens a call may present: every line of the token file, so that a
/// rotation can add the new token before the old one is taken out.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Tokens(Vec<Box<[u8]>>);

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").field("count", &self.0.len()).finish()
    }
}

impl Tokens {
    /// `token` alone; `None` when it is empty.
    pub(crate) fn one(token: &str) -> Option<Self> {
        (!token.is_empty()).then(|| Self(vec![token.as_bytes().into()]))
    }

    /// One token per line of `text`, surrounding whitespace trimmed, blank
    /// lines skipped; `None` when no line holds one.
    pub(crate) fn from_lines(text: &str) -> Option<Self> {
        let tokens: Vec<Box<[u8]>> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.as_bytes().into())
            .collect();
        (!tokens.is_empty()).then_some(Self(tokens))
    }

    /// How many tokens are accepted.
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }

    /// Whether `given` is one of them. Every token is compared, each in
    /// constant time, so the time taken does not tell which one matched or
    /// how much of one did.
    fn accept(&self, given: &[u8]) -> bool {
        let matched = self.0.iter().fold(Choice::from(0), |matched, token| matched | given.ct_eq(token));
        matched.into()
    }
}

/// Rejects calls without an accepted bearer token with `UNAUTHENTICATED`;
/// lets all calls through when no token is configured. Clones share the
/// tokens, which a reload replaces for the calls checked from then on.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    expected: Option<Arc<ArcSwap<Tokens>>>,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth").field("enabled", &self.expected.is_some()).finish()
    }
}

impl BearerAuth {
    /// Expects one of `tokens` on every call; `None`: lets every call through.
    pub(crate) fn new(tokens: Option<Tokens>) -> Self {
        Self { expected: tokens.map(|tokens| Arc::new(ArcSwap::from_pointee(tokens))) }
    }

    /// Accepts `tokens`, and only them, from the next call on. Without a
    /// token at start the check is off and stays off: there is then no token
    /// file to reload.
    pub(crate) fn replace(&self, tokens: Tokens) {
        if let Some(expected) = &self.expected {
            expected.store(Arc::new(tokens));
        }
    }

    /// Checks the `authorization` header in `headers`.
    pub(crate) fn check(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(Status::unauthenticated("missing bearer token"));
        };
        let given = value.as_bytes();
        // The scheme is case-insensitive (RFC 7235).
        let token = match given.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
            _ => return Err(Status::unauthenticated("authorization must be `Bearer <token>`")),
        };
        if expected.load().accept(token) {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(token: Option<&str>) -> BearerAuth {
        BearerAuth::new(token.and_then(Tokens::one))
    }

    fn call(auth: &mut BearerAuth, header: Option<&str>) -> Result<(), Status> {
        let mut headers = http::HeaderMap::new();
        if let Some(header) = header {
            headers.insert(http::header::AUTHORIZATION, header.parse().expect("ascii header"));
        }
        auth.check(&headers)
    }

    #[test]
    fn checks_the_bearer_token() {
        let mut auth = auth(Some("s3cret"));
        assert!(call(&mut auth, Some("Bearer s3cret")).is_ok());
        assert!(call(&mut auth, Some("bearer s3cret")).is_ok());
        let wrong = call(&mut auth, Some("Bearer s3cre")).unwrap_err();
        assert_eq!((wrong.code(), wrong.message()), (tonic::Code::Unauthenticated, "invalid bearer token"));
        let missing = call(&mut auth, None).unwrap_err();
        assert_eq!(
            (missing.code(), missing.message()),
            (tonic::Code::Unauthenticated, "missing bearer token")
        );
        let basic = call(&mut auth, Some("Basic s3cret")).unwrap_err();
        assert_eq!(basic.message(), "authorization must be `Bearer <token>`");
    }

    #[test]
    fn open_without_a_token() {
        assert!(call(&mut auth(None), None).is_ok());
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", BearerAuth::new(Tokens::one("s3cret")));
        assert!(!shown.contains("s3cret"), "{shown}");
        let shown = format!("{:?}", Tokens::one("s3cret"));
        assert_eq!(shown, "Some(Tokens { count: 1 })");
    }

    #[test]
    fn one_token_per_line_blank_lines_and_whitespace_ignored() {
        let tokens = Tokens::from_lines("\n  old-token \r\n\n\tnew-token\n").expect("two tokens");
        assert_eq!(tokens, Tokens(vec![b"old-token"[..].into(), b"new-token"[..].into()]));
        assert_eq!(Tokens::from_lines(" \n\t\n"), None);
        assert_eq!(Tokens::from_lines(""), None);
        assert_eq!(Tokens::one(""), None);
    }

    #[test]
    fn every_token_is_accepted_and_a_replacement_takes_over() {
        let mut auth = BearerAuth::new(Tokens::from_lines("old\nnew\n"));
        assert!(call(&mut auth, Some("Bearer old")).is_ok());
        assert!(call(&mut auth, Some("Bearer new")).is_ok());
        let prefix = call(&mut auth, Some("Bearer ne")).unwrap_err();
        assert_eq!(prefix.message(), "invalid bearer token");

        let clone = auth.clone();
        clone.replace(Tokens::one("newer").expect("a token"));
        let old = call(&mut auth, Some("Bearer old")).unwrap_err();
        assert_eq!((old.code(), old.message()), (tonic::Code::Unauthenticated, "invalid bearer token"));
        assert!(call(&mut auth, Some("Bearer newer")).is_ok());
    }

    #[test]
    fn a_replacement_does_not_turn_the_check_on() {
        let mut open = auth(None);
        open.replace(Tokens::one("s3cret").expect("a token"));
        assert!(call(&mut open, None).is_ok());
    }
}
