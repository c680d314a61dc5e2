//! Where log lines go: standard error, with the access lines written in batches.
//!
//! Writing every line with its own `write(2)` was the largest part of the access log's cost
//! per request (a cached lookup spent about a third of its CPU time on its log line;
//! BENCHMARKS.md). Handing lines to a writer thread one by one cost more than it saved (a
//! wake-up per line). So access lines are appended to a buffer, written when it holds
//! [`BATCH_BYTES`] or [`DELAY`] after its first line, whichever comes first: at most one
//! wake-up of the flusher per batch. Every other line (audit lines, warnings, errors, start-up
//! and reload messages) is written at once, after whatever the buffer holds, so lines stay in
//! order and nothing but access lines can wait. [`Flush`] writes the rest at exit.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// The target of the access line, the only one written in batches.
pub const ACCESS: &str = "access";
/// The longest an access line waits in the buffer.
pub const DELAY: Duration = Duration::from_millis(50);
/// A buffer this full is written at once.
pub const BATCH_BYTES: usize = 32 * 1024;

/// The subscriber's writer (cheap to clone: all clones share the buffer).
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Signalled when the buffer receives its first line.
    filled: Condvar,
    out: Out,
}

/// Where a batch goes: standard error, or a recorder in the tests.
type Out = Box<dyn Fn(&[u8]) + Send + Sync>;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves whole lines at worst: keep logging.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_out(&self, buffer: &mut Vec<u8>) {
        if !buffer.is_empty() {
            (self.out)(buffer);
            buffer.clear();
        }
    }
}

/// Writes what is buffered when dropped: keep it alive until `main` returns.
pub struct Flush(Batched);

impl Drop for Flush {
    fn drop(&mut self) {
        let shared = &self.0.shared;
        shared.write_out(&mut shared.lock());
    }
}

impl Batched {
    /// Lines to standard error, and the flusher thread; the [`Flush`] writes the rest at exit.
    pub fn stderr() -> (Batched, Flush) {
        let batched = Batched::to(|bytes| {
            // Nowhere to report a failed log write to.
            let _ = io::stderr().lock().write_all(bytes);
        });
        let flusher = batched.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || flusher.flush_forever())
            .expect("start the log flusher thread");
        (batched.clone(), Flush(batched))
    }

    fn to(out: impl Fn(&[u8]) + Send + Sync + 'static) -> Batched {
        let shared = Shared { buffer: Mutex::new(Vec::new()), filled: Condvar::new(), out: Box::new(out) };
        Batched { shared: Arc::new(shared) }
    }

    /// Waits for a first line, lets the batch gather for [`DELAY`], writes it; again.
    fn flush_forever(&self) {
        loop {
            self.flush_next();
        }
    }

    fn flush_next(&self) {
        let shared = &self.shared;
        let mut buffer = shared.lock();
        while buffer.is_empty() {
            buffer = shared.filled.wait(buffer).unwrap_or_else(|e| e.into_inner());
        }
        drop(buffer);
        std::thread::sleep(DELAY);
        shared.write_out(&mut shared.lock());
    }
}

/// One line's writer: batched for an access line, else written at once.
pub struct Line<'a> {
    shared: &'a Shared,
    batched: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buffer = self.shared.lock();
        let was_empty = buffer.is_empty();
        buffer.extend_from_slice(bytes);
        if !self.batched || buffer.len() >= BATCH_BYTES {
            self.shared.write_out(&mut buffer);
        } else if was_empty {
            self.shared.filled.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { shared: &self.shared, batched: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line { shared: &self.shared, batched: meta.target() == ACCESS }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> (Batched, Arc<Mutex<Vec<String>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let w = writes.clone();
        let batched = Batched::to(move |b| w.lock().unwrap().push(String::from_utf8_lossy(b).into_owned()));
        (batched, writes)
    }

    fn line(b: &Batched, batched: bool, text: &str) {
        Line { shared: &b.shared, batched }.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn access_lines_wait_for_the_batch_and_other_lines_take_them_along_in_order() {
        let (b, writes) = recorded();
        line(&b, true, "a1\n");
        line(&b, true, "a2\n");
        assert!(writes.lock().unwrap().is_empty(), "access lines wait");
        line(&b, false, "audit\n");
        assert_eq!(*writes.lock().unwrap(), ["a1\na2\naudit\n"], "one write, in order");
        line(&b, true, "a3\n");
        b.flush_next();
        assert_eq!(writes.lock().unwrap().last().unwrap(), "a3\n", "written after the delay");
        line(&b, true, "a4\n");
        drop(Flush(b.clone()));
        assert_eq!(writes.lock().unwrap().last().unwrap(), "a4\n", "written at exit");
    }

    #[test]
    fn a_full_buffer_is_written_at_once() {
        let (b, writes) = recorded();
        let long = "x".repeat(BATCH_BYTES / 2);
        line(&b, true, &long);
        assert!(writes.lock().unwrap().is_empty());
        line(&b, true, &long);
        assert_eq!(writes.lock().unwrap().len(), 1);
    }
}
