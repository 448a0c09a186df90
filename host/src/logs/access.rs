//! The access line, written by a formatter of its own because every request writes one.
//!
//! `tracing`'s general formatter spends most of an access line's cost in `core::fmt`:
//! every field through `Debug`, the timestamp's date worked out from scratch. This one
//! writes the same bytes (text) or the same JSON object (json) with the numbers through
//! `itoa`/`ryu`, plain strings copied as they are, and the timestamp's date and time of day
//! kept per thread for the second it names. Every other event, and an access event inside
//! a span, goes to the general formatter unchanged.

use super::ACCESS_TARGET;
use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How lines are written: `log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Text,
    Json,
}

/// Formats access events itself and hands every other event to `general`.
pub struct AccessFirst<F> {
    general: F,
    style: Style,
}

impl<F> AccessFirst<F> {
    pub fn new(general: F, style: Style) -> Self {
        AccessFirst { general, style }
    }
}

impl<S, N, F> FormatEvent<S, N> for AccessFirst<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() != ACCESS_TARGET || ctx.event_scope().is_some() {
            return self.general.format_event(ctx, writer, event);
        }
        let level = event.metadata().level().as_str();
        match self.style {
            Style::Text => {
                write_stamp(&mut writer, SystemTime::now())?;
                // The general formatter pads the level to five characters.
                writer.write_str(if level.len() < 5 { "  " } else { " " })?;
                writer.write_str(level)?;
                writer.write_char(' ')?;
                writer.write_str(ACCESS_TARGET)?;
                writer.write_str(": ")?;
                let mut fields = TextFields {
                    out: &mut writer,
                    first: true,
                    result: Ok(()),
                };
                event.record(&mut fields);
                fields.result?;
            }
            Style::Json => {
                writer.write_str("{\"timestamp\":\"")?;
                write_stamp(&mut writer, SystemTime::now())?;
                writer.write_str("\",\"level\":\"")?;
                writer.write_str(level)?;
                writer.write_char('"')?;
                let mut fields = JsonFields {
                    out: &mut writer,
                    result: Ok(()),
                };
                event.record(&mut fields);
                fields.result?;
                writer.write_str(",\"target\":\"")?;
                writer.write_str(ACCESS_TARGET)?;
                writer.write_str("\"}")?;
            }
        }
        writer.write_char('\n')
    }
}

/// The text style's fields, as `tracing`'s default field formatter writes them: the
/// message bare, then `name=value` with strings quoted as `Debug` quotes them.
struct TextFields<'w, 'a> {
    out: &'w mut Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl TextFields<'_, '_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.out.write_char(' ')?;
        }
        if field.name() != "message" {
            let name = field.name();
            self.out
                .write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.out.write_char('=')?;
        }
        Ok(())
    }

    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| value(self.out));
        }
    }
}

impl Visit for TextFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else if is_plain(value) {
            self.field(field, |out| {
                out.write_char('"')?;
                out.write_str(value)?;
                out.write_char('"')
            });
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // `ryu` and `Debug` agree on the digits; they choose differently between plain
        // and exponent notation below 1e-4 and from 1e16 on.
        if value == 0.0 || (value.is_finite() && (1e-4..1e16).contains(&value.abs())) {
            self.field(field, |out| {
                out.write_str(ryu::Buffer::new().format_finite(value))
            });
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| write!(out, "{value:?}"));
    }
}

/// A string that `Debug` writes between quotes unchanged: printable ASCII, no `"` or `\`.
fn is_plain(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// The JSON style's fields, as `tracing-subscriber`'s JSON formatter writes them flattened:
/// numbers as numbers, the message and anything else as its `Debug` text in a string.
struct JsonFields<'w, 'a> {
    out: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            let name = field.name();
            self.result = (|| {
                self.out.write_str(",\"")?;
                self.out
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.out.write_str("\":")?;
                value(self.out)
            })();
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| {
            out.write_char('"')?;
            JsonEscaped(out).write_str(value)?;
            out.write_char('"')
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |out| match value.is_finite() {
            true => out.write_str(ryu::Buffer::new().format_finite(value)),
            // As serde_json writes a NaN or an infinity.
            false => out.write_str("null"),
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(JsonEscaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// Writes what it is given as the inside of a JSON string.
struct JsonEscaped<'w, 'a>(&'w mut Writer<'a>);

impl Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let short = match b {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                0..0x20 => None,
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            match short {
                Some(escape) => self.0.write_str(escape)?,
                None => write!(self.0, "\\u{b:04x}")?,
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

thread_local! {
    /// The second last written, and its text up to the fraction: `2026-11-27T21:03:14.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Writes `at` as `tracing`'s `SystemTime` timer does: RFC 3339, UTC, microseconds.
fn write_stamp(out: &mut impl Write, at: SystemTime) -> fmt::Result {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let micros = since.subsec_micros();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since.as_secs() {
            *second = since.as_secs();
            text.clear();
            let at = time::OffsetDateTime::from(at);
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )?;
        }
        out.write_str(text)?;
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(micros);
        out.write_str(&"00000"[..6 - digits.len()])?;
        out.write_str(digits)?;
        out.write_char('Z')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::tests::Written;
    use std::time::Duration;

    /// The lines `log` writes with the general formatter, then with [`AccessFirst`].
    fn both(style: Style, log: impl Fn()) -> (String, String) {
        let (general, ours) = (Written::default(), Written::default());
        let builder = || tracing_subscriber::fmt().with_ansi(false);
        match style {
            Style::Text => {
                let plain = builder().with_writer(general.clone()).finish();
                tracing::subscriber::with_default(plain, &log);
                let fast = builder()
                    .with_writer(ours.clone())
                    .event_format(AccessFirst::new(
                        tracing_subscriber::fmt::format().with_ansi(false),
                        style,
                    ))
                    .finish();
                tracing::subscriber::with_default(fast, &log);
            }
            Style::Json => {
                let json = || tracing_subscriber::fmt::format().json().flatten_event(true);
                let plain = builder()
                    .json()
                    .flatten_event(true)
                    .with_writer(general.clone())
                    .finish();
                tracing::subscriber::with_default(plain, &log);
                let fast = builder()
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .with_writer(ours.clone())
                    .event_format(AccessFirst::new(json(), style))
                    .finish();
                tracing::subscriber::with_default(fast, &log);
            }
        }
        (general.text(), ours.text())
    }

    fn access(route: &str, status: u16, duration_ms: f64, request_id: &str) {
        tracing::info!(
            target: "gateway::access",
            method = "GET",
            route,
            status,
            duration_ms,
            request_id,
            org = "org_logs",
            plugin = "chaos",
            "request"
        );
    }

    const ROUTES: &[&str] = &[
        "/chaos/ok",
        "/sessions/{session}/contacts/{id}",
        "quote \" and back\\slash",
        "tab\tnew\nline and \u{7} bell",
        "héllo ✓ \u{200b}",
        "",
    ];

    const DURATIONS: &[f64] = &[
        0.0,
        0.248193,
        0.24819300000000002,
        1.0,
        12.5,
        30000.0,
        1e-4,
        9.9e-5,
        1.5e-7,
        1e15,
        1e16,
        2.5e21,
        -3.0,
    ];

    /// Cuts the timestamp off each line, leaving the rest of it.
    fn without_stamps(lines: &str, style: Style) -> Vec<String> {
        lines
            .lines()
            .map(|line| match style {
                Style::Text => line.split_once(' ').expect("a timestamp").1.to_owned(),
                Style::Json => {
                    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
                    let stamp = value["timestamp"].take();
                    assert!(stamp.as_str().unwrap().ends_with('Z'), "{line}");
                    value.to_string()
                }
            })
            .collect()
    }

    #[test]
    fn access_lines_read_as_the_general_formatter_writes_them() {
        for style in [Style::Text, Style::Json] {
            let (general, ours) = both(style, || {
                for (i, route) in ROUTES.iter().enumerate() {
                    for duration in DURATIONS {
                        access(route, 200 + i as u16, *duration, route);
                    }
                }
                access("/x", 500, f64::NAN, "req_1");
                access("/x", 500, f64::INFINITY, "req_1");
                // Not an access line: the general formatter writes it in both.
                tracing::warn!(error = "boom", "something else");
            });
            let (general, ours) = (
                without_stamps(&general, style),
                without_stamps(&ours, style),
            );
            assert_eq!(general.len(), ROUTES.len() * DURATIONS.len() + 3);
            for (general, ours) in general.iter().zip(&ours) {
                assert_eq!(ours, general, "{style:?}");
            }
            assert_eq!(ours.len(), general.len());
        }
    }

    #[test]
    fn an_access_line_in_a_span_is_left_to_the_general_formatter() {
        let (general, ours) = both(Style::Text, || {
            let _span = tracing::info_span!("outer", n = 1).entered();
            access("/chaos/ok", 200, 0.5, "req_1");
        });
        assert!(ours.contains("outer{n=1}: gateway::access"), "{ours}");
        assert_eq!(
            without_stamps(&ours, Style::Text),
            without_stamps(&general, Style::Text)
        );
    }

    #[test]
    fn timestamps_are_rfc_3339_with_microseconds() {
        let stamp = |secs: u64, micros: u64| {
            let mut out = String::new();
            let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            write_stamp(&mut out, at).unwrap();
            out
        };
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(stamp(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(stamp(1_795_785_071, 123_456), "2026-11-27T13:11:11.123456Z");
        // The same second again (kept), then the next one.
        assert_eq!(stamp(1_795_785_071, 999_999), "2026-11-27T13:11:11.999999Z");
        assert_eq!(stamp(1_795_785_072, 10), "2026-11-27T13:11:12.000010Z");
    }
}
