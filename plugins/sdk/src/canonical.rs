//! The one canonical JSON form (keys sorted, no whitespace) and the request fingerprint
//! built on it, which idempotency keys are checked against.
//!
//! Host and plugins must agree byte for byte, so both use this module. The form: object
//! keys sorted by their UTF-8 bytes at every depth; no whitespace; strings escaped as
//! `serde_json` writes them (`"`, `\` and control characters only, everything else as
//! UTF-8); numbers as integers when they are whole and exactly representable (`1.0` and
//! `1` are one number, as they are in JSON), else in `serde_json`'s shortest form.

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// Whole floats below this magnitude print as integers: every one is exact in an f64.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// `value` in canonical form.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => out.push_str(&value.to_string()),
        Value::Number(n) => write_number(n, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &Number, out: &mut String) {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < EXACT_INTEGER_LIMIT => {
            // `-0.0` is zero.
            out.push_str(&(f as i64).to_string());
        }
        _ => out.push_str(&n.to_string()),
    }
}

/// Hex SHA-256 of one request: its operation id, session, async flag and body, as the
/// canonical form of `[operation_id, session, async_mode, body]` (a JSON array, so no
/// choice of separators can make two different requests hash alike).
pub fn fingerprint(operation_id: &str, session: &str, async_mode: bool, body: &Value) -> String {
    let parts = Value::Array(vec![
        Value::String(operation_id.to_owned()),
        Value::String(session.to_owned()),
        Value::Bool(async_mode),
        body.clone(),
    ]);
    hex(&Sha256::digest(canonical_json(&parts).as_bytes()))
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(text: &str) -> String {
        canonical_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [ 1, 2 ], "A": null, "aa": true }"#),
            r#"{"A":null,"a":[1,2],"aa":true,"b":1}"#
        );
        assert_eq!(canon("[]"), "[]");
        assert_eq!(canon("{}"), "{}");
    }

    #[test]
    fn nested_objects_are_sorted_at_every_depth_and_arrays_keep_their_order() {
        assert_eq!(
            canon(r#"{"z": {"y": [{"b": 2, "a": 1}, 3], "x": {"d": {}, "c": []}}}"#),
            r#"{"z":{"x":{"c":[],"d":{}},"y":[{"a":1,"b":2},3]}}"#
        );
    }

    #[test]
    fn unicode_stays_utf8_and_keys_sort_by_bytes() {
        // "é" (C3 A9) sorts after "z" (7A) by bytes; escapes are only the required ones.
        assert_eq!(
            canon(r#"{"é": "😀", "z": "line\nbreak \"q\" \\ \u0001", "\u00e9t\u00e9": 1}"#),
            "{\"z\":\"line\\nbreak \\\"q\\\" \\\\ \\u0001\",\"é\":\"😀\",\"été\":1}"
        );
        // An escaped and a raw spelling of the same text are one canonical string.
        assert_eq!(canon(r#"{"k":"\u00e9"}"#), canon(r#"{"k":"é"}"#));
    }

    #[test]
    fn numbers_have_one_spelling() {
        assert_eq!(
            canon("[1, 1.0, -0.0, 1e2, 2.5, -3, 18446744073709551615]"),
            "[1,1,0,100,2.5,-3,18446744073709551615]"
        );
        assert_eq!(
            canon("[1e300, 0.1, 12345678901234567890.0]"),
            "[1e+300,0.1,1.2345678901234567e+19]"
        );
        assert_eq!(canon("[-6.0, 90, -180.0]"), "[-6,90,-180]");
    }

    #[test]
    fn fingerprints_differ_by_every_part_and_not_by_spelling() {
        let body = json!({"type": "text", "to": "1@s.whatsapp.net", "text": "hi"});
        let same =
            serde_json::from_str(r#"{"text":"hi","to":"1@s.whatsapp.net","type":"text"}"#).unwrap();
        let f = fingerprint("sendMessage", "S1", false, &body);
        assert_eq!(f.len(), 64);
        assert!(
            f.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(f, fingerprint("sendMessage", "S1", false, &same));
        assert_ne!(f, fingerprint("sendMessage", "S2", false, &body));
        assert_ne!(f, fingerprint("sendMessage", "S1", true, &body));
        assert_ne!(f, fingerprint("editMessage", "S1", false, &body));
        assert_ne!(
            f,
            fingerprint("sendMessage", "S1", false, &json!({"type": "text"}))
        );
        // Separators inside values cannot shift bytes from one part to another.
        assert_ne!(
            fingerprint("a\",\"b", "c", false, &json!(null)),
            fingerprint("a", "b\",\"c", false, &json!(null))
        );
    }

    #[test]
    fn hex_of_known_digest() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
