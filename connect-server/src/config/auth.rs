//! The bearer-token flags, and reading the token they name (the check is
//! `service::auth`).

use std::{fmt, path::PathBuf};

use anyhow::Context as _;
use clap::Args;

/// Authentication flags. `Debug` never shows the token.
#[derive(Clone, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// Token every ConnectService call must send as `authorization: Bearer <token>`; unset: no auth.
    #[arg(long, env = "CONNECT_AUTH_TOKEN", hide_env_values = true, conflicts_with = "auth_token_file")]
    pub auth_token: Option<String>,

    /// File holding the token (surrounding whitespace is ignored); an alternative to `--auth-token`.
    #[arg(long, env = "CONNECT_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
}

impl fmt::Debug for AuthArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthArgs")
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("auth_token_file", &self.auth_token_file)
            .finish()
    }
}

impl AuthArgs {
    /// The token every `ConnectService` call must send, if any; reads
    /// `--auth-token-file` if given.
    pub(crate) fn token(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.auth_token, &self.auth_token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --auth-token-file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        match token {
            Some(token) if token.is_empty() => anyhow::bail!("the auth token is empty"),
            token => Ok(token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let args = AuthArgs { auth_token: Some("s3cret".into()), auth_token_file: None };
        let shown = format!("{args:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(args.token().unwrap().as_deref(), Some("s3cret"));
    }

    #[test]
    fn config_debug_hides_the_token() {
        use clap::Parser as _;
        let config = crate::Config::parse_from(["connect-server", "--auth-token", "s3cret"]);
        assert_eq!(config.auth.auth_token.as_deref(), Some("s3cret"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn an_empty_token_is_refused() {
        let args = AuthArgs { auth_token: Some(String::new()), auth_token_file: None };
        assert_eq!(args.token().unwrap_err().to_string(), "the auth token is empty");
    }
}
