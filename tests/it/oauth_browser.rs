//! The authorization code grant as Okta drives it, with a real browser: Debian's chromium,
//! headless, through chromedriver (WebDriver). The test opens the authorize URL, signs in as
//! a directory admin, follows the redirect to its own callback server, exchanges the code
//! with the client secret, calls /Users, refreshes, then takes the admin out of the admin
//! group in LDAP and sees the next refresh fail. Screenshots of the pages go to
//! `target/tmp/oauth-*.png`.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::TestGateway;
use common::oauth::*;
use common::Slapd;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// chromedriver on a free port, killed (it and the browsers it started) when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver; scripts/test does)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        Driver { child, url: format!("http://127.0.0.1:{port}"), profile: profile.path().to_owned(), _profile: profile }
    }

    async fn browser(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=900,760",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", self.profile.display()));
        let caps =
            json!({"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}});
        let serde_json::Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client's redirect target: answers every request with a small page.
async fn callback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
                        b"<!doctype html><title>Callback</title><p>Authorized: the client got its code.</p>",
                    )));
                    r.headers_mut().insert("content-type", "text/html".parse().unwrap());
                    Ok::<_, std::convert::Infallible>(r)
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    url
}

fn shot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("oauth-{name}.png"))
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(shot_path(name), png).unwrap();
}

async fn fill_and_submit(browser: &Client, login: &str, password: &str) {
    browser.find(Locator::Id("username")).await.unwrap().send_keys(login).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    browser.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
}

#[tokio::test]
async fn okta_authorization_code_flow_in_chromium() {
    let slapd = Slapd::start();
    seed(&slapd).await;
    let callback = callback_server().await;
    let dir = tempfile::tempdir().unwrap();
    let gw: TestGateway = gateway(&slapd, &oauth_section(&[key_file(dir.path(), "k.pem")], &callback, "")).await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let web = Web::default();

    // An unlisted redirect URI: an error page, and the browser stays on the gateway.
    browser.goto(&authorize_url(&gw, "https://evil.example/steal", "s0", "")).await.unwrap();
    let source = browser.source().await.unwrap();
    assert!(source.contains("Redirect URI not allowed"), "{source}");
    assert!(browser.current_url().await.unwrap().as_str().starts_with(&gw.base));
    screenshot(&browser, "error").await;

    // The authorize URL as Okta opens it: state and PKCE.
    let verifier = "okta-pkce-verifier-0123456789-0123456789-abcdef";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let url = authorize_url(
        &gw,
        &callback,
        "okta-state-42",
        &format!("&code_challenge={challenge}&code_challenge_method=S256"),
    );
    browser.goto(&url).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Sign in – scim-gateway");
    screenshot(&browser, "login").await;

    // A wrong password: the page again, with the failure, and no redirect.
    fill_and_submit(&browser, "alice", "not-her-password").await;
    // A click returns before the page the POST answers with has loaded: wait for it.
    let alert = browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("p.error")).await;
    let source = browser.source().await.unwrap();
    assert!(alert.is_ok(), "no sign-in failure shown: {source}");
    assert!(source.contains("Sign-in failed"), "{source}");
    screenshot(&browser, "login-failed").await;
    let name = browser.find(Locator::Id("username")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some("alice"), "the name is kept");
    name.clear().await.unwrap();

    fill_and_submit(&browser, "alice", ALICE_PASSWORD).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let landed = loop {
        let now = browser.current_url().await.unwrap().to_string();
        if now.starts_with(&callback) {
            break now;
        }
        assert!(Instant::now() < deadline, "never reached the callback; at {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(query_param(&landed, "state").as_deref(), Some("okta-state-42"));
    let code = query_param(&landed, "code").expect("a code");
    browser.close().await.unwrap();

    // Okta's backend exchanges the code with its client secret.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback.as_str()),
        ("code_verifier", verifier),
    ];
    let tokens = web.token(&gw, "okta", OKTA_SECRET, &form).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let tokens = tokens.json();
    let bearer = |t: &serde_json::Value| format!("Bearer {}", t["access_token"].as_str().unwrap());
    let users = gw.call("GET", "/Users", None, Some(&bearer(&tokens))).await;
    assert_eq!(users.status, 200, "{:#}", users.body);
    assert!(users.body["totalResults"].as_u64().unwrap() >= 2);

    let refresh = |t: &serde_json::Value| {
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let (web, gw) = (&web, &gw);
        async move { web.token(gw, "okta", OKTA_SECRET, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await }
    };
    let next = refresh(&tokens).await;
    assert_eq!(next.status, 200, "{}", next.text);
    let next = next.json();
    assert_eq!(gw.call("GET", "/Users", None, Some(&bearer(&next))).await.status, 200);

    // Alice loses admin rights in the directory: the next refresh fails, and the access
    // token of that authorization stops working here at once.
    remove_alice_from_admins(&slapd).await;
    let refused = refresh(&next).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["error"], "invalid_grant");
    assert_eq!(gw.call("GET", "/Users", None, Some(&bearer(&next))).await.status, 401);
    for name in ["login", "login-failed", "error"] {
        assert!(std::fs::metadata(shot_path(name)).unwrap().len() > 1000, "{name} screenshot");
    }
}
