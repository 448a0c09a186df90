//! `log` in memory: lines kept for assertions, and echoed to stderr for a failing test.

use crate::guest::log::Level;
use std::cell::RefCell;

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn reset() {
    LINES.with_borrow_mut(|l| l.clear());
}

pub(crate) fn lines() -> Vec<String> {
    LINES.with_borrow(|l| l.clone())
}

pub(crate) fn write(level: Level, message: &str) {
    let level = match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    eprintln!("plugin log {level}: {message}");
    LINES.with_borrow_mut(|l| l.push(format!("{level}: {message}")));
}
