//! What the service answers: `Hello, {data}`, and the numbered stream items
//! with the original server's trailing space.

use connect_proto::ResponseMessage;

/// The greeting every call answers with.
pub fn hello(data: &str) -> ResponseMessage {
    // Sized once: `format!` would grow the string as it goes, a realloc per call.
    let mut text = String::with_capacity(GREETING.len() + data.len());
    text.push_str(GREETING);
    text.push_str(data);
    ResponseMessage { response_data: text }
}

/// What every response starts with.
pub(crate) const GREETING: &str = "Hello, ";

/// The i-th (from 1) `ServerStreamRPC` response, trailing space included as in the original.
pub(crate) fn stream_item(data: &str, i: u32) -> ResponseMessage {
    // ": server(" + ten digits at most + ") ": sized once, as in `hello`.
    let mut text = String::with_capacity(GREETING.len() + data.len() + 22);
    text.push_str(GREETING);
    text.push_str(data);
    text.push_str(": server(");
    text.push_str(itoa::Buffer::new().format(i));
    text.push_str(") ");
    ResponseMessage { response_data: text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_match_the_original_server() {
        assert_eq!(hello("People").response_data, "Hello, People");
        assert_eq!(hello("").response_data, "Hello, ");
        assert_eq!(stream_item("People", 1).response_data, "Hello, People: server(1) ");
        assert_eq!(stream_item("", u32::MAX).response_data, "Hello, : server(4294967295) ");
        for i in [0, 9, 10, 99, 100, 1_000_000, 1_000_001] {
            assert_eq!(stream_item("x", i).response_data, format!("Hello, x: server({i}) "));
        }
    }
}
