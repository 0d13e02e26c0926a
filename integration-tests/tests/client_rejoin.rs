//! Balancing: a replica that went away and came back on the same address is
//! put back into rotation by the periodic re-probe (`--resolve-interval`).

use std::time::Duration;

use clap::Parser;
use connect_client::call;
use connect_client::{
    Output,
    call::retry::{RetryPolicy, RetrySettings},
    channel::{self, Options},
    commands::repeat::{self, RepeatSettings},
};
use connect_server::Config;
use integration_tests::{PROMPTLY, TestServer};
use tokio::{net::TcpListener, sync::watch, time::Instant};

#[tokio::test]
async fn a_replica_that_comes_back_is_used_again() {
    let steady = TestServer::start().await;
    let leaving = TestServer::start().await;
    let addr = leaving.addr;
    let options = Options {
        tls: None,
        connect_timeout: Duration::from_secs(1),
        resolve_interval: Duration::from_millis(50),
        wait_until: None,
        failed_attempts: watch::Sender::new(0),
        keepalive: None,
    };
    let connected = channel::connect_addrs(&[steady.url(), leaving.url()], &options).await.expect("connect");
    let client = call::client(connected.channel, &call::CallOptions::default()).unwrap();
    let retry = RetrySettings {
        retries: 5,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    };
    let policy = RetryPolicy::new(&retry, connected.reprobe);
    let batch = RepeatSettings { repeat: 10, tally: None };

    leaving.stop().await.expect("stop");
    let while_gone = repeat::unary(&client, None, &policy, "People", &batch, &Output::stdio())
        .await
        .expect("no call lost");
    assert_eq!(while_gone.ok(), 10);

    let listener = TcpListener::bind(addr).await.expect("rebind the same address");
    let config = Config::parse_from(["connect-server", "--stats-interval", "0", "--metrics-addr", "off"]);
    let back = TestServer::start_on(listener, config).await;
    let deadline = Instant::now() + PROMPTLY;
    let mut calls = 10;
    while back.stats.snapshot().unary == 0 {
        assert!(Instant::now() < deadline, "the replica was not put back within PROMPTLY");
        let outcome = repeat::unary(&client, None, &policy, "People", &batch, &Output::stdio())
            .await
            .expect("calls succeed");
        assert_eq!(outcome.ok(), 10);
        calls += 10;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let served = steady.stats.snapshot().unary + back.stats.snapshot().unary;
    assert_eq!(served, calls, "every call served once, by the steady replica or the one that came back");
}
