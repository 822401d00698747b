//! The log writer: request threads append formatted lines to a bounded in-memory buffer,
//! and one thread of its own writes the buffer to stdout every [`DRAIN_EVERY`].
//!
//! Why not `tracing-appender`'s non-blocking writer: its worker sleeps on a channel and is
//! woken for every line, so each request line cost a futex wake and a context switch, and
//! under load its thread spent the server's CPU in the scheduler (the profile is in
//! `docs/benchmarks.md`). Here a request thread only copies its line under a short lock and
//! never wakes anybody unless the buffer is filling up; the writer makes one `write` per
//! drain. When the buffer is full a line is dropped and counted, never waited for.

use std::{
    io::Write,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How often the writer thread writes out what accumulated.
pub const DRAIN_EVERY: Duration = Duration::from_millis(20);

struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Bytes held at most; a line that does not fit is dropped.
    max_bytes: usize,
    /// Past this many bytes a request wakes the writer early.
    wake_at: usize,
    wake: Condvar,
    stopping: AtomicBool,
    dropped: AtomicU64,
}

/// The `MakeWriter` for the fmt layer: cheap to clone, one per process.
#[derive(Clone)]
pub struct BufferedWriter {
    shared: Arc<Shared>,
}

/// Counts the lines dropped because the buffer was full.
#[derive(Clone)]
pub struct DroppedLines(Arc<Shared>);

impl DroppedLines {
    pub fn get(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

/// Stops the writer thread when dropped, after it wrote out every buffered line.
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl BufferedWriter {
    /// Starts the writer thread over `out`; lines beyond `max_bytes` waiting are dropped.
    pub fn spawn<W: Write + Send + 'static>(
        out: W,
        max_bytes: usize,
    ) -> std::io::Result<(Self, DroppedLines, WriterGuard)> {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
            max_bytes,
            wake_at: max_bytes / 4,
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("tenantry-log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || drain(&shared, out)
            })?;
        Ok((
            Self {
                shared: shared.clone(),
            },
            DroppedLines(shared.clone()),
            WriterGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    fn append(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut buffer = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.len() + line.len() > shared.max_bytes {
            drop(buffer);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let was_below = buffer.len() < shared.wake_at;
        buffer.extend_from_slice(line);
        let wake = was_below && buffer.len() >= shared.wake_at;
        drop(buffer);
        if wake {
            shared.wake.notify_one();
        }
    }
}

/// The writer thread: every [`DRAIN_EVERY`] (or sooner when woken), swap the buffer for
/// an empty one and write it out; on stop, write what is left and return.
fn drain<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        let stopping = {
            let buffer = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
            let (mut buffer, _) = shared
                .wake
                .wait_timeout_while(buffer, DRAIN_EVERY, |b| {
                    b.len() < shared.wake_at && !shared.stopping.load(Ordering::Acquire)
                })
                .unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *buffer, &mut spare);
            shared.stopping.load(Ordering::Acquire)
        };
        if !spare.is_empty() {
            // Nowhere to report a failed log write but the log: drop the batch.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
            // Do not keep a burst's worth of memory forever.
            spare.shrink_to(1024 * 1024);
        }
        if stopping {
            return;
        }
    }
}

/// What the fmt layer writes one event through: the whole line arrives in one
/// `write_all` (the layer formats into its own buffer first), so it lands whole.
pub struct LineSink<'a>(&'a BufferedWriter);

impl Write for LineSink<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedWriter {
    type Writer = LineSink<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineSink(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_out_and_flushed_when_the_guard_drops() {
        let out = Capture::default();
        let (writer, dropped, guard) = BufferedWriter::spawn(out.clone(), 1024).expect("spawn");
        writer.make_writer().write_all(b"one\n").expect("write");
        std::thread::sleep(DRAIN_EVERY * 3);
        assert_eq!(*out.0.lock().expect("lock"), b"one\n", "drained on its own");
        writer.make_writer().write_all(b"two\n").expect("write");
        drop(guard);
        assert_eq!(
            *out.0.lock().expect("lock"),
            b"one\ntwo\n",
            "flushed at exit"
        );
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_instead_of_waiting() {
        // A writer that never gets to drain in time: one long stall.
        struct Stalled;
        impl Write for Stalled {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(300));
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (writer, dropped, _guard) = BufferedWriter::spawn(Stalled, 100).expect("spawn");
        let line = [b'x'; 30];
        for _ in 0..10 {
            writer.make_writer().write_all(&line).expect("never fails");
        }
        // At most 3 lines before the writer took them, 3 more while it stalls.
        assert!(dropped.get() >= 4, "dropped {}", dropped.get());
    }
}
