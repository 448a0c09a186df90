//! WhatsApp addresses (JIDs) and phone numbers: the one parser and validator that the host
//! and every plugin use, so `%40`-decoded path values and stored data agree on one form.

use crate::error::ApiError;
use std::fmt;
use std::str::FromStr;

/// The server part of a JID, which says what kind of address it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// A phone-number user: `14155550123@s.whatsapp.net` (`c.us` is read as this).
    User,
    /// A LID, WhatsApp's stable per-account identifier: `205227043110953@lid`.
    Lid,
    /// A group: `120363021234567890@g.us` (old groups: `14155550123-1500000000@g.us`).
    Group,
    /// A channel: `120363025246125486@newsletter`.
    Newsletter,
    /// A broadcast list or status: `status@broadcast`.
    Broadcast,
}

impl Server {
    pub const fn as_str(self) -> &'static str {
        match self {
            Server::User => "s.whatsapp.net",
            Server::Lid => "lid",
            Server::Group => "g.us",
            Server::Newsletter => "newsletter",
            Server::Broadcast => "broadcast",
        }
    }

    fn parse(s: &str) -> Option<Server> {
        Some(match s {
            "s.whatsapp.net" | "c.us" => Server::User,
            "lid" => Server::Lid,
            "g.us" => Server::Group,
            "newsletter" => Server::Newsletter,
            "broadcast" => Server::Broadcast,
            _ => return None,
        })
    }
}

/// Why a JID or phone number was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JidError(pub String);

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JidError {}

impl From<JidError> for ApiError {
    fn from(e: JidError) -> Self {
        ApiError::validation(e.0)
    }
}

/// A validated JID. Device and agent suffixes (`:12`, `.0`) are kept but excluded from
/// [`Jid::to_non_device`], the form stored data is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    user: String,
    server: Server,
    device: Option<u16>,
}

const MAX_USER_LEN: usize = 64;

impl Jid {
    /// Parses and validates `user[:device]@server`.
    pub fn parse(input: &str) -> Result<Jid, JidError> {
        let input = input.trim();
        let (user_part, server) = input
            .rsplit_once('@')
            .ok_or_else(|| JidError(format!("'{}' is not a JID (missing '@')", shorten(input))))?;
        let server = Server::parse(server).ok_or_else(|| {
            JidError(format!(
                "'{}' has an unknown server '{}'",
                shorten(input),
                shorten(server)
            ))
        })?;
        let (user, device) = match user_part.split_once(':') {
            Some((u, d)) => {
                let d: u16 = d
                    .parse()
                    .map_err(|_| JidError(format!("'{}' has a bad device", shorten(input))))?;
                (u, Some(d))
            }
            None => (user_part, None),
        };
        // `user.agent` form from multi-device JIDs: keep the user only.
        let user = match server {
            Server::User | Server::Lid => user.split('.').next().unwrap_or(user),
            _ => user,
        };
        if user.is_empty() || user.len() > MAX_USER_LEN {
            return Err(JidError(format!(
                "'{}' has an empty or too long user part",
                shorten(input)
            )));
        }
        let ok = match server {
            Server::User => is_phone_digits(user),
            Server::Lid | Server::Newsletter => user.bytes().all(|b| b.is_ascii_digit()),
            Server::Group => {
                user.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                    && !user.starts_with('-')
                    && !user.ends_with('-')
            }
            Server::Broadcast => user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        };
        if !ok {
            return Err(JidError(format!(
                "'{}' is not a valid {} JID",
                shorten(input),
                server.as_str()
            )));
        }
        Ok(Jid {
            user: user.to_owned(),
            server,
            device,
        })
    }

    /// The phone-number JID for a phone (`+` and spaces allowed, see [`parse_phone`]).
    pub fn from_phone(phone: &str) -> Result<Jid, JidError> {
        Ok(Jid {
            user: parse_phone(phone, true)?,
            server: Server::User,
            device: None,
        })
    }

