//! Where the client's output goes: responses and reports to stdout,
//! metadata (`-v`) and retry lines to stderr.
//!
//! Every line the library prints goes through an [`Output`], so a test can
//! capture it ([`Output::capture`]) instead of running the binary.

use std::{
    fmt,
    io::IsTerminal as _,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use connect_proto::codes::canonical_name;
use http::HeaderMap;
use tonic::Status;

/// Where output goes: the process's stdout and stderr, or memory.
#[derive(Clone, Default)]
pub struct Output {
    captured: Option<Arc<Mutex<Captured>>>,
}

/// What a capturing [`Output`] was given.
#[derive(Debug, Default)]
struct Captured {
    stdout: String,
    stderr: String,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.captured.is_some() { "Output(captured)" } else { "Output(stdio)" })
    }
}

impl Output {
    /// The process's stdout and stderr.
    pub fn stdio() -> Self {
        Self::default()
    }

    /// An output that keeps everything in memory, for [`Output::stdout`] and [`Output::stderr`].
    pub fn capture() -> Self {
        Self { captured: Some(Arc::default()) }
    }

    /// What was written to stdout so far (empty unless capturing).
    pub fn stdout(&self) -> String {
        self.read(|captured| captured.stdout.clone())
    }

    /// What was written to stderr so far (empty unless capturing).
    pub fn stderr(&self) -> String {
        self.read(|captured| captured.stderr.clone())
    }

    fn read(&self, part: impl FnOnce(&Captured) -> String) -> String {
        self.captured
            .as_ref()
            .map(|captured| part(&captured.lock().unwrap_or_else(PoisonError::into_inner)))
            .unwrap_or_default()
    }

    /// Writes `text` to stdout as it is.
    pub(crate) fn text(&self, text: &str) {
        match &self.captured {
            None => print!("{text}"),
            Some(captured) => captured.lock().unwrap_or_else(PoisonError::into_inner).stdout.push_str(text),
        }
    }

    /// Writes `line` and a newline to stdout.
    pub(crate) fn line(&self, line: impl fmt::Display) {
        match &self.captured {
            None => println!("{line}"),
            Some(_) => self.text(&format!("{line}\n")),
        }
    }

    /// Writes `line` and a newline to stderr.
    pub(crate) fn error_line(&self, line: impl fmt::Display) {
        match &self.captured {
            None => eprintln!("{line}"),
            Some(captured) => {
                let mut captured = captured.lock().unwrap_or_else(PoisonError::into_inner);
                captured.stderr.push_str(&format!("{line}\n"));
            }
        }
    }

    /// One response, as the original clients print it.
    pub(crate) fn response(&self, data: &str) {
        self.line(format_args!("Response from server: {data}"));
    }

    /// `-v`: one `{kind} {key}: {value}` line on stderr per entry of `headers`,
    /// the values as they travel.
    pub(crate) fn metadata(&self, kind: &str, headers: &HeaderMap) {
        for (key, value) in headers {
            self.error_line(format_args!("{kind} {key}: {}", String::from_utf8_lossy(value.as_bytes())));
        }
    }

    /// One line per retry on stderr, so scripts can count them.
    pub(crate) fn retry(&self, retry: u32, pause: Duration, status: &Status) {
        let code = canonical_name(status.code());
        self.error_line(format_args!("retry {retry} in {pause:.0?} after {code}: {}", status.message()));
    }

    /// Whether a progress bar may be drawn: only on a terminal, so pipes, CI
    /// logs and captures stay clean.
    pub(crate) fn shows_progress(&self) -> bool {
        self.captured.is_none() && std::io::stderr().is_terminal()
    }

    /// Clears the progress bar's line, so what follows starts on a clean line.
    pub(crate) fn clear_progress(&self) {
        if self.shows_progress() {
            eprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_stdout_and_stderr_apart() {
        let output = Output::capture();
        output.response("Hello, People");
        output.retry(1, Duration::from_millis(50), &Status::unavailable("down"));
        assert_eq!(output.stdout(), "Response from server: Hello, People\n");
        assert_eq!(output.stderr(), "retry 1 in 50ms after UNAVAILABLE: down\n");
        assert!(!output.shows_progress());
    }
}
