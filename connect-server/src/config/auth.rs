//! The bearer-token flags, and reading the tokens they name (the check is
//! `service::auth`).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clap::Args;

use crate::service::Tokens;

/// Authentication flags. `Debug` never shows the token.
#[derive(Clone, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// Token every ConnectService call must send as `authorization: Bearer <token>`; unset: no auth.
    #[arg(long, env = "CONNECT_AUTH_TOKEN", hide_env_values = true, conflicts_with = "auth_token_file")]
    pub auth_token: Option<String>,

    /// File holding the tokens, one per line, any of them accepted (blank lines and surrounding
    /// whitespace are ignored); read again on SIGHUP and when it changes. An alternative to `--auth-token`.
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
    /// The tokens every `ConnectService` call must present one of, if any;
    /// reads `--auth-token-file` if given.
    pub(crate) fn tokens(&self) -> anyhow::Result<Option<Tokens>> {
        match (&self.auth_token, &self.auth_token_file) {
            (Some(token), _) => Tokens::one(token).map(Some).context("the auth token is empty"),
            (None, Some(path)) => read_token_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The token file, which a reload reads again; `None` when the token is
    /// given on the command line or there is none.
    pub(crate) fn token_file(&self) -> Option<&Path> {
        self.auth_token.is_none().then_some(self.auth_token_file.as_deref()).flatten()
    }
}

/// The tokens of the file at `path`, one per line; fails when it cannot be
/// read or holds none, which would otherwise refuse every call.
pub(crate) fn read_token_file(path: &Path) -> anyhow::Result<Tokens> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --auth-token-file {}", path.display()))?;
    Tokens::from_lines(&text).with_context(|| format!("--auth-token-file {}: no token in it", path.display()))
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
        assert_eq!(args.tokens().unwrap(), Tokens::one("s3cret"));
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
        assert_eq!(args.tokens().unwrap_err().to_string(), "the auth token is empty");
    }

    #[test]
    fn a_token_file_without_a_token_is_refused() {
        let path = std::env::temp_dir().join(format!("connect-auth-unit-{}", std::process::id()));
        std::fs::write(&path, "\n  \n").unwrap();
        let args = AuthArgs { auth_token: None, auth_token_file: Some(path.clone()) };
        let error = args.tokens().unwrap_err();
        assert_eq!(error.to_string(), format!("--auth-token-file {}: no token in it", path.display()));
        std::fs::write(&path, "one\n two \n").unwrap();
        assert_eq!(args.tokens().unwrap().map(|tokens| tokens.count()), Some(2));
        assert_eq!(args.token_file(), Some(path.as_path()));
        std::fs::remove_file(&path).unwrap();
    }
}
