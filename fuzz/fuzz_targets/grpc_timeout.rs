//! Fuzzes the `grpc-timeout` parser with arbitrary header values: never a
//! panic, a value is accepted exactly when it is one to eight ASCII digits
//! and a unit (`H`, `M`, `S`, `m`, `u`, `n`), and what it accepts encodes
//! back to the same duration.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run grpc_timeout`
#![no_main]

use connect_proto::timeout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser as text only when they are UTF-8.
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = timeout::parse(value);
    let well_formed = split_last_char(value).is_some_and(|(digits, unit)| {
        (1..=8).contains(&digits.len())
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && matches!(unit, 'H' | 'M' | 'S' | 'm' | 'u' | 'n')
    });
    assert_eq!(parsed.is_some(), well_formed, "{value:?}");
    if let Some(duration) = parsed {
        let encoded = timeout::encode(duration);
        let again = encoded.to_str().ok().and_then(timeout::parse);
        assert_eq!(again, Some(duration), "{value:?} encoded as {encoded:?}");
    }
});

/// Everything before the last character of `text`, and that character.
fn split_last_char(text: &str) -> Option<(&str, char)> {
    let last = text.chars().next_back()?;
    Some((&text[..text.len() - last.len_utf8()], last))
}
