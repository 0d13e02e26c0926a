//! The bearer-token flags. The token is read and checked by `service::auth`.

use std::{fmt, path::PathBuf};

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
