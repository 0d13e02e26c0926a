//! Per-core workers: several listeners, each on its own thread and runtime,
//! serving one `ConnectServer` whose counters, health and shutdown are shared.

use std::net::TcpListener;

use clap::Parser;
use connect_proto::{ConnectServiceClient, RequestMessage};
use connect_server::{Config, ConnectServer};
use integration_tests::{PROMPTLY, request};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Two listeners on their own ports, so each test call reaches a known worker.
fn two_listeners() -> (Vec<TcpListener>, Vec<String>) {
    let listeners: Vec<_> = (0..2).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let urls = listeners.iter().map(|l| format!("http://{}", l.local_addr().expect("addr"))).collect();
    for listener in &listeners {
        listener.set_nonblocking(true).expect("non-blocking");
    }
    (listeners, urls)
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned()).expect("url").connect().await.expect("connect")
}

#[tokio::test]
async fn workers_share_counters_health_and_one_graceful_shutdown() {
    let config = Config::parse_from(["connect-server", "--stats-interval", "0", "--shutdown-grace", "5s"]);
    let server = ConnectServer::new(config).expect("valid flags");
    let stats = server.stats();
    let (listeners, urls) = two_listeners();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listeners, async {
        let _ = stopped.await;
    }));

    let (first, second) = (channel(&urls[0]).await, channel(&urls[1]).await);
    for channel in [&first, &second] {
        let reply = ConnectServiceClient::new(channel.clone()).unary_rpc(request("People")).await.unwrap();
        assert_eq!(reply.into_inner().response_data, "Hello, People");
    }
    assert_eq!(stats.snapshot().unary, 2);

    // A slow stream on the second worker is in flight when shutdown starts.
    let slow = RequestMessage { request_data: "slow".into(), count: 3, interval_ms: 150 };
    let mut stream =
        ConnectServiceClient::new(second.clone()).server_stream_rpc(slow).await.unwrap().into_inner();
    let mut health = HealthClient::new(first.clone());
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    let mut next_status = async || {
        let next = tokio::time::timeout(PROMPTLY, watch.message()).await.expect("a health status in time");
        next.expect("watch ok").expect("watch open").status()
    };
    assert_eq!(next_status().await, ServingStatus::Serving);
    stop.send(()).expect("server still running");

    // The shutdown reaches the first worker's health, while the second drains its stream.
    assert_eq!(next_status().await, ServingStatus::NotServing);
    let mut received = Vec::new();
    while let Some(message) = stream.message().await.expect("stream drains OK") {
        received.push(message.response_data);
    }
    assert_eq!(received, ["Hello, slow: server(1) ", "Hello, slow: server(2) ", "Hello, slow: server(3) "]);

    let result = tokio::time::timeout(PROMPTLY, serving).await.expect("workers stopped in time");
    result.expect("serve task").expect("serve ok");
    for url in &urls {
        let refused = Channel::from_shared(url.clone()).expect("url").connect().await;
        assert!(refused.is_err(), "{url} still accepts connections");
    }
}