    /// Builds a JID from parts already known to be valid (engine data).
    pub fn new(user: impl Into<String>, server: Server) -> Jid {
        Jid {
            user: user.into(),
            server,
            device: None,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn server(&self) -> Server {
        self.server
    }

    pub fn device(&self) -> Option<u16> {
        self.device
    }

    pub fn is_user(&self) -> bool {
        self.server == Server::User
    }

    pub fn is_lid(&self) -> bool {
        self.server == Server::Lid
    }

    pub fn is_group(&self) -> bool {
        self.server == Server::Group
    }

    /// A person: a phone-number user or a LID.
    pub fn is_person(&self) -> bool {
        matches!(self.server, Server::User | Server::Lid)
    }

    /// The phone number of a phone-number JID.
    pub fn phone_number(&self) -> Option<&str> {
        self.is_user().then_some(self.user.as_str())
    }

    /// The JID without its device part: the form data is stored under.
    pub fn to_non_device(&self) -> Jid {
        Jid {
            user: self.user.clone(),
            server: self.server,
            device: None,
        }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written piece by piece: JIDs are formatted on every request's path, and a
        // format string costs more than the pieces.
        f.write_str(&self.user)?;
        if let Some(d) = self.device {
            write!(f, ":{d}")?;
        }
        f.write_str("@")?;
        f.write_str(self.server.as_str())
    }
}

impl FromStr for Jid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jid::parse(s)
    }
}

/// Parses a person's JID: a phone-number user or a LID, without device.
pub fn parse_person(input: &str) -> Result<Jid, JidError> {
    let jid = Jid::parse(input)?;
    if !jid.is_person() {
        return Err(JidError(format!(
            "'{}' is not a person's JID (expected …@s.whatsapp.net or …@lid)",
            shorten(input)
        )));
    }
    Ok(jid.to_non_device())
}

/// Parses a LID (`…@lid`).
pub fn parse_lid(input: &str) -> Result<Jid, JidError> {
    let jid = Jid::parse(input)?;
    if !jid.is_lid() {
        return Err(JidError(format!(
            "'{}' is not a LID (expected …@lid)",
            shorten(input)
        )));
    }
    Ok(jid.to_non_device())
}

/// Parses a group JID (`…@g.us`).
pub fn parse_group(input: &str) -> Result<Jid, JidError> {
    let jid = Jid::parse(input)?;
    if !jid.is_group() {
        return Err(JidError(format!(
            "'{}' is not a group JID (expected …@g.us)",
            shorten(input)
        )));
    }
    Ok(jid)
}

/// E.164 allows at most 15 digits; the shortest real numbers with country code have 7.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

fn is_phone_digits(s: &str) -> bool {
    PHONE_DIGITS.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0')
}

/// Normalises a phone number to digits with country code. `allow_plus` accepts one leading
/// `+` (and the spaces, dashes and dots people type); without it only bare digits pass.
pub fn parse_phone(input: &str, allow_plus: bool) -> Result<String, JidError> {
    let trimmed = input.trim();
    let digits: String = if allow_plus {
        let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if rest
            .chars()
            .any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')))
        {
            return Err(JidError(format!(
                "'{}' is not a phone number",
                shorten(input)
            )));
        }
        rest.chars().filter(|c| c.is_ascii_digit()).collect()
    } else {
        if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(JidError(format!(
                "'{}' is not a phone number (digits only, with country code, no '+')",
                shorten(input)
            )));
        }
        trimmed.to_owned()
    };
    if !is_phone_digits(&digits) {
        return Err(JidError(format!(
            "'{}' is not a phone number (7 to 15 digits with country code)",
            shorten(input)
        )));
    }
    Ok(digits)
}

