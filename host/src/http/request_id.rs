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
        .map_or_else(fresh, str::to_owned)
}

/// `req_<ULID>`, encoded into the string directly (no formatter: this runs per request).
fn fresh() -> String {
    let mut buf = [0u8; ulid::ULID_LEN];
    let id = ulid::Ulid::generate();
    let mut out = String::with_capacity(4 + ulid::ULID_LEN);
    out.push_str("req_");
    out.push_str(id.array_to_str(&mut buf));
    out
}
