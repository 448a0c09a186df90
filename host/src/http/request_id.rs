//! Request ids: the caller's `x-request-id` when it is sane, else a fresh `req_<ULID>`.

use http::HeaderMap;

pub const HEADER: &str = "x-request-id";

pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", ulid::Ulid::generate()))
}
