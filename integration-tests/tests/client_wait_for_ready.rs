//! `--wait-for-ready`: the client keeps trying a server that is still
//! starting (its port bound but not yet listening, so connections are
//! refused), instead of failing at once.

use std::time::Duration;

use clap::Parser;
use connect_client::call;
use connect_client::{
    ClientError, Output,
    call::retry::{RetryPolicy, RetrySettings},
    channel::{self, Options},
    commands::repeat::{self, RepeatSettings},
};
use connect_server::Config;
use integration_tests::{PROMPTLY, TestServer};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
    time::Instant,
};

/// A port that refuses connections until [`listen`] is called on the socket.
fn starting_server() -> (TcpSocket, String) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let url = format!("http://{}", socket.local_addr().expect("local addr"));
    (socket, url)
}

/// The server has finished starting: it listens and serves.
async fn listen(socket: TcpSocket) -> TestServer {
    let listener: TcpListener = socket.listen(128).expect("listen");
    let config = Config::parse_from(["connect-server", "--stats-interval", "0", "--metrics-addr", "off"]);
    TestServer::start_on(listener, config).await
}

fn options(wait: bool) -> Options {
    Options {
        tls: None,
        connect_timeout: Duration::from_secs(1),
        resolve_interval: Duration::from_secs(60),
        wait_until: wait.then(|| Instant::now() + Duration::from_secs(10)),
        failed_attempts: watch::Sender::new(0),
        keepalive: None,
    }
}

#[tokio::test]
async fn connecting_waits_for_a_server_that_is_still_starting() {
    let (socket, url) = starting_server();
    let options = options(true);
    let mut attempts = options.failed_attempts.subscribe();
    let connecting = tokio::spawn(async move { channel::connect_addrs(&[url], &options).await });

    // Twice refused: the client is waiting, not failing.
    tokio::time::timeout(PROMPTLY, attempts.wait_for(|n| *n >= 2))
        .await
        .expect("two attempts")
        .expect("watch");
    let server = listen(socket).await;

    let connected =
        tokio::time::timeout(PROMPTLY, connecting).await.expect("connected promptly").expect("task");
    let mut client = connect_proto::ConnectServiceClient::new(
        connected.expect("connected once the server listens").channel,
    );
    let response = client.unary_rpc(integration_tests::request("People")).await.expect("unary");
    assert_eq!(response.into_inner().response_data, "Hello, People");
    assert_eq!(server.stats.snapshot().unary, 1);
}

#[tokio::test]
async fn without_it_connecting_fails_at_once() {
    let (_socket, url) = starting_server();
    let options = options(false);

    let result = channel::connect_addrs(&[url], &options).await;

    assert!(matches!(result, Err(ClientError::Connect { .. })), "{result:?}");
    assert_eq!(*options.failed_attempts.borrow(), 1);
}

#[tokio::test]
async fn a_call_waits_for_a_server_that_is_still_starting() {
    let (socket, url) = starting_server();
    // A lazy channel, as after the server went away: the call itself meets the refusals.
    let channel = tonic::transport::Endpoint::from_shared(url).expect("url").connect_lazy();
    let client = call::client(channel, &call::CallOptions::default()).unwrap();
    let args = RetrySettings {
        retries: 0,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    };
    let policy = RetryPolicy::new(&args, None).wait_for_ready(Some(Duration::from_secs(10)));
    let calling = {
        let policy = policy.clone();
        tokio::spawn(async move {
            repeat::unary(
                &client,
                None,
                &policy,
                "People",
                &RepeatSettings { repeat: 1, tally: None },
                &Output::stdio(),
            )
            .await
        })
    };

    // No --retries, yet the call is retried while it waits.
    let deadline = Instant::now() + PROMPTLY;
    while policy.retried() < 2 {
        assert!(Instant::now() < deadline, "the call did not retry");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let server = listen(socket).await;

    let outcome = tokio::time::timeout(PROMPTLY, calling).await.expect("done promptly").expect("task");
    assert_eq!(outcome.expect("the call succeeds once the server listens").ok(), 1);
    assert_eq!(server.stats.snapshot().unary, 1);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_waited_for_too() {
    // `.invalid` never resolves (RFC 2606): the client keeps trying until its time is up.
    let mut options = options(true);
    options.wait_until = Some(Instant::now() + Duration::from_millis(300));
    let attempts = options.failed_attempts.subscribe();
    let result = channel::connect_addrs(&["http://replicas.invalid:50051".to_owned()], &options).await;
    let Err(ClientError::Connect { reason, .. }) = result else { panic!("connected to nothing: {result:?}") };
    assert!(reason.starts_with("no replica reachable"), "{reason}");
    assert!(*attempts.borrow() >= 2, "tried {} times", *attempts.borrow());
}
