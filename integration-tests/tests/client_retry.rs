//! `--retries`: idempotent calls that fail with `UNAVAILABLE` are retried
//! with backoff; a dead replica is taken out of rotation and no call is lost.

use std::time::Duration;

use clap::Parser;
use connect_client::call;
use connect_client::{
    Cli, ClientError, Output,
    call::retry::{RetryPolicy, RetrySettings},
    channel::{self, Options},
    commands::repeat::{self, Outcome, RepeatSettings},
};
use integration_tests::TestServer;
use tonic::Code;

fn retry_args(retries: u32) -> RetrySettings {
    RetrySettings { retries, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) }
}

fn options() -> Options {
    Options {
        tls: None,
        connect_timeout: Duration::from_secs(1),
        resolve_interval: Duration::from_secs(60),
        wait_until: None,
        failed_attempts: tokio::sync::watch::Sender::new(0),
        keepalive: None,
    }
}

#[tokio::test]
async fn a_replica_that_dies_loses_no_call() {
    let live = TestServer::start().await;
    let doomed = TestServer::start().await;
    let connected = channel::connect_addrs(&[live.url(), doomed.url()], &options()).await.expect("connect");
    let client = call::client(connected.channel, &call::CallOptions::default()).unwrap();
    let policy = RetryPolicy::new(&retry_args(5), connected.reprobe);
    let args = RepeatSettings { repeat: 20, tally: None };
    let before = repeat::unary(&client, None, &policy, "People", &args, &Output::stdio())
        .await
        .expect("calls before the death");
    assert_eq!(before.ok(), 20);
    let served_by_doomed = doomed.stats.snapshot().unary;
    assert!(served_by_doomed > 0, "both replicas were in rotation");

    doomed.stop().await.expect("doomed replica stops");
    let after =
        repeat::unary(&client, None, &policy, "People", &args, &Output::stdio()).await.expect("no call lost");

    assert_eq!(after.ok(), 20);
    assert_eq!(after.failed, 0);
    assert_eq!(live.stats.snapshot().unary, 40 - served_by_doomed, "the live replica served the rest");
    // The calls routed to the stopped replica failed with UNAVAILABLE and were
    // retried; the probe then took it out. The first call after the stop has
    // even odds of going to it, so over 20 calls a retry is all but certain (1 - 2^-20).
    assert!(after.retries > 0, "{after:?}");
}

#[tokio::test]
async fn unavailable_is_retried_exactly_retries_times() {
    let server = TestServer::start().await;
    let url = server.url();
    server.stop().await.expect("stop");
    let connected = channel::connect_addrs(std::slice::from_ref(&url), &options()).await;
    // Nothing listens any more: without --wait-for-ready, connecting fails at once.
    assert!(matches!(connected, Err(ClientError::Connect { .. })), "{connected:?}");

    // A lazy channel lets the call itself meet the refusal, as after a restart.
    let channel = tonic::transport::Endpoint::from_shared(url).expect("url").connect_lazy();
    let client = call::client(channel, &call::CallOptions::default()).unwrap();
    let policy = RetryPolicy::new(&retry_args(3), None);
    let result = repeat::unary(
        &client,
        None,
        &policy,
        "People",
        &RepeatSettings { repeat: 1, tally: None },
        &Output::stdio(),
    )
    .await;

    match result {
        Err(ClientError::Rpc(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
    assert_eq!(policy.retried(), 3, "three retries, then the last UNAVAILABLE is returned");
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let server = TestServer::start_with_args(&["--max-stream-count", "5"]).await;
    let cli = Cli::parse_from([
        "connect-client",
        "--addr",
        &server.url(),
        "--retries",
        "3",
        "server-stream",
        "--count",
        "6",
    ]);

    let error = connect_client::run(cli).await.expect_err("count over the limit");

    match error {
        ClientError::Rpc(status) => assert_eq!(status.code(), Code::InvalidArgument, "{status:?}"),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    assert_eq!(server.stats.snapshot().server_stream, 1, "called once, not retried");
}

#[tokio::test]
async fn outcome_counts_successes_per_header_value() {
    let server = TestServer::start().await;
    let client = call::client(server.channel().await, &call::CallOptions::default()).unwrap();
    let policy = RetryPolicy::new(&retry_args(0), None);
    let args = RepeatSettings { repeat: 7, tally: Some("x-no-such-header".to_owned()) };

    let outcome =
        repeat::unary(&client, None, &policy, "People", &args, &Output::stdio()).await.expect("7 calls");

    let expected = Outcome { tally: [(repeat::NO_HEADER.to_owned(), 7)].into(), failed: 0, retries: 0 };
    assert_eq!(outcome, expected);
}
