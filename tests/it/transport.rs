//! Transport: inbound TLS with HTTP/1.1 and HTTP/2 (ALPN), h2c, LDAPS and StartTLS to the
//! directory with a private CA, verification on by default, timeouts, Basic auth.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::gateway::{config_text, okta_user, q, TestGateway, TOKEN};
use common::pki::{pki, Pki};
use common::process::GatewayProcess;
use common::Slapd;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `[server.tls]` section serving `cert` / `key`, put in place of the commented example.
fn with_inbound_tls(text: String, cert: &std::path::Path, key: &std::path::Path) -> String {
    let tls = format!("[server.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n# Inbound TLS");
    text.replacen("# Inbound TLS", &tls, 1)
}

/// Sends one GET over `io` with HTTP/2 or HTTP/1.1 and returns (status, body).
async fn get_over<IO>(io: IO, h2: bool, url: &str) -> (u16, serde_json::Value)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let req =
        Request::get(url).header("authorization", format!("Bearer {TOKEN}")).body(Full::new(Bytes::new())).unwrap();
    let resp = if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn inbound_tls_speaks_http1_and_http2() {
    let pki = pki();
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| with_inbound_tls(t, &pki.cert, &pki.key)).await;
    let addr = gw.origin().trim_start_matches("http://").to_owned();
    let https = format!("https://{addr}/scim/v2/ServiceProviderConfig");
    for (alpn, h2) in [(b"h2".to_vec(), true), (b"http/1.1".to_vec(), false)] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(pki.client_config(&alpn))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .expect("TLS handshake with the gateway");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn.as_slice()));
        let (status, body) = get_over(stream, h2, &https).await;
        assert_eq!(status, 200);
        assert_eq!(body["meta"]["location"], https, "locations use https behind TLS");
    }
    // Plain HTTP on a TLS port is not served.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    gw.stop().await;
}

