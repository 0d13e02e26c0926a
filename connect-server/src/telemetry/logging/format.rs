//! One event as one line of text or JSON, in the layout of
//! tracing-subscriber's `fmt` (so existing log parsers keep working), made
//! cheap enough for a line per call: no allocation, a cached date, and
//! strings written straight through when they need no escaping.
//!
//! Text: `2026-11-25T12:03:02.360799Z  INFO target: message key=value ...`
//! (strings quoted, `%`-fields as they display). JSON, one object per line:
//! `{"timestamp":..,"level":..,"message":..,<fields>..,"target":..}`.

use std::{
    cell::Cell,
    fmt::{self, Write as _},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{Event, Level, field::Field};

use super::LogFormat;

/// Appends `event` as one line (with its newline) to `out`.
pub(super) fn write_event(format: LogFormat, event: &Event<'_>, out: &mut Vec<u8>) {
    let metadata = event.metadata();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    match format {
        LogFormat::Text => {
            write_timestamp(now, out);
            out.push(b' ');
            out.extend_from_slice(padded_level(metadata.level()).as_bytes());
            out.push(b' ');
            out.extend_from_slice(metadata.target().as_bytes());
            out.push(b':');
            event.record(&mut TextFields { out });
        }
        LogFormat::Json => {
            out.extend_from_slice(b"{\"timestamp\":\"");
            write_timestamp(now, out);
            out.extend_from_slice(b"\",\"level\":\"");
            out.extend_from_slice(metadata.level().as_str().as_bytes());
            out.push(b'"');
            event.record(&mut JsonFields { out });
            out.extend_from_slice(b",\"target\":");
            json_string(metadata.target(), out);
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// The level right-aligned in five columns, as `fmt` prints it.
fn padded_level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => " WARN",
        Level::INFO => " INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// `2026-11-25T12:03:02.360799Z`: UTC, microseconds.
fn write_timestamp(since_epoch: std::time::Duration, out: &mut Vec<u8>) {
    thread_local! {
        /// The second last formatted and its `YYYY-MM-DDTHH:MM:SS`: most lines share it.
        static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    }
    let secs = since_epoch.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = civil_second(secs);
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    out.push(b'.');
    push_decimal(u64::from(since_epoch.subsec_micros()), 6, out);
    out.push(b'Z');
}

/// `value` as `{:?}` prints it. Durations in whole microseconds (`0.142`) take a
/// short path: the decimal with at most three places is already the shortest
/// text that reads back as the same `f64`.
fn write_f64(value: f64, out: &mut Vec<u8>) {
    let thousandths = (value * 1000.0).round();
    // Not -0.0, which `{:?}` prints with its sign.
    if (0.0..1e12).contains(&thousandths) && thousandths / 1000.0 == value && value.is_sign_positive() {
        let thousandths = thousandths as u64;
        push_decimal(thousandths / 1000, 1, out);
        out.push(b'.');
        // Three places, trailing zeros dropped, but at least one digit: `2.0`, `0.25`, `0.142`.
        let mut fraction = thousandths % 1000;
        let mut places = 3;
        while places > 1 && fraction.is_multiple_of(10) {
            fraction /= 10;
            places -= 1;
        }
        push_decimal(fraction, places, out);
    } else {
        let _ = write!(Out(out), "{value:?}");
    }
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_decimal(n: u64, width: usize, out: &mut Vec<u8>) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n).as_bytes();
    out.resize(out.len() + width.saturating_sub(digits.len()), b'0');
    out.extend_from_slice(digits);
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC).
fn civil_second(secs: u64) -> [u8; 19] {
    let at = UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let mut text = [0u8; 19];
    // `2026-11-25T12:03:02Z`: the date and time are its first 19 bytes.
    let formatted = humantime::format_rfc3339_seconds(at).to_string();
    text.copy_from_slice(&formatted.as_bytes()[..19]);
    text
}

/// `fmt::Write` into a byte buffer.
struct Out<'a>(&'a mut Vec<u8>);

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Text fields: ` message key=value key="string"`.
struct TextFields<'a> {
    out: &'a mut Vec<u8>,
}

impl tracing::field::Visit for TextFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        write_f64(value, self.out);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        quoted(value, self.out);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        let _ = write!(Out(self.out), "{value:?}");
    }
}

impl TextFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(b' ');
        if field.name() != "message" {
            self.out.extend_from_slice(field.name().as_bytes());
            self.out.push(b'=');
        }
    }
}

/// A string as `{:?}` prints it, without the formatting machinery when nothing needs escaping.
fn quoted(value: &str, out: &mut Vec<u8>) {
    if value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(Out(out), "{value:?}");
    }
}

/// JSON fields: `,"key":value`, strings escaped, numbers and booleans bare.
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
}

impl tracing::field::Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.key(field);
            write_f64(value, self.out);
        } else {
            // JSON has no NaN or infinity.
            self.record_debug(field, &value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(Out(self.out), "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(Out(self.out), "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_string(value, self.out);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.out.push(b'"');
        let _ = write!(JsonEscaped(self.out), "{value:?}");
        self.out.push(b'"');
    }
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(field.name().as_bytes());
        self.out.extend_from_slice(b"\":");
    }
}

/// `value` as a JSON string, quotes included.
fn json_string(value: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let _ = JsonEscaped(out).write_str(value);
    out.push(b'"');
}

/// `fmt::Write` into a byte buffer, escaping for the inside of a JSON string.
struct JsonEscaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let out = &mut *self.0;
        let mut plain_from = 0;
        for (at, byte) in s.bytes().enumerate() {
            let escape: &[u8] = match byte {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..0x20 | 0x7f => b"",
                _ => continue,
            };
            out.extend_from_slice(&s.as_bytes()[plain_from..at]);
            if escape.is_empty() {
                let _ = write!(Out(out), "\\u{byte:04x}");
            } else {
                out.extend_from_slice(escape);
            }
            plain_from = at + 1;
        }
        out.extend_from_slice(&s.as_bytes()[plain_from..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_seconds_match_known_dates() {
        assert_eq!(&civil_second(0), b"1970-01-01T00:00:00");
        assert_eq!(&civil_second(951_782_400), b"2000-02-29T00:00:00");
        assert_eq!(&civil_second(1_795_608_182), b"2026-11-25T12:03:02");
        assert_eq!(&civil_second(4_107_542_399), b"2100-02-28T23:59:59");
    }

    #[test]
    fn timestamps_carry_microseconds() {
        let mut out = Vec::new();
        write_timestamp(std::time::Duration::new(1_795_608_182, 360_799_123), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "2026-11-25T12:03:02.360799Z");
    }

    #[test]
    fn floats_print_as_debug_does() {
        let mut values = vec![
            0.0,
            0.001,
            0.01,
            0.1,
            0.142,
            1.5,
            2.0,
            10.25,
            999_999.999,
            1e-7,
            1.0 / 3.0,
            -0.5,
            -0.0,
            1e15,
        ];
        values.extend((0..100_000u32).map(|micros| f64::from(micros) / 1000.0));
        for value in values {
            let mut out = Vec::new();
            write_f64(value, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{value:?}"));
        }
    }

    #[test]
    fn text_strings_are_quoted_like_debug() {
        for value in ["/ConnectService/UnaryRPC", "tab\there", "quote\"", "back\\slash", "héllo", ""] {
            let mut out = Vec::new();
            quoted(value, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{value:?}"));
        }
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let mut out = Vec::new();
        json_string("a\"b\\c\nd\u{1}e\u{7f}é", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u0001e\u007fé""#);
    }
}
