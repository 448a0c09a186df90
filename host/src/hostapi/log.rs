//! `wa:gateway/log`: plugin log lines, tagged with the plugin and the request id.

use super::InstanceState;
use super::wa::gateway::log::{Host, Level};

/// Longest message logged; longer ones are cut.
const MAX_MESSAGE: usize = 8 * 1024;

impl Host for InstanceState {
    async fn write(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let request_id = self.call().map(|c| c.request_id.as_str()).unwrap_or("");
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, request_id, "{message}"),
            Level::Debug => tracing::debug!(plugin, request_id, "{message}"),
            Level::Info => tracing::info!(plugin, request_id, "{message}"),
            Level::Warn => tracing::warn!(plugin, request_id, "{message}"),
            Level::Error => tracing::error!(plugin, request_id, "{message}"),
        }
    }
}
