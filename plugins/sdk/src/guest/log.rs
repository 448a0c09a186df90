//! Structured logs, tagged by the host with the plugin's name and the request id.

#[cfg(target_arch = "wasm32")]
use super::bindings::wa::gateway::log as imp;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::log as imp;

pub use super::bindings::wa::gateway::log::Level;

pub fn write(level: Level, message: &str) {
    imp::write(level, message)
}

pub fn debug(message: &str) {
    write(Level::Debug, message)
}

pub fn info(message: &str) {
    write(Level::Info, message)
}

pub fn warn(message: &str) {
    write(Level::Warn, message)
}

pub fn error(message: &str) {
    write(Level::Error, message)
}
