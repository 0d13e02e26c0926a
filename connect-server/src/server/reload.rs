//! Reloading the TLS files and the token file without a restart: on SIGHUP,
//! when something changes in the directories that hold them, and on
//! [`ConnectServer::reload`](super::ConnectServer::reload).
//!
//! A reload reads every file again and swaps in what is valid: the whole
//! rustls configuration (certificate, key and client CA together), which new
//! handshakes take, and the tokens, which calls checked from then on take.
//! Connections and calls in flight keep what they started with. A part that
//! fails (a missing file, bad PEM, a key that is not the certificate's, a
//! token file with no token) is logged at WARN and keeps its old material;
//! the other part still reloads.
//!
//! The watcher watches directories, not files: an editor or `mv` replaces
//! a file (a new inode a file watch would not follow), and a Kubernetes
//! Secret volume swaps its `..data` symlink. Bursts of events (a `cp` writes
//! in several steps, a Secret update is several renames) settle into one
//! reload.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, UNIX_EPOCH},
};

use notify::{
    EventKind, RecursiveMode, Watcher as _,
    event::{AccessKind, AccessMode},
};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::task::AbortOnDropHandle;

use super::shutdown::Hangups;
use crate::{
    config::{CertificateInfo, ReloadSettings, read_token_file},
    service::BearerAuth,
    telemetry::ReloadMetrics,
    transport::Tls,
};

/// How long the watched directories must stay quiet before a reload.
const SETTLE: Duration = Duration::from_millis(100);
/// The most a stream of events delays a reload.
const MOST_SETTLING: Duration = Duration::from_secs(1);

/// Reads the files again and swaps what they hold into the running server.
#[derive(Debug)]
pub(super) struct Reloader {
    files: ReloadSettings,
    /// Where the TLS configuration goes, when TLS is on.
    tls: Option<Tls>,
    /// Where the tokens go.
    auth: BearerAuth,
    metrics: ReloadMetrics,
    /// One reload at a time, so that an older read never replaces a newer one.
    one_at_a_time: Mutex<()>,
}

impl Reloader {
    /// Reloads `files` into `tls` and `auth`, reporting into `metrics`
    /// (the certificate expiry starts at the one read at start).
    pub(super) fn new(
        files: ReloadSettings,
        tls: Option<Tls>,
        auth: BearerAuth,
        metrics: ReloadMetrics,
    ) -> Self {
        if let (Some(gauge), Some(certificate)) = (&metrics.certificate_expiry, &files.certificate) {
            gauge.set(certificate.not_after);
        }
        Self { files, tls, auth, metrics, one_at_a_time: Mutex::new(()) }
    }

    /// Reads every file again and swaps in each part that is valid; the
    /// error names every part that was not (each also logged at WARN).
    /// Counted in `connect_reload_total` by result.
    pub(super) fn reload(&self) -> anyhow::Result<()> {
        let _one = self.one_at_a_time.lock().unwrap_or_else(PoisonError::into_inner);
        let mut failures = Vec::new();
        if let (Some(files), Some(tls)) = (&self.files.tls, &self.tls) {
            match files.load() {
                Ok(material) => {
                    tls.replace(material.config);
                    if let Some(gauge) = &self.metrics.certificate_expiry {
                        gauge.set(material.certificate.not_after);
                    }
                    let CertificateInfo { serial, not_after } = &material.certificate;
                    let not_after = rfc3339(*not_after);
                    tracing::info!(%serial, %not_after, "reload: new TLS handshakes use the certificate");
                }
                Err(error) => failures.push(error),
            }
        }
        if let Some(path) = &self.files.token_file {
            match read_token_file(path) {
                Ok(tokens) => {
                    tracing::info!(
                        tokens = tokens.count(),
                        "reload: calls from now on need one of the tokens"
                    );
                    self.auth.replace(tokens);
                }
                Err(error) => failures.push(error),
            }
        }
        if failures.is_empty() {
            self.metrics.ok.inc();
            return Ok(());
        }
        self.metrics.error.inc();
        for error in &failures {
            tracing::warn!(error = format!("{error:#}"), "reload failed: keeping what was served before");
        }
        let reasons: Vec<String> = failures.iter().map(|error| format!("{error:#}")).collect();
        Err(anyhow::anyhow!("{}", reasons.join("; ")))
    }

    /// Starts reloading on SIGHUP and on changes in the files' directories,
    /// until the handle is dropped. The handler and the watches are in place
    /// when this returns, so nothing sent or changed after it is missed.
    pub(super) fn start(self: &Arc<Self>) -> AbortOnDropHandle<()> {
        let hangups = Hangups::install();
        let (changed, changes) = mpsc::channel(1);
        let watcher = self.watch(changed);
        let reloader = Arc::clone(self);
        AbortOnDropHandle::new(tokio::spawn(async move {
            // Dropped with the task: the watches end with it.
            let _watcher = watcher;
            reloader.run(hangups, changes).await;
        }))
    }

