//! The `grpc-timeout` header: one to eight ASCII digits and a unit (`H`
//! hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n`
//! nanoseconds). One parser for the server, the interop service and the
//! fuzzer; one encoder for every deadline sent, whether it came as a
//! `Duration` or as Connect's and the playground's milliseconds.

use std::time::Duration;

use http::HeaderValue;

/// Longest value the spec allows: eight digits.
const MAX_DIGITS: usize = 8;

/// The largest count of a unit that fits in [`MAX_DIGITS`].
const MAX_COUNT: u128 = 99_999_999;

/// Each unit and its length in nanoseconds, finest first.
const UNITS: [(char, u128); 6] = [
    ('n', 1),
    ('u', 1_000),
    ('m', 1_000_000),
    ('S', 1_000_000_000),
    ('M', 60 * 1_000_000_000),
    ('H', 3600 * 1_000_000_000),
];

/// Parses a `grpc-timeout` value such as `100m` (milliseconds) or `5S` (seconds):
/// one to eight ASCII digits and a unit. Anything else is `None` (no deadline).
pub fn parse(value: &str) -> Option<Duration> {
    // Split as bytes: the value comes off the wire and may end in a multi-byte character.
    let (&unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most eight digits: even in hours, the product fits in a u64.
    let amount = digits.iter().fold(0u64, |amount, digit| amount * 10 + u64::from(digit - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The `grpc-timeout` value for `timeout`: the finest unit whose count fits
/// in eight digits, rounded up (as grpc-go's `encodeTimeout`), then written in
/// the coarsest unit that says the same duration exactly (`250m`, not
/// `250000u`). Zero is `0n`; past 99999999 hours, `99999999H`.
pub fn encode(timeout: Duration) -> HeaderValue {
    let nanos = timeout.as_nanos();
    if nanos == 0 {
        return HeaderValue::from_static("0n");
    }
    // Rounding up never sends a shorter deadline than the caller asked for.
    let (finest, count) = UNITS
        .iter()
        .enumerate()
        .find_map(|(index, (_, length))| {
            let count = nanos.div_ceil(*length);
            (count <= MAX_COUNT).then_some((index, count))
        })
        .unwrap_or((UNITS.len() - 1, MAX_COUNT));
    let sent = count * UNITS[finest].1;
    // Fewer digits, same duration: the finest unit always divides it, so one is found.
    let (unit, length) = UNITS[finest..]
        .iter()
        .rev()
        .find(|(_, length)| sent.is_multiple_of(*length))
        .expect("the finest unit divides what it counted");
    HeaderValue::from_str(&format!("{}{unit}", sent / length)).expect("digits and a unit are header text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(parse("99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
    }

    #[test]
    fn rejects_malformed_values() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("10x"), None);
        assert_eq!(parse("123456789m"), None);
        assert_eq!(parse("-1S"), None);
        assert_eq!(parse("+1S"), None);
        assert_eq!(parse("1 S"), None);
        // Ends inside a multi-byte character: no panic, no deadline.
        assert_eq!(parse("1é"), None);
        assert_eq!(parse("é"), None);
    }

    #[test]
    fn parses_zero_and_leading_zeros() {
        assert_eq!(parse("0n"), Some(Duration::ZERO));
        assert_eq!(parse("00000001S"), Some(Duration::from_secs(1)));
    }

    fn encoded(timeout: Duration) -> String {
        encode(timeout).to_str().expect("ASCII").to_owned()
    }

    #[test]
    fn encodes_whole_units_in_the_coarsest_exact_one() {
        assert_eq!(encoded(Duration::ZERO), "0n");
        assert_eq!(encoded(Duration::from_nanos(1)), "1n");
        assert_eq!(encoded(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(encoded(Duration::from_micros(7)), "7u");
        assert_eq!(encoded(Duration::from_millis(100)), "100m");
        assert_eq!(encoded(Duration::from_millis(250)), "250m");
        assert_eq!(encoded(Duration::from_millis(1500)), "1500m");
        assert_eq!(encoded(Duration::from_micros(1500)), "1500u");
        assert_eq!(encoded(Duration::from_secs(1)), "1S");
        assert_eq!(encoded(Duration::from_secs(90)), "90S");
        assert_eq!(encoded(Duration::from_secs(60)), "1M");
        assert_eq!(encoded(Duration::from_secs(3600)), "1H");
        assert_eq!(encoded(Duration::from_secs(5400)), "90M");
    }

    #[test]
    fn switches_unit_at_eight_digits() {
        // Eight digits of milliseconds stay milliseconds; nine do not fit.
        assert_eq!(encoded(Duration::from_millis(99_999_999)), "99999999m");
        assert_eq!(encoded(Duration::from_millis(100_000_000)), "100000S");
        assert_eq!(encoded(Duration::from_micros(99_999_999)), "99999999u");
        assert_eq!(encoded(Duration::from_micros(100_000_001)), "100001m");
        assert_eq!(encoded(Duration::from_secs(99_999_999)), "99999999S");
        assert_eq!(encoded(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(encoded(Duration::from_secs(99_999_999 * 3600)), "99999999H");
    }

    #[test]
    fn rounds_up_what_does_not_fit() {
        assert_eq!(encoded(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(encoded(Duration::new(1, 1)), "1000001u");
        // Ten digits of milliseconds (Connect's longest) become seconds, rounded up.
        assert_eq!(encoded(Duration::from_millis(9_999_999_999)), "10000000S");
        assert_eq!(encoded(Duration::from_millis(123_456_789)), "123457S");
    }

    #[test]
    fn saturates_past_eight_digits_of_hours() {
        assert_eq!(encoded(Duration::from_secs(100_000_000 * 3600)), "99999999H");
        assert_eq!(encoded(Duration::MAX), "99999999H");
    }

    #[test]
    fn encodes_what_it_parses() {
        for value in ["0n", "1n", "7u", "250m", "1500m", "1S", "90S", "1M", "90M", "1H", "99999999H"] {
            let parsed = parse(value).expect(value);
            assert_eq!(encoded(parsed), value);
        }
    }

    #[test]
    fn never_sends_a_shorter_deadline() {
        for timeout in [
            Duration::from_nanos(100_000_001),
            Duration::new(1, 1),
            Duration::from_millis(123_456_789),
            Duration::new(100_000_000, 999_999_999),
        ] {
            let sent = parse(encode(timeout).to_str().unwrap()).unwrap();
            assert!(sent >= timeout, "{timeout:?} sent as {sent:?}");
        }
    }
}