#[tokio::test]
async fn cleartext_http2_with_prior_knowledge() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let addr = gw.origin().trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (status, body) = get_over(tcp, true, &format!("http://{addr}/scim/v2/Users?count=1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["totalResults"], 0);
    gw.stop().await;
}

#[tokio::test]
async fn directory_over_ldaps_and_starttls_with_a_private_ca() {
    let pki = pki();
    let slapd = Slapd::start_tls(&pki.cert, &pki.key);
    let ldaps = slapd.ldaps_url.clone().unwrap();
    let ca_line = format!("ca_file = {:?}", pki.ca);
    let over_ldaps = TestGateway::start_with(&slapd, |t| {
        t.replace(&slapd.url, &ldaps).replace("# ca_file = ", &format!("{ca_line}\n# "))
    })
    .await;
    let created = over_ldaps.post("/Users", &okta_user("tls@example.com", Some("Tls-pass-1"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    over_ldaps.stop().await;

    let over_starttls = TestGateway::start_with(&slapd, |t| {
        t.replace("starttls = false", "starttls = true").replace("# ca_file = ", &format!("{ca_line}\n# "))
    })
    .await;
    let found = over_starttls.get(&format!("/Users?filter={}", q(r#"userName eq "tls@example.com""#))).await;
    assert_eq!(found.body["totalResults"], 1, "{:#}", found.body);
    over_starttls.stop().await;

    // Without the CA the certificate is not trusted: verification is on by default.
    let untrusted = TestGateway::start_with(&slapd, |t| t.replace(&slapd.url, &ldaps)).await;
    untrusted.get("/Users").await.assert_error(503, None);
    untrusted.stop().await;
}

#[tokio::test]
async fn slow_clients_and_a_stalled_directory_get_bounded_answers() {
    let slapd = Slapd::start();
    // A directory that accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("ldap://{}", hole.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(&slapd.url, &hole_url)
            .replace("request_timeout_secs = 30", "request_timeout_secs = 1")
            .replace("header_read_timeout_secs = 10", "header_read_timeout_secs = 1")
    })
    .await;
    let started = Instant::now();
    let a = gw.get("/Users").await;
    a.assert_error(503, None);
    assert_eq!(a.header("retry-after"), Some("5"));
    // Bounds with room for a loaded machine, short of the defaults (30 s, 10 s) the 1 s replaced.
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

    // A client that never finishes its headers is disconnected.
    let addr = gw.origin().trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed within 8 s");
    gw.stop().await;
}

#[tokio::test]
async fn named_bearer_tokens_and_basic_credentials() {
    let slapd = Slapd::start();
    let extra = "[[auth.bearer]]\nname = \"entra\"\ntoken = \"entra-token-77\"\n\n[[auth.basic]]\nname = \"legacy\"\nusername = \"okta\"\npassword = \"b4sic-pw\"\n\n[directory]";
    let gw = TestGateway::start_with(&slapd, |t| t.replacen("[directory]", extra, 1)).await;
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("okta:b4sic-pw"));
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("okta:b4sic-pX"));
    for (auth, status) in [
        (format!("Bearer {TOKEN}"), 200),
        ("Bearer entra-token-77".to_owned(), 200),
        (basic, 200),
        (wrong, 401),
        ("Bearer b4sic-pw".to_owned(), 401),
    ] {
        assert_eq!(gw.call("GET", "/Users", None, Some(&auth)).await.status, status, "{auth}");
    }
    let spc = gw.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["authenticationSchemes"].as_array().unwrap().len(), 2);
    gw.stop().await;
}

/// The certificate the gateway at `port` presents.
async fn served_certificate(pki: &Pki, port: u16) -> rustls_pki_types::CertificateDer<'static> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(pki.client_config(b"http/1.1"))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("TLS handshake with the gateway");
    stream.get_ref().1.peer_certificates().expect("a certificate")[0].clone().into_owned()
}

#[tokio::test]
async fn sighup_reloads_the_inbound_certificate() {
    let pki = pki();
    let slapd = Slapd::start();
    let (cert, key, first) = pki.issue("live");
    let mut gateway = GatewayProcess::spawn(&with_inbound_tls(config_text(&slapd, |t| t), &cert, &key));
    assert_eq!(served_certificate(&pki, gateway.port).await, first);

    // A renewal: new files in place, then SIGHUP.
    let (renewed_cert, renewed_key, renewed) = pki.issue("renewed");
    std::fs::copy(&renewed_cert, &cert).unwrap();
    std::fs::copy(&renewed_key, &key).unwrap();
    gateway.signal("HUP");
    let started = Instant::now();
    while served_certificate(&pki, gateway.port).await != renewed {
        assert!(started.elapsed() < Duration::from_secs(10), "the renewed certificate was not served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken file is refused: the certificate in use stays, and so does the gateway.
    std::fs::write(&cert, "not a certificate").unwrap();
    gateway.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(gateway.is_running());
    assert_eq!(served_certificate(&pki, gateway.port).await, renewed);
}

#[tokio::test]
async fn a_client_certificate_for_a_directory_that_demands_one() {
    let pki = pki();
    let slapd = Slapd::start_tls_client_auth(&pki.cert, &pki.key, &pki.ca);
    let ldaps = slapd.ldaps_url.clone().unwrap();
    let over_ldaps =
        |t: String| t.replace(&slapd.url, &ldaps).replace("# ca_file = ", &format!("ca_file = {:?}\n# ", pki.ca));
    let without = TestGateway::start_with(&slapd, over_ldaps).await;
    without.get("/Users").await.assert_error(503, None);
    without.stop().await;

    let (client_cert, client_key, _) = pki.issue("gateway-client");
    let client = format!("client_cert_file = {client_cert:?}\nclient_key_file = {client_key:?}\n");
    let with =
        TestGateway::start_with(&slapd, |t| over_ldaps(t).replacen("\npool_size", &format!("\n{client}pool_size"), 1))
            .await;
    let created = with.post("/Users", &okta_user("mtls@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    with.stop().await;
}
