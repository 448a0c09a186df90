//! The real engine: WhatsApp Web multi-device through `whatsapp-rust`.

use super::{Engine, EngineSink};
use crate::config::WhatsappRustConfig;
use crate::storage::Database;
use std::sync::Arc;

pub struct WhatsappWeb;

impl WhatsappWeb {
    pub fn new(_sink: EngineSink, _db: Database, _config: WhatsappRustConfig) -> Arc<dyn Engine> {
        unimplemented!("whatsapp-rust engine lands with the sessions issue")
    }
}
