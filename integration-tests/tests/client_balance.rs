//! Client-side balancing: `--addr` given several times spreads the calls of
//! one client over every replica.

use clap::Parser;
use connect_client::Cli;
use integration_tests::TestServer;

#[tokio::test]
async fn calls_are_spread_over_every_addr() {
    let servers = [TestServer::start().await, TestServer::start().await, TestServer::start().await];
    let mut argv = vec!["connect-client".to_owned()];
    for server in &servers {
        argv.extend(["--addr".to_owned(), server.url()]);
    }
    argv.extend(["--repeat", "90", "unary"].map(String::from));

    connect_client::run(Cli::parse_from(argv)).await.expect("all 90 calls succeed");

    let counts: Vec<u64> = servers.iter().map(|server| server.stats.snapshot().unary).collect();
    assert_eq!(counts.iter().sum::<u64>(), 90, "every call served exactly once: {counts:?}");
    // Random two-choice picks: a replica with no call out of 90 has odds of 3 * (2/3)^90, about 5e-16.
    assert!(counts.iter().all(|&count| count > 0), "every replica got calls: {counts:?}");
}

#[tokio::test]
async fn comma_separated_addrs_balance_too() {
    let servers = [TestServer::start().await, TestServer::start().await];
    let addrs = format!("{},{}", servers[0].addr, servers[1].addr);
    let cli = Cli::parse_from(["connect-client", "--addr", &addrs, "--repeat", "60", "unary"]);

    connect_client::run(cli).await.expect("all 60 calls succeed");

    let counts: Vec<u64> = servers.iter().map(|server| server.stats.snapshot().unary).collect();
    assert_eq!(counts.iter().sum::<u64>(), 60, "{counts:?}");
    assert!(counts.iter().all(|&count| count > 0), "{counts:?}");
}