    async fn run(&self, mut hangups: Hangups, mut changes: mpsc::Receiver<()>) {
        loop {
            tokio::select! {
                () = hangups.recv() => tracing::info!("SIGHUP: reloading"),
                Some(()) = changes.recv() => {
                    settle(&mut changes).await;
                    tracing::info!("files changed: reloading");
                }
            }
            // The reload is a few small files and one parse: short enough to
            // run here rather than on a blocking thread. Its failure is logged.
            let _ = self.reload();
        }
    }

    /// Watches the directories of the files for changes to them, each
    /// sending on `changed`; `None` when watching is off, there is nothing to
    /// watch or the watcher cannot start (SIGHUP still reloads).
    fn watch(&self, changed: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
        if !self.files.watch {
            return None;
        }
        let files: Vec<&Path> = self
            .files
            .tls
            .iter()
            .flat_map(|tls| tls.paths())
            .chain(self.files.token_file.as_deref())
            .collect();
        if files.is_empty() {
            return None;
        }
        let names: BTreeSet<OsString> =
            files.iter().filter_map(|file| file.file_name()).map(ToOwned::to_owned).collect();
        let directories: BTreeSet<PathBuf> = files.iter().map(|file| directory_of(file)).collect();
        let on_event = move |event: notify::Result<notify::Event>| match event {
            Ok(event) if concerns(&event, &names) => {
                // Full: a reload is already due, and it will read this change too.
                let _ = changed.try_send(());
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "watching the TLS and token files"),
        };
        let mut watcher = notify::recommended_watcher(on_event)
            .inspect_err(
                |error| tracing::warn!(%error, "cannot watch the TLS and token files: SIGHUP reloads them"),
            )
            .ok()?;
        for directory in &directories {
            if let Err(error) = watcher.watch(directory, RecursiveMode::NonRecursive) {
                let directory = directory.display();
                tracing::warn!(%error, %directory, "cannot watch the directory: SIGHUP reloads its files");
            }
        }
        Some(watcher)
    }
}

/// The directory holding `file` (`.` for a bare file name).
fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Whether `event` may change a file named in `names`: a write, a create, a
/// rename or a removal of one of them, or of a Kubernetes `..data`-style
/// entry their symlinks go through. Opening and reading are not changes (the
/// reload's own reads would otherwise trigger the next reload).
fn concerns(event: &notify::Event, names: &BTreeSet<OsString>) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    // An event without a path (the kernel's queue overflowed) may hide anything.
    event.paths.is_empty()
        || event
            .paths
            .iter()
            .filter_map(|path| path.file_name())
            .any(|name| names.contains(name) || name.as_encoded_bytes().starts_with(b".."))
}

/// Waits until no change has come for [`SETTLE`], or [`MOST_SETTLING`] has
/// passed, taking the changes that arrive meanwhile.
async fn settle(changes: &mut mpsc::Receiver<()>) {
    let most = Instant::now() + MOST_SETTLING;
    loop {
        let quiet_until = (Instant::now() + SETTLE).min(most);
        match tokio::time::timeout_at(quiet_until, changes.recv()).await {
            Ok(Some(())) if Instant::now() < most => {}
            _ => return,
        }
    }
}

/// `seconds` since the epoch as an RFC 3339 time, for the log.
fn rfc3339(seconds: i64) -> String {
    match u64::try_from(seconds) {
        Ok(seconds) => humantime::format_rfc3339(UNIX_EPOCH + Duration::from_secs(seconds)).to_string(),
        Err(_) => format!("{seconds} s since the epoch"),
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn changes_to_the_files_or_a_kubernetes_data_link_concern_the_reload() {
        let names: BTreeSet<OsString> = ["tls.crt", "token"].into_iter().map(OsString::from).collect();
        let write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(concerns(&event(write, "/etc/tls/tls.crt"), &names));
        assert!(concerns(&event(EventKind::Modify(ModifyKind::Any), "/etc/auth/token"), &names));
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(concerns(&event(rename, "/etc/tls/..data"), &names));
        assert!(concerns(&event(EventKind::Create(CreateKind::Any), "/etc/tls/..data_tmp"), &names));
        assert!(concerns(&notify::Event::new(EventKind::Other), &names));

        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!concerns(&event(open, "/etc/tls/tls.crt"), &names));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(!concerns(&event(read, "/etc/tls/tls.crt"), &names));
        assert!(!concerns(&event(EventKind::Modify(ModifyKind::Any), "/etc/tls/README"), &names));
    }

    #[test]
    fn a_bare_file_name_is_in_the_working_directory() {
        assert_eq!(directory_of(Path::new("token")), PathBuf::from("."));
        assert_eq!(directory_of(Path::new("/etc/tls/tls.crt")), PathBuf::from("/etc/tls"));
    }

    #[test]
    fn expiry_in_the_log_is_rfc3339() {
        assert_eq!(rfc3339(1_893_542_400), "2030-01-02T00:00:00Z");
        assert_eq!(rfc3339(-1), "-1 s since the epoch");
    }
}
