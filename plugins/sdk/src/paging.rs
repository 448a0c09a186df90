//! Cursor pagination (API.md §1.6): the `limit` rule and the opaque cursor codec that every
//! list in the gateway uses.

use crate::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// Missing or zero `limit` means this many.
pub const DEFAULT_LIMIT: u32 = 50;
/// Larger limits are clamped to this.
pub const MAX_LIMIT: u32 = 200;

/// Marks a cursor of this codec version, so a cursor from a future format is refused
/// cleanly instead of being misread.
const CURSOR_VERSION: u8 = 1;

/// Applies the `limit` rule: missing or 0 → 50; otherwise clamped to 1–200. A value that
/// is not a number is a validation error.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_LIMIT);
    };
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid_field("limit", "limit must be a whole number"))?;
    Ok(match n {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT as u64) as u32,
    })
}

/// Encodes the position after which the next page starts (usually the last key served).
pub fn encode_cursor(position: &[u8]) -> String {
    let mut raw = Vec::with_capacity(position.len() + 1);
    raw.push(CURSOR_VERSION);
    raw.extend_from_slice(position);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is a validation error.
pub fn decode_cursor(cursor: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::invalid_field("cursor", "cursor is not one this gateway issued");
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    match raw.split_first() {
        Some((&CURSOR_VERSION, rest)) => Ok(rest.to_vec()),
        _ => Err(bad()),
    }
}

/// One page of a cursor list: `{"data": [...], "nextCursor": "…" | null}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_rule() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("")).unwrap(), 50);
        assert_eq!(parse_limit(Some("0")).unwrap(), 50);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("7")).unwrap(), 7);
        assert_eq!(parse_limit(Some("1000000000000")).unwrap(), 200);
        assert!(parse_limit(Some("-1")).is_err());
        assert!(parse_limit(Some("ten")).is_err());
    }

    #[test]
    fn cursor_round_trip_and_tamper() {
        let c = encode_cursor(b"contact/\x00\x01");
        assert_eq!(decode_cursor(&c).unwrap(), b"contact/\x00\x01");
        assert!(decode_cursor("not base64 !").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode([9u8, 1, 2])).is_err());
        assert!(decode_cursor("").is_err());
    }
}
