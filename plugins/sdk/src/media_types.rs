//! Media types for sending (API.md §6.2), one table for the host and the plugins: what a
//! file's first bytes say it is, the types each kind of media takes, and how MIME types
//! compare (parameters dropped, common aliases folded).

/// What the first bytes of a file say it is, for the types senders use.
pub fn sniff(b: &[u8]) -> Option<&'static str> {
    let at = |i: usize, sig: &[u8]| b.get(i..i + sig.len()) == Some(sig);
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if at(0, b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some("image/webp")
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some("image/gif")
    } else if at(0, b"OggS") {
        Some("audio/ogg")
    } else if at(4, b"ftyp") {
        // ISO media: the brand tells 3GPP and audio-only MP4 from video.
        match b.get(8..11) {
            Some(b"3gp") | Some(b"3g2") => Some("video/3gpp"),
            Some(b"M4A") | Some(b"M4B") => Some("audio/mp4"),
            _ => Some("video/mp4"),
        }
    } else if at(0, b"ID3") {
        Some("audio/mpeg")
    } else if b.len() >= 2 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0 {
        // An MPEG audio frame header; layer bits 00 are AAC's ADTS.
        if b[1] & 0x06 == 0 {
            Some("audio/aac")
        } else {
            Some("audio/mpeg")
        }
    } else if at(0, b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// The type without parameters, lower case, with the common aliases folded.
pub fn essence(mime: &str) -> String {
    let e = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match e.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        "audio/mp3" => "audio/mpeg".into(),
        "audio/x-m4a" | "audio/m4a" => "audio/mp4".into(),
        "audio/opus" => "audio/ogg".into(),
        _ => e,
    }
}

/// Types that share a container are one family: an MP4 file is audio/mp4 or video/mp4
/// by what it holds, and 3GPP is the same format.
pub fn family(essence: &str) -> &str {
    match essence {
        "video/mp4" | "audio/mp4" | "video/3gpp" | "audio/3gpp" => "iso-media",
        other => other,
    }
}

pub fn well_formed(mime: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!(essence(mime).split_once('/'), Some((t, s)) if token(t) && token(s))
}

/// The types a kind of media (`image`, `sticker`, `audio`, `video`, `document`) takes, as
/// essences; `None` = any (documents, and kinds this list does not know).
pub fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "image" => Some(&["image/jpeg", "image/png", "image/webp"]),
        "sticker" => Some(&["image/webp"]),
        "audio" => Some(&["audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac"]),
        "video" => Some(&["video/mp4", "video/3gpp"]),
        _ => None,
    }
}

/// Whether a kind of media may be sent as this type.
pub fn accepts(kind: &str, mime: &str) -> bool {
    allowed(kind).is_none_or(|list| list.contains(&essence(mime).as_str()))
}
