//! Media types for sending (API.md §6.2): the inline data (`base64` or a `data:` URI),
//! what its bytes say it is, and which types each kind of media takes.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use gateway_sdk::ApiError;
use gateway_sdk::media_types::{essence, family, sniff, well_formed};
use gateway_sdk::outbox::MediaKind;

/// Decoded media is at most this large (WhatsApp's own limit for most kinds).
pub(crate) const MAX_MEDIA_BYTES: usize = 16 << 20;

/// Standard base64, padded or not (clients differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `media.data` decoded, with the type its `data:` URI names.
#[derive(Debug)]
pub(crate) struct InlineData {
    pub(crate) bytes: Vec<u8>,
    pub(crate) uri_type: Option<String>,
}

/// Decodes `media.data`: base64, or a `data:<type>[;params];base64,<data>` URI.
pub(crate) fn decode_data(data: &str) -> Result<InlineData, ApiError> {
    let bad = |m: &str| ApiError::invalid_field("media.data", m);
    let (uri_type, payload) = match data.strip_prefix("data:") {
        Some(rest) => {
            let (head, payload) = rest
                .split_once(',')
                .ok_or_else(|| bad("a data: URI needs a ',' before its data"))?;
            let mut parts = head.split(';');
            let media_type = parts.next().unwrap_or_default().trim();
            if !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
                return Err(bad("a data: URI must be base64 (data:<type>;base64,…)"));
            }
            let media_type = (!media_type.is_empty()).then(|| media_type.to_owned());
            (media_type, payload)
        }
        None => (None, data),
    };
    let compact: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    // Four characters carry three bytes: refuse what cannot fit before decoding it.
    if compact.len() / 4 * 3 > MAX_MEDIA_BYTES + 3 {
        return Err(too_large());
    }
    let bytes = BASE64
        .decode(&compact)
        .map_err(|_| bad("media.data is not valid base64"))?;
    if bytes.is_empty() {
        return Err(bad("media.data is empty"));
    }
    if bytes.len() > MAX_MEDIA_BYTES {
        return Err(too_large());
    }
    Ok(InlineData { bytes, uri_type })
}

fn too_large() -> ApiError {
    ApiError::invalid_field("media.data", "media is limited to 16 MiB once decoded")
        .with_detail("limit", MAX_MEDIA_BYTES)
}

/// The MIME type to send media as: `media.mimetype`, else the `data:` URI's, else what
/// the bytes say (documents fall back to `application/octet-stream`). It must be one the
/// kind takes and agree with the bytes when they are recognisable; `None` for an upload
/// sent without a type (the host knows it).
pub(crate) fn resolve(
    kind: MediaKind,
    declared: Option<&str>,
    data: Option<&InlineData>,
) -> Result<Option<String>, ApiError> {
    let field = "media.mimetype";
    let declared = declared.map(str::trim).filter(|d| !d.is_empty());
    let uri_type = data.and_then(|d| d.uri_type.as_deref());
    for t in [declared, uri_type].into_iter().flatten() {
        if !well_formed(t) {
            return Err(ApiError::invalid_field(
                field,
                format!("'{t}' is not a MIME type"),
            ));
        }
    }
    if let (Some(d), Some(u)) = (declared, uri_type)
        && essence(d) != essence(u)
    {
        return Err(ApiError::invalid_field(
            field,
            format!("media.mimetype {d} and the data: URI's {u} disagree"),
        ));
    }
    let sniffed = data.and_then(|d| sniff(&d.bytes));
    let named = declared.or(uri_type).map(str::to_owned);
    let mime = match named.or_else(|| sniffed.map(str::to_owned)) {
        Some(m) => m,
        // An upload sent without a type: the host knows it.
        None if data.is_none() => return Ok(None),
        None if kind == MediaKind::Document => "application/octet-stream".to_owned(),
        None => {
            return Err(ApiError::invalid_field(
                field,
                format!(
                    "cannot tell the {} type from its bytes; give media.mimetype",
                    kind.as_str()
                ),
            ));
        }
    };
    let Some(allowed) = gateway_sdk::media_types::allowed(kind.as_str()) else {
        return Ok(Some(mime));
    };
    let e = essence(&mime);
    if !allowed.contains(&e.as_str()) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{} must be {}, not {mime}",
                kind.as_str(),
                allowed.join(", ")
            ),
        ));
    }
    if let Some(s) = sniffed
        && family(s) != family(&e)
    {
        return Err(
            ApiError::invalid_field(field, format!("the data is {s}, not {mime}"))
                .with_detail("detected", s),
        );
    }
    Ok(Some(mime))
}

