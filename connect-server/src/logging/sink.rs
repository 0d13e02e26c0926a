//! Where formatted lines go: a buffer per thread, written to stdout in
//! batches.
//!
//! A serving thread only appends a line to its own buffer (an uncontended
//! lock); a writer thread collects every buffer every [`FLUSH_EVERY`] and
//! writes the lot with one system call. At a hundred thousand calls a second
//! that is a few writes a second instead of one per line, and no hand-off of
//! each line to another thread.
//!
//! Nothing is dropped: a thread whose buffer has grown past [`WAKE_AT`] wakes
//! the writer early, and past [`WRITE_AT`] (stdout cannot keep up) it writes
//! the batch itself, so it waits instead of piling up memory. Lines of one
//! thread keep their order; [`Sink::flush`] writes every buffer, so a rare
//! line written after it (startup, summaries, warnings) comes after every
//! line logged before it, on any thread.

use std::{
    cell::RefCell,
    io::Write,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
    thread::{self, JoinHandle},
    time::Duration,
};

/// How often the writer thread collects the buffers.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this large wakes the writer before its time.
const WAKE_AT: usize = 256 * 1024;
/// A buffer this large is written by its own thread: stdout is not keeping up.
const WRITE_AT: usize = 8 * 1024 * 1024;

type Buffer = Arc<Mutex<Vec<u8>>>;

/// The per-thread buffers and the writer thread.
#[derive(Debug)]
pub(super) struct Sink {
    /// Every thread's buffer; the lock also keeps batches from interleaving.
    buffers: Mutex<Vec<Buffer>>,
    writer: OnceLock<thread::Thread>,
}

thread_local! {
    /// This thread's buffer, registered with the sink on first use.
    static LOCAL: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

impl Sink {
    /// The process-wide sink (stdout is process-wide too).
    pub(super) fn global() -> &'static Sink {
        static SINK: Sink = Sink { buffers: Mutex::new(Vec::new()), writer: OnceLock::new() };
        &SINK
    }

    /// Starts the writer thread; lines are only written by `flush` before it.
    pub(super) fn start_writer(&'static self) -> std::io::Result<JoinHandle<()>> {
        let handle = thread::Builder::new().name("log-writer".into()).spawn(move || {
            loop {
                thread::park_timeout(FLUSH_EVERY);
                self.flush();
            }
        })?;
        let _ = self.writer.set(handle.thread().clone());
        Ok(handle)
    }

    /// Appends one line (with its newline) to this thread's buffer.
    pub(super) fn append(&self, line: &[u8]) {
        let len = LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let buffer = local.get_or_insert_with(|| {
                let buffer = Buffer::default();
                lock(&self.buffers).push(Arc::clone(&buffer));
                buffer
            });
            let mut bytes = lock(buffer);
            bytes.extend_from_slice(line);
            bytes.len()
        });
        if len >= WRITE_AT {
            self.flush();
        } else if len >= WAKE_AT
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }

    /// Writes every thread's buffered lines to stdout, in one batch.
    pub(super) fn flush(&self) {
        let buffers = lock(&self.buffers);
        let mut batch = Vec::new();
        for buffer in buffers.iter() {
            let mut bytes = lock(buffer);
            if batch.is_empty() {
                // Take the whole allocation; the thread grows a fresh one.
                std::mem::swap(&mut batch, &mut bytes);
            } else {
                batch.extend_from_slice(&bytes);
                bytes.clear();
            }
        }
        if batch.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        // Nowhere to report a failed write to (it is the log); the lines are dropped then.
        let _ = stdout.write_all(&batch).and_then(|()| stdout.flush());
        drop(buffers);
    }
}

/// Locks `mutex`, ignoring poisoning: a buffer of bytes cannot be left inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