/// Keeps error messages short when someone sends a megabyte as a JID.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        let u = Jid::parse("14155550123@s.whatsapp.net").unwrap();
        assert!(u.is_user());
        assert_eq!(u.phone_number(), Some("14155550123"));
        assert!(Jid::parse("205227043110953@lid").unwrap().is_lid());
        assert!(Jid::parse("120363021234567890@g.us").unwrap().is_group());
        assert!(
            Jid::parse("14155550123-1500000000@g.us")
                .unwrap()
                .is_group()
        );
        assert_eq!(
            Jid::parse("120363025246125486@newsletter")
                .unwrap()
                .server(),
            Server::Newsletter
        );
        assert_eq!(
            Jid::parse("status@broadcast").unwrap().server(),
            Server::Broadcast
        );
    }

    #[test]
    fn normalises_legacy_and_device_forms() {
        let j = Jid::parse("14155550123@c.us").unwrap();
        assert_eq!(j.to_string(), "14155550123@s.whatsapp.net");
        let d = Jid::parse("14155550123:12@s.whatsapp.net").unwrap();
        assert_eq!(d.device(), Some(12));
        assert_eq!(d.to_string(), "14155550123:12@s.whatsapp.net");
        assert_eq!(d.to_non_device().to_string(), "14155550123@s.whatsapp.net");
        let a = Jid::parse("205227043110953.1:3@lid").unwrap();
        assert_eq!(a.to_non_device().to_string(), "205227043110953@lid");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "@",
            "14155550123",
            "abc@s.whatsapp.net",
            "12@s.whatsapp.net",
            "14155550123@example.com",
            "abc@lid",
            "-1@g.us",
            "1:x@s.whatsapp.net",
            "+14155550123@s.whatsapp.net",
        ] {
            assert!(Jid::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn person_lid_group_helpers() {
        assert!(parse_person("205227043110953@lid").is_ok());
        assert!(parse_person("120363021234567890@g.us").is_err());
        assert!(parse_lid("14155550123@s.whatsapp.net").is_err());
        assert!(parse_group("205227043110953@lid").is_err());
    }

    #[test]
    fn phones() {
        assert_eq!(
            parse_phone("+1 (415) 555-0123", true).unwrap(),
            "14155550123"
        );
        assert_eq!(
            parse_phone("6281234567890", false).unwrap(),
            "6281234567890"
        );
        assert!(parse_phone("+6281234567890", false).is_err());
        assert!(parse_phone("123", true).is_err());
        assert!(parse_phone("1234567890123456", true).is_err());
        assert!(parse_phone("0812345678", true).is_err());
        assert!(parse_phone("62812x4567890", true).is_err());
        assert_eq!(
            Jid::from_phone("+6281234567890").unwrap().to_string(),
            "6281234567890@s.whatsapp.net"
        );
    }

    #[test]
    fn long_input_is_shortened_in_messages() {
        let long = "9".repeat(10_000);
        let err = Jid::parse(&long).unwrap_err();
        assert!(err.0.len() < 200);
    }
    /// Property tests: the parser never panics, what it accepts has one canonical spelling
    /// that parses back to the same JID, and phone numbers pass exactly by the documented rule.
    mod props {
        use super::*;
        use proptest::prelude::*;

        /// A well-formed JID of any kind, as text in any accepted spelling, and its
        /// canonical form.
        fn valid_jid() -> impl Strategy<Value = (String, String)> {
            let device = prop::option::of(any::<u16>());
            prop_oneof![
                ("[1-9][0-9]{6,14}", prop::bool::ANY, device.clone()).prop_map(|(u, cus, d)| {
                    let dev = d.map(|d| format!(":{d}")).unwrap_or_default();
                    let server = if cus { "c.us" } else { "s.whatsapp.net" };
                    (
                        format!("{u}{dev}@{server}"),
                        format!("{u}{dev}@s.whatsapp.net"),
                    )
                }),
                ("[0-9]{1,64}", device.clone()).prop_map(|(u, d)| {
                    let dev = d.map(|d| format!(":{d}")).unwrap_or_default();
                    (format!("{u}{dev}@lid"), format!("{u}{dev}@lid"))
                }),
                "[0-9]{1,20}(-[0-9]{1,12})?"
                    .prop_map(|u| (format!("{u}@g.us"), format!("{u}@g.us"))),
                "[0-9]{1,30}".prop_map(|u| (format!("{u}@newsletter"), format!("{u}@newsletter"))),
                "[A-Za-z0-9_-]{1,20}"
                    .prop_map(|u| (format!("{u}@broadcast"), format!("{u}@broadcast"))),
            ]
        }

        /// Anything, and strings close to JIDs (so the interesting branches are reached).
        fn jid_like() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,40}",
                ".{0,12}",
                "[0-9a-z:.+ -]{0,20}@(s\\.whatsapp\\.net|c\\.us|lid|g\\.us|newsletter|broadcast|x)",
                "[0-9]{0,18}(\\.[0-9a-z]{0,3})?(:[0-9+-]{0,7})?@(s\\.whatsapp\\.net|lid|g\\.us)",
            ]
        }

        /// The documented phone rule (`parse_phone`): after trimming, 7 to 15 digits not
        /// starting with 0; with `allow_plus`, one leading `+` and the separators people
        /// type (space, `-`, `.`, `(`, `)`) between them. The answer is the digits.
        fn phone_oracle(input: &str, allow_plus: bool) -> Option<String> {
            let t = input.trim();
            let body = if allow_plus {
                t.strip_prefix('+').unwrap_or(t)
            } else {
                t
            };
            let separators_ok = body.chars().all(|c| {
                c.is_ascii_digit() || (allow_plus && matches!(c, ' ' | '-' | '.' | '(' | ')'))
            });
            let digits: String = body.chars().filter(char::is_ascii_digit).collect();
            (separators_ok && (7..=15).contains(&digits.len()) && !digits.starts_with('0'))
                .then_some(digits)
        }

        fn phone_like() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\+?[0-9]{0,18}",
                " ?\\+?[0-9 ().-]{0,22} ?",
                "\\+?[0-9]{3,10}[a-z+#@][0-9]{0,6}",
                "\\PC{0,20}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// No input panics any entry point.
            #[test]
            fn parsing_never_panics(s in jid_like()) {
                let _ = Jid::parse(&s);
                let _ = parse_person(&s);
                let _ = parse_lid(&s);
                let _ = parse_group(&s);
                let _ = Jid::from_phone(&s);
                let _ = parse_phone(&s, true);
                let _ = parse_phone(&s, false);
            }

            /// Whatever parses displays as a form that parses back to the same JID and
            /// displays the same again; error messages stay short.
            #[test]
            fn parse_display_parse_round_trips(s in jid_like()) {
                match Jid::parse(&s) {
                    Ok(j) => {
                        let shown = j.to_string();
                        let again = Jid::parse(&shown);
                        prop_assert_eq!(again.as_ref(), Ok(&j), "{:?} → {:?}", s, shown);
                        prop_assert_eq!(again.unwrap().to_string(), shown);
                        let plain = j.to_non_device();
                        prop_assert_eq!(Jid::parse(&plain.to_string()), Ok(plain));
                    }
                    Err(e) => prop_assert!(e.0.len() < 300, "{}", e.0),
                }
            }

            /// Every well-formed JID is accepted, in its canonical form.
            #[test]
            fn well_formed_jids_are_accepted((text, canonical) in valid_jid()) {
                let j = Jid::parse(&text);
                prop_assert!(j.is_ok(), "{:?}: {:?}", text, j);
                let j = j.unwrap();
                prop_assert_eq!(j.to_string(), canonical.clone());
                prop_assert_eq!(Jid::parse(&canonical), Ok(j.clone()));
                // Surrounding whitespace is not part of an address.
                prop_assert_eq!(Jid::parse(&format!(" {text}\t")), Ok(j.clone()));
                prop_assert_eq!(parse_person(&text).is_ok(), j.is_person());
                prop_assert_eq!(parse_lid(&text).is_ok(), j.is_lid());
                prop_assert_eq!(parse_group(&text).is_ok(), j.is_group());
            }

            /// Phones: exactly the documented rule, with and without `+`.
            #[test]
            fn phone_parsing_follows_the_rule(s in phone_like()) {
                for allow_plus in [true, false] {
                    let got = parse_phone(&s, allow_plus).ok();
                    prop_assert_eq!(&got, &phone_oracle(&s, allow_plus), "{:?} allow_plus={}", s, allow_plus);
                }
                if let Ok(j) = Jid::from_phone(&s) {
                    let want = phone_oracle(&s, true);
                    prop_assert_eq!(j.phone_number(), want.as_deref());
                    prop_assert_eq!(Jid::parse(&j.to_string()), Ok(j));
                }
            }

            /// Digit strings: accepted exactly at 7–15 digits without a leading 0, with an
            /// optional `+` only where allowed.
            #[test]
            fn digit_strings_of_every_length(digits in "[0-9]{0,20}", plus in prop::bool::ANY) {
                let input = if plus { format!("+{digits}") } else { digits.clone() };
                let valid = (7..=15).contains(&digits.len()) && !digits.starts_with('0');
                prop_assert_eq!(parse_phone(&input, true).ok(), valid.then(|| digits.clone()));
                prop_assert_eq!(parse_phone(&input, false).ok(), (valid && !plus).then(|| digits.clone()));
            }
        }
    }
}
