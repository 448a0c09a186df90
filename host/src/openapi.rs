//! The self-description served on the public listener: `/openapi.json` composed from the
//! host's routes and every loaded plugin's manifest.

use crate::app::App;
use crate::http::Response;
use std::sync::Arc;

/// Answers the public non-API paths (`/openapi.json`), or `None` for everything else.
pub fn serve_public(_app: &Arc<App>, _method: &http::Method, _path: &str) -> Option<Response> {
    None
}
