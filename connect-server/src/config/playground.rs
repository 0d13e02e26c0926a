//! The browser playground on the metrics endpoint, as flags.

use std::num::NonZeroUsize;

use clap::{Args, ValueEnum};

/// The playground; every flag also has an environment variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Playground")]
pub struct PlaygroundArgs {
    /// The browser playground at `/` of the metrics endpoint (`--metrics-addr`):
    /// `on`, or `off` (then `/` is 404).
    #[arg(long, env = "CONNECT_PLAYGROUND", value_enum, default_value_t = Switch::On)]
    pub playground: Switch,

    /// Most playground calls running at once; beyond it a call is refused with an error event.
    #[arg(long, env = "CONNECT_PLAYGROUND_MAX_CALLS", default_value_t = NonZeroUsize::new(16).expect("16 is not zero"))]
    pub playground_max_calls: NonZeroUsize,
}

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Turned on.
    On,
    /// Turned off.
    Off,
}

impl PlaygroundArgs {
    /// The most calls at once when the playground is on; `None` when off.
    pub(crate) fn max_calls(&self) -> Option<NonZeroUsize> {
        (self.playground == Switch::On).then_some(self.playground_max_calls)
    }
}