/// Voice notes play only as Ogg Opus on WhatsApp's clients.
pub(crate) fn is_ogg(mime: &str) -> bool {
    essence(mime) == "audio/ogg"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(bytes: &[u8], uri_type: Option<&str>) -> InlineData {
        InlineData {
            bytes: bytes.to_vec(),
            uri_type: uri_type.map(str::to_owned),
        }
    }

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0";
    const WEBP: &[u8] = b"RIFF\x10\0\0\0WEBPVP8 ";
    const OGG: &[u8] = b"OggS\0\x02";
    const MP4: &[u8] = b"\0\0\0\x18ftypisom\0\0";
    const M4A: &[u8] = b"\0\0\0\x18ftypM4A \0\0";
    const GP3: &[u8] = b"\0\0\0\x18ftyp3gp4\0\0";

    #[test]
    fn sniffs_the_types_senders_use() {
        for (bytes, want) in [
            (JPEG, "image/jpeg"),
            (PNG, "image/png"),
            (WEBP, "image/webp"),
            (OGG, "audio/ogg"),
            (MP4, "video/mp4"),
            (M4A, "audio/mp4"),
            (GP3, "video/3gpp"),
            (b"ID3\x04", "audio/mpeg"),
            (&[0xFF, 0xFB, 0x90], "audio/mpeg"),
            (&[0xFF, 0xF1, 0x50], "audio/aac"),
            (b"%PDF-1.7", "application/pdf"),
            (b"GIF89a", "image/gif"),
        ] {
            assert_eq!(sniff(bytes), Some(want), "{want}");
        }
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn the_declared_type_wins_but_must_fit_the_kind_and_the_bytes() {
        let r = |k, d: Option<&str>, data: &InlineData| resolve(k, d, Some(data));
        assert_eq!(
            r(MediaKind::Image, None, &inline(PNG, None))
                .unwrap()
                .as_deref(),
            Some("image/png")
        );
        assert_eq!(
            r(MediaKind::Image, Some("image/jpg"), &inline(JPEG, None))
                .unwrap()
                .as_deref(),
            Some("image/jpg")
        );
        // Declared PNG, bytes JPEG.
        assert!(r(MediaKind::Image, Some("image/png"), &inline(JPEG, None)).is_err());
        // A type the kind does not take.
        assert!(r(MediaKind::Image, None, &inline(b"GIF89a..", None)).is_err());
        assert!(r(MediaKind::Sticker, None, &inline(PNG, None)).is_err());
        assert!(
            r(
                MediaKind::Video,
                Some("video/quicktime"),
                &inline(b"????", None)
            )
            .is_err()
        );
        // MP4 holding audio is audio/mp4; the container family matches.
        assert_eq!(
            r(MediaKind::Audio, Some("audio/mp4"), &inline(MP4, None))
                .unwrap()
                .as_deref(),
            Some("audio/mp4")
        );
        assert_eq!(
            r(MediaKind::Video, None, &inline(GP3, None))
                .unwrap()
                .as_deref(),
            Some("video/3gpp")
        );
        // The data: URI's type, and a disagreement with media.mimetype.
        assert_eq!(
            r(MediaKind::Audio, None, &inline(OGG, Some("audio/ogg")))
                .unwrap()
                .as_deref(),
            Some("audio/ogg")
        );
        assert!(
            r(
                MediaKind::Audio,
                Some("audio/mpeg"),
                &inline(OGG, Some("audio/ogg"))
            )
            .is_err()
        );
        // Unknown bytes need a declared type; documents take anything.
        assert!(r(MediaKind::Audio, None, &inline(b"????", None)).is_err());
        assert_eq!(
            r(MediaKind::Document, None, &inline(b"????", None))
                .unwrap()
                .as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(
            r(MediaKind::Document, Some("text/csv"), &inline(PNG, None))
                .unwrap()
                .as_deref(),
            Some("text/csv")
        );
        assert!(r(MediaKind::Document, Some("not a type"), &inline(PNG, None)).is_err());
        // An upload without a type: the host knows it.
        assert_eq!(resolve(MediaKind::Image, None, None).unwrap(), None);
        assert!(resolve(MediaKind::Image, Some("text/plain"), None).is_err());
    }

    #[test]
    fn decodes_base64_and_data_uris() {
        let d = decode_data("aGVsbG8=").unwrap();
        assert_eq!((d.bytes.as_slice(), d.uri_type), (&b"hello"[..], None));
        assert_eq!(decode_data("aGVsbG8").unwrap().bytes, b"hello");
        assert_eq!(decode_data("aGVs\nbG8=").unwrap().bytes, b"hello");
        let d = decode_data("data:image/png;base64,aGVsbG8=").unwrap();
        assert_eq!(d.uri_type.as_deref(), Some("image/png"));
        let d = decode_data("data:audio/ogg;codecs=opus;base64,aGVsbG8=").unwrap();
        assert_eq!(d.uri_type.as_deref(), Some("audio/ogg"));
        assert!(decode_data("data:text/plain,hello").is_err());
        assert!(decode_data("not base64!").is_err());
        assert!(decode_data("").is_err());
    }
}
