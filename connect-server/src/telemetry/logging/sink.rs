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
//! thread keep their order; a rare line (startup, summaries, warnings) goes
//! through [`Sink::write_after_buffered`], so it comes after every line
//! logged before it, on any thread.

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
        self.write_batch(&[]);
    }

    /// Writes every thread's buffered lines, then `line`, in one batch.
    pub(super) fn write_after_buffered(&self, line: &[u8]) {
        self.write_batch(line);
    }

    fn write_batch(&self, last: &[u8]) {
        // Held while writing too, so that batches never interleave.
        let mut buffers = lock(&self.buffers);
        let batch = take_batch(&mut buffers, last);
        if batch.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        // Nowhere to report a failed write to (it is the log); the lines are dropped then.
        let _ = stdout.write_all(&batch).and_then(|()| stdout.flush());
        drop(buffers);
    }
}

/// Empties every buffer into one batch, followed by `last`; forgets the
/// buffers of threads that have exited once they are empty.
fn take_batch(buffers: &mut Vec<Buffer>, last: &[u8]) -> Vec<u8> {
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
    // Only the sink still holds an exited thread's buffer. One that filled after the
    // loop above (its thread exiting meanwhile) is kept for the next batch.
    buffers.retain(|buffer| Arc::strong_count(buffer) > 1 || !lock(buffer).is_empty());
    batch.extend_from_slice(last);
    batch
}

/// Locks `mutex`, ignoring poisoning: a buffer of bytes cannot be left inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rare_line_comes_after_lines_buffered_on_other_threads() {
        let sink: &'static Sink =
            Box::leak(Box::new(Sink { buffers: Mutex::new(Vec::new()), writer: OnceLock::new() }));
        // This thread's buffer is registered first, so it is also emptied first.
        sink.append(b"main: access\n");
        // `join` (unlike a scope) returns once the thread's locals, its buffer handle among them, are gone.
        thread::spawn(|| sink.append(b"worker: access\n")).join().expect("the worker logged");
        let batch = take_batch(&mut lock(&sink.buffers), b"main: shutdown started\n");
        assert_eq!(batch, b"main: access\nworker: access\nmain: shutdown started\n");
        // The worker has exited and its buffer is written: only this thread's is left.
        assert_eq!(lock(&sink.buffers).len(), 1);
        assert_eq!(take_batch(&mut lock(&sink.buffers), b""), b"");
    }
}
