//! TLS and mTLS with certificates generated at run time.

use clap::Parser;
use connect_client::{Cli, ClientError};
use connect_proto::ConnectServiceClient;
use integration_tests::{
    PROMPTLY, TestServer, certs::TestCerts, certs::path, request, wire::frames::PREFACE,
};
use std::sync::Arc;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{AlertDescription, pki_types::ServerName},
};
use tonic::{Code, transport::Channel};

async fn hello_over(channel: Channel) -> String {
    let mut client = ConnectServiceClient::new(channel);
    client.unary_rpc(request("TLS")).await.expect("unary over TLS").into_inner().response_data
}

#[tokio::test]
async fn tls_call_succeeds() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, false, &[]).await;
    let channel = server.tls_channel(&certs, false).await.expect("TLS connect");
    assert_eq!(hello_over(channel).await, "Hello, TLS");
}

/// tonic reports a connection the server dropped as `UNKNOWN: transport error`,
/// `UNAVAILABLE` or `CANCELLED`, depending on when it notices; the exact refusal is
/// asserted on the wire separately.
fn assert_transport_failure(status: &tonic::Status) {
    assert!(matches!(status.code(), Code::Unknown | Code::Unavailable | Code::Cancelled), "{status:?}");
}

/// The TLS alert a client without a certificate gets from an mTLS server.
async fn alert_for_anonymous_client(
    certs: &TestCerts,
    addr: std::net::SocketAddr,
) -> Option<AlertDescription> {
    let config = certs.rustls_client(None);
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let server_name = ServerName::try_from("localhost").expect("name");
    let attempt = async {
        // With TLS 1.3 the client's side completes first; the server's verdict comes on the first read.
        let mut tls = TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await?;
        let mut buf = [0u8; 1];
        tls.read(&mut buf).await
    };
    let error = tokio::time::timeout(PROMPTLY, attempt).await.expect("refused in time").err()?;
    match error.get_ref()?.downcast_ref::<tokio_rustls::rustls::Error>()? {
        tokio_rustls::rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

#[tokio::test]
async fn plaintext_client_is_refused_by_tls_server() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, false, &[]).await;
    if let Ok(channel) = Channel::from_shared(server.url()).unwrap().connect().await {
        let status = ConnectServiceClient::new(channel).unary_rpc(request("plain")).await.unwrap_err();
        // A client that reads the server's TLS alert before the connection closes takes the
        // record for an HTTP/2 frame, and tonic reports that as an h2 protocol error.
        let read_the_alert = status.code() == Code::Internal
            && status.message() == "h2 protocol error: http2 error"
            && std::error::Error::source(&status).is_some();
        if !read_the_alert {
            assert_transport_failure(&status);
        }
    }
    assert_eq!(server.stats.snapshot().unary, 0, "no call got through");

    // On the wire: the server answers an HTTP/2 preface with a TLS alert record (type 21), never HTTP/2.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(PREFACE).await.unwrap();
    let mut first = [0u8; 1];
    let read = tokio::time::timeout(PROMPTLY, raw.read(&mut first)).await.expect("answered in time");
    assert!(matches!(read, Ok(1)), "{read:?}");
    assert_eq!(first[0], 21, "a TLS alert");
}

#[tokio::test]
async fn mtls_call_with_client_certificate_succeeds() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, true, &[]).await;
    let channel = server.tls_channel(&certs, true).await.expect("mTLS connect");
    assert_eq!(hello_over(channel).await, "Hello, TLS");
}

#[tokio::test]
async fn mtls_refuses_client_without_certificate() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, true, &[]).await;
    // TLS 1.3: the client may finish its side of the handshake before the server rejects it.
    if let Ok(channel) = server.tls_channel(&certs, false).await {
        let status = ConnectServiceClient::new(channel).unary_rpc(request("anon")).await.unwrap_err();
        assert_transport_failure(&status);
    }
    assert_eq!(server.stats.snapshot().unary, 0, "no call got through");
    assert_eq!(
        alert_for_anonymous_client(&certs, server.addr).await,
        Some(AlertDescription::CertificateRequired)
    );
}

#[tokio::test]
async fn silent_client_is_dropped_after_the_handshake_timeout() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, false, &["--tls-handshake-timeout", "200ms"]).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(PROMPTLY, silent.read(&mut buf)).await.expect("closed in time");
    // Closed (EOF or reset), without a byte sent.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn client_command_speaks_tls_and_mtls() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, true, &[]).await;
    let (ca, cert, key) = (path(&certs.ca), path(&certs.client_cert), path(&certs.client_key));
    let url = server.https_url();
    let with_cert =
        ["connect-client", "--addr", &url, "--ca", &ca, "--cert", &cert, "--key", &key, "unary", "x"];
    connect_client::run(Cli::parse_from(with_cert)).await.expect("mTLS call");
    assert_eq!(server.stats.snapshot().unary, 1);

    let http = server.url();
    let tls_flags_on_http = ["connect-client", "--addr", &http, "--ca", &ca, "unary"];
    let error = connect_client::run(Cli::parse_from(tls_flags_on_http)).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Other(message) if message == "--ca, --cert and --key need an https:// address")
    );
}
