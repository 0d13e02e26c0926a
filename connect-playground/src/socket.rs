//! The WebSocket of one call: the same-origin check at the upgrade, the
//! `start` command, then the page's commands and the call's events until
//! the call ends (the messages are `protocol`'s).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{
        ConnectInfo, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt as _;

use super::{
    Playground,
    call::{self, Call, Events},
    protocol::{Command, Event, Start},
};

/// How long a socket may stay open without starting its call.
const START_WITHIN: Duration = Duration::from_secs(10);
/// How long a page may take to answer the server's close.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// `GET /ws`: upgrades same-origin requests; 403 for the rest.
pub(super) async fn upgrade(
    State(playground): State<Arc<Playground>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(reason) = check_origin(&headers, playground.settings.endpoint.ip().is_loopback()) {
        return (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response();
    }
    // JSON may be larger than its protobuf (base64 bytes, names), but not without bound.
    let limit = playground.settings.max_message_bytes.saturating_mul(2).saturating_add(64 * 1024);
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(playground, socket, peer))
}

/// Whether a browser page may open the socket: its `Origin` (when it sends
/// one; every browser does) names the same host and port as `Host`, and on a
/// loopback endpoint `Host` is a loopback name, so a page of another site
/// whose name resolves to 127.0.0.1 (DNS rebinding) is refused too.
fn check_origin(headers: &HeaderMap, loopback: bool) -> Result<(), &'static str> {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).ok_or("no Host header")?;
    if loopback && !is_loopback_host(host) {
        return Err("the playground listens on loopback: open it as 127.0.0.1, [::1] or localhost");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let authority = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")));
    match authority {
        Some(authority) if authority.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err("a WebSocket from another origin: the playground only answers its own page"),
    }
}

/// Whether `host` (a `Host` header: a name or address, and maybe a port) is loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// Why a message that is not text is refused.
const NOT_TEXT: &str = "commands are JSON text messages";

/// The socket of one call, from its `start` to its end.
async fn serve(playground: Arc<Playground>, mut socket: WebSocket, peer: SocketAddr) {
    let start = match first_command(&mut socket).await {
        Some(Ok(start)) => start,
        Some(Err(error)) => return fatal(socket, &error).await,
        // Gone before it began: nothing to do.
        None => return,
    };
    // Held until the call is over.
    let Ok(permit) = Arc::clone(&playground.calls).try_acquire_owned() else {
        let message = format!(
            "too many playground calls: at most {} run at once ({}); try again when one has ended",
            playground.settings.max_calls, playground.settings.max_calls_flag
        );
        return fatal(socket, &message).await;
    };
    let (call, request, events) = match call::start(&playground, start, peer) {
        Ok(started) => started,
        Err(error) => return fatal(socket, &error).await,
    };
    if send(&mut socket, &request).await.is_err() {
        return;
    }
    if let End::Over = relay(&mut socket, call, events).await {
        // Let go before the close, so the page may start another call at once.
        drop(permit);
        close(socket).await;
    }
}

/// The page's `start` command; an error when it sends something else first
/// or nothing in time, `None` when it goes away first.
async fn first_command(socket: &mut WebSocket) -> Option<Result<Start, String>> {
    match tokio::time::timeout(START_WITHIN, socket.recv()).await {
        Err(_) => Some(Err(format!("no start command within {} s", START_WITHIN.as_secs()))),
        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => None,
        Ok(Some(Ok(Message::Text(text)))) => Some(match Command::parse(&text) {
            Ok(Command::Start(start)) => Ok(start),
            Ok(_) => Err("the first command must be start".to_owned()),
            Err(error) => Err(error),
        }),
        Ok(Some(Ok(_))) => Some(Err(NOT_TEXT.to_owned())),
    }
}

/// How a call's socket ends.
enum End {
    /// The call is over: the socket closes.
    Over,
    /// The page went away (or cannot be written to); dropping the call cancels it.
    Gone,
}

/// Runs the call: the page's commands go to `call`, and `events` (the
/// response) and the answers to the commands go to the page.
async fn relay(socket: &mut WebSocket, mut call: Call, mut events: Events) -> End {
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let command = match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Gone,
                    Some(Ok(Message::Text(text))) => Command::parse(&text),
                    Some(Ok(Message::Binary(_))) => Err(NOT_TEXT.to_owned()),
                    // Pings are answered by the socket itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                };
                let answer = match command {
                    Ok(Command::Cancel) => {
                        drop(events);
                        return match send(socket, &call.cancel()).await {
                            Ok(()) => End::Over,
                            Err(_) => End::Gone,
                        };
                    }
                    Ok(Command::Message { json }) => call.send(&json),
                    Ok(Command::HalfClose) => call.half_close(),
                    Ok(Command::Start(_)) => Err("the call has already started".to_owned()),
                    Err(error) => Err(error),
                };
                let answer = answer.unwrap_or_else(|error| vec![Event::error(call.elapsed_ms(), error, false)]);
                for event in answer {
                    if send(socket, &event).await.is_err() {
                        return End::Gone;
                    }
                }
            }
            event = events.next() => {
                let Some(event) = event else { return End::Over };
                if send(socket, &event).await.is_err() {
                    return End::Gone;
                }
                if event.ends_call() {
                    return End::Over;
                }
            }
        }
    }
}

/// Sends `event` as a text message.
async fn send(socket: &mut WebSocket, event: &Event) -> Result<(), axum::Error> {
    socket.send(Message::Text(event.to_json().into())).await
}

/// Sends a fatal `error` event and closes the socket.
async fn fatal(mut socket: WebSocket, message: &str) {
    if send(&mut socket, &Event::error(0.0, message, true)).await.is_ok() {
        close(socket).await;
    }
}

/// Closes the socket normally (the page may have gone already), then reads
/// what the page still sends until it closes too, so that no reset loses the
/// last events: a page may have sent a command while the call was ending.
async fn close(mut socket: WebSocket) {
    let frame = CloseFrame { code: close_code::NORMAL, reason: "".into() };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let closed = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    // A page that never answers the close is let go.
    let _ = tokio::time::timeout(CLOSE_WITHIN, closed).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &'static str, origin: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_the_same_origin_may_open_a_socket() {
        assert!(check_origin(&headers("127.0.0.1:9464", Some("http://127.0.0.1:9464")), true).is_ok());
        assert!(check_origin(&headers("localhost:9464", Some("http://LOCALHOST:9464")), true).is_ok());
        assert!(check_origin(&headers("[::1]:9464", Some("http://[::1]:9464")), true).is_ok());
        assert!(check_origin(&headers("127.0.0.1:9464", None), true).is_ok());
        assert!(check_origin(&headers("127.0.0.1:9464", Some("http://evil.test")), true).is_err());
        assert!(check_origin(&headers("127.0.0.1:9464", Some("http://127.0.0.1:9465")), true).is_err());
        assert!(check_origin(&headers("127.0.0.1:9464", Some("null")), true).is_err());
        // DNS rebinding: a foreign name pointing at loopback.
        assert!(check_origin(&headers("evil.test:9464", Some("http://evil.test:9464")), true).is_err());
        assert!(
            check_origin(&headers("admin.internal:9464", Some("http://admin.internal:9464")), false).is_ok()
        );
    }
}
