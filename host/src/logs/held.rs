//! Access lines held on their serving thread and handed to the log writer in batches.
//!
//! Every request writes one access line. Handed over one at a time, each line is a message
//! to the writer thread, and on a busy machine usually a wake-up of it: on two cores that
//! cost more than formatting the line. A serving thread therefore keeps its access lines
//! in a buffer of its own ([`HeldLines`]) and hands them over together when it runs out of
//! work (its runtime parks), when the buffer reaches [`HOLD_BYTES`], or when the first
//! line has waited [`HOLD_FOR`]. An idle gateway thus writes each line at once; a busy one
//! writes a batch per pause. Any other line (a warning, an error) first hands over the
//! thread's held lines, so a thread's lines keep their order. A `kill -9` loses what a
//! serving thread held at that moment: at most [`HOLD_BYTES`] of access lines, never
//! other lines.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// The access log's `tracing` target: one line per request.
pub const ACCESS_TARGET: &str = "gateway::access";

/// A thread hands its held lines over once they fill this many bytes (about 150 lines).
pub const HOLD_BYTES: usize = 32 * 1024;

/// ... or once its first held line is this old, even if the thread never runs out of work.
pub const HOLD_FOR: Duration = Duration::from_millis(100);

/// Where serving threads hand their lines: the log writer [`super::init`] set up.
static SINK: OnceLock<tracing_appender::non_blocking::NonBlocking> = OnceLock::new();

struct Held {
    lines: Vec<u8>,
    /// When the oldest line in `lines` was held.
    since: Instant,
    sink: Box<dyn Write>,
}

impl Held {
    fn hand_over(&mut self) {
        if !self.lines.is_empty() {
            // A log line that cannot be written has nowhere to be reported.
            let _ = self.sink.write_all(&self.lines);
            self.lines.clear();
        }
    }
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Hands over the lines this thread holds, if any. Serving threads call it as their
/// runtime parks.
pub fn hand_over() {
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut()
            && let Some(held) = held.as_mut()
        {
            held.hand_over();
        }
    });
}

/// While alive, this thread holds its access lines; dropping it hands over the rest.
pub struct HeldLines {
    holding: bool,
}

impl HeldLines {
    /// Holds this thread's access lines for the gateway's log writer; holds nothing when
    /// logs were not initialised (the gateway run as a library).
    pub fn for_serving_thread() -> HeldLines {
        match SINK.get() {
            Some(writer) => HeldLines::for_sink(writer.clone()),
            None => HeldLines { holding: false },
        }
    }

    /// Holds this thread's access lines for `sink`.
    pub fn for_sink(sink: impl Write + 'static) -> HeldLines {
        HELD.with(|held| {
            *held.borrow_mut() = Some(Held {
                lines: Vec::with_capacity(HOLD_BYTES),
                since: Instant::now(),
                sink: Box::new(sink),
            })
        });
        HeldLines { holding: true }
    }
}

impl Drop for HeldLines {
    fn drop(&mut self) {
        if self.holding {
            hand_over();
            let _ = HELD.try_with(|held| held.try_borrow_mut().map(|mut held| held.take()));
        }
    }
}

/// The `tracing` writer: access lines on a holding thread are held, every other line is
/// written at once, after the thread's held lines.
pub struct Lines<W> {
    writer: W,
}

impl Lines<tracing_appender::non_blocking::NonBlocking> {
    /// Writes through the gateway's log writer, which serving threads also hand over to.
    pub fn new(writer: tracing_appender::non_blocking::NonBlocking) -> Self {
        let _ = SINK.set(writer.clone());
        Lines { writer }
    }
}

impl<W> Lines<W> {
    /// Writes through `writer` (and serving threads hand over to whatever they were given).
    pub fn through(writer: W) -> Self {
        Lines { writer }
    }
}

/// One line's writer, from [`Lines`].
pub enum LineWriter<W> {
    /// Appended to this thread's held lines.
    Held,
    Direct(W),
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Lines<W> {
    type Writer = LineWriter<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        hand_over();
        LineWriter::Direct(self.writer.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        if meta.target() == ACCESS_TARGET && is_holding() {
            LineWriter::Held
        } else {
            hand_over();
            LineWriter::Direct(self.writer.make_writer_for(meta))
        }
    }
}

fn is_holding() -> bool {
    HELD.try_with(|held| held.try_borrow().is_ok_and(|held| held.is_some()))
        .unwrap_or(false)
}

impl<W: Write> Write for LineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LineWriter::Direct(writer) => writer.write(buf),
            LineWriter::Held => {
                // `tracing` writes a line right after choosing its writer, so the thread
                // still holds: `Held` is chosen only then.
                let _ = HELD.try_with(|held| {
                    if let Ok(mut held) = held.try_borrow_mut()
                        && let Some(held) = held.as_mut()
                    {
                        if held.lines.is_empty() {
                            held.since = Instant::now();
                        }
                        held.lines.extend_from_slice(buf);
                        if held.lines.len() >= HOLD_BYTES || held.since.elapsed() >= HOLD_FOR {
                            held.hand_over();
                        }
                    }
                });
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LineWriter::Direct(writer) => writer.flush(),
            LineWriter::Held => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::tests::Written;

    fn logs_to(written: &Written) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(Lines::through(written.clone()))
            .finish()
    }

    fn access(n: usize) {
        tracing::info!(target: "gateway::access", n, "request");
    }

    #[test]
    fn held_lines_wait_for_a_hand_over_and_keep_their_order() {
        let written = Written::default();
        tracing::subscriber::with_default(logs_to(&written), || {
            let held = HeldLines::for_sink(written.clone());
            access(1);
            access(2);
            assert!(written.lines().is_empty(), "{:?}", written.lines());

            // Another line hands the held ones over first.
            tracing::warn!("something else");
            let lines = written.lines();
            assert_eq!(lines.len(), 3, "{lines:?}");
            assert!(lines[0].ends_with("request n=1"), "{lines:?}");
            assert!(lines[1].ends_with("request n=2"), "{lines:?}");
            assert!(lines[2].ends_with("something else"), "{lines:?}");

            // The runtime parking hands them over.
            access(3);
            assert_eq!(written.lines().len(), 3);
            hand_over();
            assert!(written.lines()[3].ends_with("request n=3"));

            // So does dropping the guard, after which lines are written at once.
            access(4);
            drop(held);
            assert!(written.lines()[4].ends_with("request n=4"));
            access(5);
            assert!(written.lines()[5].ends_with("request n=5"));
        });
    }

    #[test]
    fn a_full_or_old_batch_is_handed_over_without_a_pause() {
        let written = Written::default();
        tracing::subscriber::with_default(logs_to(&written), || {
            let _held = HeldLines::for_sink(written.clone());
            let mut n = 0;
            while written.lines().is_empty() {
                n += 1;
                access(n);
                assert!(n < HOLD_BYTES / 10, "{n} lines held");
            }
            let bytes = written.bytes().len();
            assert!(bytes >= HOLD_BYTES, "handed over at {bytes} bytes");
            assert_eq!(written.lines().len(), n);

            access(n + 1);
            std::thread::sleep(HOLD_FOR);
            access(n + 2);
            assert_eq!(written.lines().len(), n + 2);
        });
    }

    #[test]
    fn a_thread_that_does_not_hold_writes_each_line() {
        let written = Written::default();
        tracing::subscriber::with_default(logs_to(&written), || {
            access(1);
            assert_eq!(written.lines().len(), 1);
        });
    }
}
