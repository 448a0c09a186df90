//! Cursor pagination (API.md §1.6): the `limit` rule, the opaque cursor codec, the page a
//! request asks for, and the one helper that pages a sorted in-memory list — shared by the
//! host and every plugin so all lists behave alike.

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

/// The page a list request asks for (API.md §1.6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The decoded cursor: where the previous page stopped.
    pub after: Option<Vec<u8>>,
}

impl PageRequest {
    /// Reads `limit` and `cursor` query values.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
        let limit = parse_limit(limit)?;
        let after = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        Ok(PageRequest { limit, after })
    }

    /// The first page of `limit` items.
    pub fn first(limit: u32) -> PageRequest {
        PageRequest {
            limit: limit.clamp(1, MAX_LIMIT),
            after: None,
        }
    }
}

/// One page of a cursor list: `{"data": [...], "nextCursor": "…" | null}`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Converts every item (to the answer's view of it, say).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// One page of `items`, which are sorted by `key` (unique, ascending bytewise): the items
/// strictly after the cursor's key, and a cursor naming the last one served when more
/// follow.
pub fn page_sorted<'a, T, K>(items: &'a [T], key: K, page: &PageRequest) -> Page<&'a T>
where
    K: Fn(&T) -> &[u8],
{
    let start = match &page.after {
        Some(after) => items.partition_point(|i| key(i) <= after.as_slice()),
        None => 0,
    };
    let rest = &items[start..];
    let limit = page.limit.max(1) as usize;
    let next_cursor = (rest.len() > limit).then(|| encode_cursor(key(&rest[limit - 1])));
    Page {
        data: rest.iter().take(limit).collect(),
        next_cursor,
    }
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

    #[test]
    fn sorted_lists_page_every_item_once() {
        let items: Vec<String> = (0..23).map(|i| format!("id{i:03}")).collect();
        let mut seen = Vec::new();
        let mut page = PageRequest::first(5);
        loop {
            let p = page_sorted(&items, |s| s.as_bytes(), &page);
            assert!(p.data.len() <= 5);
            seen.extend(p.data.iter().map(|s| (*s).clone()));
            match p.next_cursor {
                Some(c) => page = PageRequest::parse(Some("5"), Some(&c)).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, items);
        let empty: Vec<String> = Vec::new();
        let p = page_sorted(&empty, |s| s.as_bytes(), &PageRequest::first(5));
        assert!(p.data.is_empty() && p.next_cursor.is_none());
        // Exactly one page's worth: no cursor.
        let p = page_sorted(&items[..5], |s| s.as_bytes(), &PageRequest::first(5));
        assert_eq!(p.data.len(), 5);
        assert!(p.next_cursor.is_none());
    }
    /// Property tests: the cursor codec round-trips any bytes, refuses everything it did
    /// not issue without panicking, and every accepted cursor has one spelling.
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn encode_decode_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                let c = encode_cursor(&bytes);
                prop_assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{}", c);
                prop_assert_eq!(decode_cursor(&c).ok(), Some(bytes.clone()));
                let page = PageRequest::parse(Some("7"), Some(&c));
                prop_assert_eq!(page.ok(), Some(PageRequest { limit: 7, after: Some(bytes) }));
            }

            /// Decoding never panics; what it accepts is exactly what encoding would issue.
            #[test]
            fn decode_never_panics_and_accepts_only_canonical_cursors(
                s in prop_oneof!["\\PC{0,40}", "[A-Za-z0-9_=+/-]{0,24}", "A[A-Za-z0-9_-]{0,24}"]
            ) {
                if let Ok(bytes) = decode_cursor(&s) {
                    prop_assert_eq!(encode_cursor(&bytes), s.trim());
                }
                let _ = PageRequest::parse(Some(&s), Some(&s));
                let _ = parse_limit(Some(&s));
            }

            /// The limit rule for every number.
            #[test]
            fn limit_rule_for_any_number(n in any::<u64>()) {
                let want = if n == 0 { DEFAULT_LIMIT } else { n.min(MAX_LIMIT as u64) as u32 };
                prop_assert_eq!(parse_limit(Some(&n.to_string())).ok(), Some(want));
            }

            /// Walking a sorted list page by page serves every item once, in order.
            #[test]
            fn pages_cover_a_sorted_list(
                keys in prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..6), 0..60),
                limit in 1u32..12,
            ) {
                let items: Vec<Vec<u8>> = keys.into_iter().collect();
                let mut seen = Vec::new();
                let mut page = PageRequest::first(limit);
                for _ in 0..=items.len() {
                    let p = page_sorted(&items, |k| k.as_slice(), &page);
                    prop_assert!(p.data.len() <= limit as usize);
                    seen.extend(p.data.iter().map(|k| (*k).clone()));
                    match p.next_cursor {
                        Some(c) => page = PageRequest::parse(Some(&limit.to_string()), Some(&c)).unwrap(),
                        None => break,
                    }
                }
                prop_assert_eq!(seen, items);
            }
        }
    }
}
