//! Whether a reaction is exactly one emoji: one pictograph with its variation selector
//! and skin tone, a ZWJ sequence of those (👩‍💻), a flag (two regional indicators or a
//! tag sequence), or a keycap (1️⃣) — the emoji sequences of Unicode TS #51, without a
//! table of every named sequence (WhatsApp shows what it knows).

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';
const BLACK_FLAG: char = '\u{1F3F4}';
const TAG_END: char = '\u{E007F}';

/// Longest reaction accepted, in characters (a tagged flag is 7, a family 11).
const MAX_CHARS: usize = 32;

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn is_skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007E}').contains(&c)
}

/// Characters that are emoji on their own or with VS16 (Extended_Pictographic, in the
/// blocks WhatsApp's pickers draw from).
fn is_pictograph(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2194}'..='\u{2199}' | '\u{21A9}'..='\u{21AA}' | '\u{231A}'..='\u{231B}'
        | '\u{2328}' | '\u{23CF}' | '\u{23E9}'..='\u{23F3}' | '\u{23F8}'..='\u{23FA}'
        | '\u{24C2}' | '\u{25AA}'..='\u{25AB}' | '\u{25B6}' | '\u{25C0}'
        | '\u{25FB}'..='\u{25FE}' | '\u{2600}'..='\u{27BF}' | '\u{2934}'..='\u{2935}'
        | '\u{2B05}'..='\u{2B07}' | '\u{2B1B}'..='\u{2B1C}' | '\u{2B50}' | '\u{2B55}'
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}'
        | '\u{1F000}'..='\u{1F1E5}' | '\u{1F200}'..='\u{1F3FA}' | '\u{1F400}'..='\u{1FAFF}')
}

/// One pictograph with its optional VS16 and skin tone; `None` when `chars` does not
/// start with one.
fn element(chars: &[char]) -> Option<usize> {
    let first = *chars.first()?;
    if !is_pictograph(first) {
        return None;
    }
    let mut n = 1;
    if chars.get(n) == Some(&VS16) {
        n += 1;
    }
    if chars.get(n).is_some_and(|c| is_skin_tone(*c)) {
        n += 1;
        if chars.get(n) == Some(&VS16) {
            n += 1;
        }
    }
    Some(n)
}

/// True when `s` is exactly one emoji.
pub(crate) fn is_single_emoji(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || chars.len() > MAX_CHARS {
        return false;
    }
    match chars.as_slice() {
        // A flag of a country: exactly two regional indicators.
        [a, b] if is_regional_indicator(*a) && is_regional_indicator(*b) => return true,
        // A keycap: digit, # or *, optional VS16, then the keycap mark.
        [k, VS16, KEYCAP] | [k, KEYCAP] if k.is_ascii_digit() || *k == '#' || *k == '*' => {
            return true;
        }
        // A subdivision flag: the black flag, tags, the cancel tag.
        [BLACK_FLAG, tags @ .., TAG_END] if !tags.is_empty() && tags.iter().all(|c| is_tag(*c)) => {
            return true;
        }
        _ => {}
    }
    // Pictographs joined by ZWJ.
    let mut i = 0;
    loop {
        let Some(n) = element(&chars[i..]) else {
            return false;
        };
        i += n;
        match chars.get(i) {
            None => return true,
            Some(&ZWJ) if i + 1 < chars.len() => i += 1,
            Some(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_single_emoji;

    #[test]
    fn one_emoji_of_every_shape_passes() {
        for e in [
            "👍",
            "❤️",
            "❤",
            "😂",
            "🙏🏽",
            "👍🏿",
            "👩‍💻",
            "👨‍👩‍👧‍👦",
            "🏳️‍🌈",
            "🇮🇩",
            "🇺🇸",
            "1️⃣",
            "#⃣",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "☀️",
            "🫶",
            "🧑🏻‍🤝‍🧑🏼",
            "©️",
        ] {
            assert!(is_single_emoji(e), "{e:?}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for e in [
            "",
            "a",
            "ok",
            "👍👍",
            "👍 ",
            " 👍",
            "🇮",
            "🇮🇩🇮🇩",
            "1",
            "👍\u{200D}",
            "\u{200D}👍",
            "🏽",
            "😀a",
            "\u{FE0F}",
            "🏴\u{E007F}",
        ] {
            assert!(!is_single_emoji(e), "{e:?}");
        }
    }
}
