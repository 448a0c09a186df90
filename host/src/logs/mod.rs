//! The gateway's logs: text or JSON lines on stderr, written by a thread of their own.
//!
//! A request never waits on stderr: lines go to [`tracing_appender`]'s writer thread. The
//! serving threads also hold their access lines and hand them over in batches
//! ([`held`]), so that thread is woken once per batch rather than once per request, and
//! the access line has a formatter of its own ([`access`]).

pub mod access;
pub mod held;

use crate::config::{Config, LogFormat};
use access::{AccessFirst, Style};
pub use held::{ACCESS_TARGET, HeldLines};

/// Initialises logs: text or JSON on stderr, filtered by `RUST_LOG` or `log.level`.
///
/// The returned guard flushes what is queued when dropped at exit.
pub fn init(config: &Config) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Under a flood, keep every line rather than drop: the queue applies back-pressure.
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(held::Lines::new(writer));
    let general = tracing_subscriber::fmt::format();
    let _ = match config.log.format {
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(AccessFirst::new(
                general.json().flatten_event(true),
                Style::Json,
            ))
            .try_init(),
        LogFormat::Text => builder
            .event_format(AccessFirst::new(general, Style::Text))
            .try_init(),
    };
    guard
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    /// What reached the log writer.
    #[derive(Clone, Default)]
    pub(super) struct Written(Arc<Mutex<Vec<u8>>>);

    impl Written {
        pub(super) fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
        }

        pub(super) fn text(&self) -> String {
            String::from_utf8(self.bytes()).unwrap()
        }

        pub(super) fn lines(&self) -> Vec<String> {
            self.text().lines().map(|l| l.to_owned()).collect()
        }
    }

    impl io::Write for Written {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Written {
        type Writer = Written;
        fn make_writer(&'a self) -> Written {
            self.clone()
        }
    }
}
