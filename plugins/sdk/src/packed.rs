//! The wire form of `storage.scan-packed`: a page of entries in one buffer, so a scan
//! crosses into the plugin as one copy instead of two per entry. The host packs with
//! [`push`], the SDK unpacks with [`entries`]; both sides share this one definition.
//!
//! Per entry, in order: the key's length and the value's length as little-endian `u32`,
//! then the key's bytes, then the value's bytes.

/// Appends one entry.
pub fn push(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    buf.reserve(8 + key.len() + value.len());
    buf.extend_from_slice(&len32(key).to_le_bytes());
    buf.extend_from_slice(&len32(value).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(value);
}

fn len32(bytes: &[u8]) -> u32 {
    // Keys are at most 1 KiB and values are bounded by the host's value limit (far
    // below 4 GiB), so a length always fits.
    u32::try_from(bytes.len()).expect("a stored key or value is under 4 GiB")
}

/// A buffer that is not a sequence of whole entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed;

/// One entry, borrowed from the buffer it was packed in.
pub type EntryRef<'a> = (&'a [u8], &'a [u8]);

/// Where one entry's key and value lie in its buffer.
pub type Span = (std::ops::Range<usize>, std::ops::Range<usize>);

/// The byte ranges of a packed buffer's entries, in order: for a reader that keeps the
/// buffer and hands out borrowed entries later.
pub fn spans(buf: &[u8]) -> Result<Vec<Span>, Malformed> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let head = buf.get(at..at + 8).ok_or(Malformed)?;
        let key_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let value_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let key = at + 8..(at + 8).checked_add(key_len).ok_or(Malformed)?;
        let value = key.end..key.end.checked_add(value_len).ok_or(Malformed)?;
        if value.end > buf.len() {
            return Err(Malformed);
        }
        at = value.end;
        out.push((key, value));
    }
    Ok(out)
}

/// The `(key, value)` pairs of a packed buffer, borrowed from it, in order.
pub fn entries(buf: &[u8]) -> Result<Vec<EntryRef<'_>>, Malformed> {
    Ok(spans(buf)?
        .into_iter()
        .map(|(k, v)| (&buf[k], &buf[v]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn what_is_pushed_is_unpacked_in_order(
            rows in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..40),
                 proptest::collection::vec(any::<u8>(), 0..200)),
                0..20,
            )
        ) {
            let mut buf = Vec::new();
            for (k, v) in &rows {
                push(&mut buf, k, v);
            }
            let back = entries(&buf).unwrap();
            prop_assert_eq!(back.len(), rows.len());
            for ((k, v), (bk, bv)) in rows.iter().zip(back) {
                prop_assert_eq!(k.as_slice(), bk);
                prop_assert_eq!(v.as_slice(), bv);
            }
        }

        #[test]
        fn a_truncated_buffer_is_malformed_not_a_panic(cut in 1usize..30) {
            let mut buf = Vec::new();
            push(&mut buf, b"key", b"a value of some length");
            let cut = cut.min(buf.len());
            prop_assert_eq!(entries(&buf[..buf.len() - cut]), Err(Malformed));
        }
    }
}
