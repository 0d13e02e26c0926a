//! Bearer-token authentication for `ConnectService` calls (the token is
//! read from the flags by `config`).
//!
//! Only `ConnectService` is wrapped: health and reflection stay open because
//! probes and tools carry no token.

use std::{fmt, sync::Arc};

use subtle::ConstantTimeEq;
use tonic::Status;

/// Rejects calls without the right bearer token with `UNAUTHENTICATED`; lets all
/// calls through when no token is configured.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    expected: Option<Arc<[u8]>>,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth").field("enabled", &self.expected.is_some()).finish()
    }
}

impl BearerAuth {
    /// Expects `token` on every call; `None`: lets every call through.
    pub(crate) fn new(token: Option<String>) -> Self {
        Self { expected: token.map(|token| Arc::from(token.into_bytes())) }
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
        // The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
        let token = match given.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
            _ => return Err(Status::unauthenticated("authorization must be `Bearer <token>`")),
        };
        if bool::from(token.ct_eq(expected)) {
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
        BearerAuth { expected: token.map(|token| Arc::from(token.as_bytes())) }
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
        let shown = format!("{:?}", BearerAuth::new(Some("s3cret".into())));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
