//! The gateway as an OAuth 2.0 authorization server, against a real slapd: client
//! credentials, the authorization code grant over HTTP (the browser test drives it with
//! Chromium), refresh rotation and reuse, revocation, open redirects, CSRF, rate limits.

use crate::common;

use common::gateway::TestGateway;
use common::oauth::*;
use common::Slapd;

async fn setup(extra: &str) -> (Slapd, TestGateway, tempfile::TempDir) {
    let slapd = Slapd::start();
    seed(&slapd).await;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k1.pem");
    let gw = gateway(&slapd, &oauth_section(&[key], CALLBACK, extra)).await;
    (slapd, gw, dir)
}

/// An access and a refresh token for Alice through the code grant, with PKCE.
async fn authorized(web: &Web, gw: &TestGateway) -> serde_json::Value {
    let verifier = "a-verifier-of-at-least-43-characters-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let url = authorize_url(gw, CALLBACK, "st-1", &format!("&code_challenge={challenge}&code_challenge_method=S256"));
    let back = sign_in(web, gw, &url, "alice", ALICE_PASSWORD).await;
    assert_eq!(back.status, 303, "{}", back.text);
    let location = back.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{CALLBACK}?code=")), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    let code = query_param(&location, "code").unwrap();
    let bad_verifier = "x".repeat(43);
    let wrong = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &bad_verifier),
    ];
    let refused = web.token(gw, "okta", OKTA_SECRET, &wrong).await;
    assert_eq!((refused.status.as_u16(), refused.json()["error"].as_str()), (400, Some("invalid_grant")));
    // The refused exchange used the code up: a real client gets a new one.
    let back = sign_in(web, gw, &url, "alice", ALICE_PASSWORD).await;
    let code = query_param(back.header("location").unwrap(), "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ];
    let tokens = web.token(gw, "okta", OKTA_SECRET, &form).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    tokens.json()
}

#[tokio::test]
async fn client_credentials_as_entra_uses_them() {
    let (slapd, gw, _dir) = setup("").await;
    let web = Web::default();
    let before = people(&slapd).await;
    // client_secret_post, as Entra sends it.
    let form = [("grant_type", "client_credentials"), ("client_id", "entra"), ("client_secret", ENTRA_SECRET)];
    let url = format!("{}/oauth/token", gw.base);
    let got = web.form(&url, &form, &[]).await;
    assert_eq!(got.status, 200, "{}", got.text);
    let body = got.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert!(body.get("refresh_token").is_none(), "client credentials get no refresh token");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let users = gw.call("GET", "/Users", None, Some(&bearer)).await;
    assert_eq!(users.status, 200, "{:#}", users.body);
    let spc = gw.call("GET", "/ServiceProviderConfig", None, Some(&bearer)).await;
    let types: Vec<&str> =
        spc.body["authenticationSchemes"].as_array().unwrap().iter().map(|s| s["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["oauth2", "oauthbearertoken"], "both configured schemes are listed");

    // Basic works too; wrong secrets, unknown clients and grants the client may not use do not.
    assert_eq!(web.token(&gw, "entra", ENTRA_SECRET, &[("grant_type", "client_credentials")]).await.status, 200);
    let bad = web.token(&gw, "entra", "wrong-secret", &[("grant_type", "client_credentials")]).await;
    assert_eq!((bad.status.as_u16(), bad.json()["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(bad.header("www-authenticate"), Some("Basic realm=\"scim-gateway\""));
    assert!(!bad.text.contains("wrong-secret"));
    let unknown = web
        .form(&url, &[("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "x")], &[])
        .await;
    assert_eq!((unknown.status.as_u16(), unknown.json()["error"].as_str()), (401, Some("invalid_client")));
    let okta = web.token(&gw, "okta", OKTA_SECRET, &[("grant_type", "client_credentials")]).await;
    assert_eq!(okta.json()["error"], "unauthorized_client", "Okta's client is for the code grant only");
    let both = web.form(&url, &form, &[("authorization", "Basic ZW50cmE6eA==")]).await;
    assert_eq!(both.json()["error"], "invalid_request", "two client authentication methods");
    let nogrant = web.token(&gw, "entra", ENTRA_SECRET, &[("grant_type", "password")]).await;
    assert_eq!(nogrant.json()["error"], "unsupported_grant_type");
    let json = web.send("POST", &url, &[("content-type", "application/json")], b"{}".to_vec()).await;
    assert_eq!(json.json()["error"], "invalid_request");

    // A tampered token: RFC 6750 invalid_token.
    let tampered = format!("Bearer {}x", &access[..access.len() - 1]);
    let refused = gw.call("GET", "/Users", None, Some(&tampered)).await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("www-authenticate").unwrap().contains("error=\"invalid_token\""), "{:?}", refused.headers);
    // Revoked (RFC 7009): refused from then on.
    let revoke = web.token_at(&gw, "revoke", "entra", ENTRA_SECRET, &[("token", &access)]).await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    let after = gw.call("GET", "/Users", None, Some(&bearer)).await;
    assert_eq!(after.status, 401);
    // The static token still works.
    assert_eq!(gw.get("/Users").await.status, 200);
    assert_eq!(people(&slapd).await, before, "nothing written");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (slapd, gw, _dir) = setup("").await;
    let web = Web::default();
    let first = authorized(&web, &gw).await;
    let r0 = first["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", first["access_token"].as_str().unwrap());
    assert_eq!(gw.call("GET", "/Users", None, Some(&bearer)).await.status, 200);

    let refresh = |t: String| {
        let web = &web;
        let gw = &gw;
        async move { web.token(gw, "okta", OKTA_SECRET, &[("grant_type", "refresh_token"), ("refresh_token", &t)]).await }
    };
    let second = refresh(r0.clone()).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let r1 = second.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r0, "rotated");
    let third = refresh(r1.clone()).await;
    assert_eq!(third.status, 200, "{}", third.text);
    let r2 = third.json()["refresh_token"].as_str().unwrap().to_owned();
    // The old one comes back: refused, and the newest one dies with it.
    let reused = refresh(r0).await;
    assert_eq!((reused.status.as_u16(), reused.json()["error"].as_str()), (400, Some("invalid_grant")));
    let newest = refresh(r2).await;
    assert_eq!(newest.json()["error"], "invalid_grant", "the family is revoked");
    // A code used twice: refused, and what it granted is revoked (RFC 6749 §4.1.2).
    let back = sign_in(&web, &gw, &authorize_url(&gw, CALLBACK, "s", ""), "alice", ALICE_PASSWORD).await;
    let code = query_param(back.header("location").unwrap(), "code").unwrap();
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", CALLBACK)];
    let granted = web.token(&gw, "okta", OKTA_SECRET, &form).await.json();
    let again = web.token(&gw, "okta", OKTA_SECRET, &form).await;
    assert_eq!(again.json()["error"], "invalid_grant", "a code is single-use");
    assert_eq!(refresh(granted["refresh_token"].as_str().unwrap().to_owned()).await.json()["error"], "invalid_grant");
    let access = format!("Bearer {}", granted["access_token"].as_str().unwrap());
    assert_eq!(gw.call("GET", "/Users", None, Some(&access)).await.status, 401, "its access token too");
    // Another client cannot use Okta's tokens.
    let fresh = authorized(&web, &gw).await;
    let stolen = web
        .token(
            &gw,
            "entra",
            ENTRA_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", fresh["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(stolen.json()["error"], "unauthorized_client");
    // Revocation of a refresh token ends its family.
    let rt = fresh["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        web.token_at(&gw, "revoke", "okta", OKTA_SECRET, &[("token", &rt), ("token_type_hint", "refresh_token")])
            .await
            .status,
        200
    );
    assert_eq!(refresh(rt).await.json()["error"], "invalid_grant");
    // An access token is no refresh token.
    let access = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(access).await.json()["error"], "invalid_grant");

    // Deactivating the admin (ppolicy lock) ends refreshes too.
    let latest = authorized(&web, &gw).await["refresh_token"].as_str().unwrap().to_owned();
    let mut ldap = slapd.admin().await;
    let lock = vec![ldap3::Mod::Add("pwdAccountLockedTime", std::collections::HashSet::from(["000001010000Z"]))];
    ldap.modify(ALICE, lock).await.and_then(|r| r.success()).unwrap();
    assert_eq!(refresh(latest).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn open_redirects_are_refused_with_an_error_page() {
    let (_slapd, gw, _dir) = setup("").await;
    let web = Web::default();
    for evil in [
        "https://evil.example/cb",
        "http://127.0.0.1:1/callback/../evil",
        "http://127.0.0.1:1/callbackX",
        "http://127.0.0.1:1/callback?x=1",
        "HTTP://127.0.0.1:1/callback",
        "http://127.0.0.1:1@evil.example/callback",
        "",
    ] {
        let page = web.get(&authorize_url(&gw, evil, "s", ""), &[]).await;
        assert_eq!(page.status, 400, "{evil}: {}", page.text);
        assert!(page.header("location").is_none(), "{evil}: never redirected");
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
    }
    // Unknown client: an error page, whatever the redirect.
    let unknown = web
        .get(
            &format!(
                "{}/oauth/authorize?response_type=code&client_id=evil&redirect_uri=https%3A%2F%2Fevil.example",
                gw.base
            ),
            &[],
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.header("location").is_none());
    // HTML in parameters is shown escaped.
    let xss = web.get(&authorize_url(&gw, "https://x/<script>alert(1)</script>", "s", ""), &[]).await;
    assert!(!xss.text.contains("<script>alert") && xss.text.contains("&lt;script&gt;"), "{}", xss.text);
    // A listed redirect URI gets protocol errors, with the state.
    let implicit = web
        .get(&authorize_url(&gw, CALLBACK, "s1", "").replace("response_type=code", "response_type=token"), &[])
        .await;
    assert_eq!(implicit.status, 303);
    let location = implicit.header("location").unwrap();
    assert_eq!(query_param(location, "error").as_deref(), Some("unsupported_response_type"));
    assert_eq!(query_param(location, "state").as_deref(), Some("s1"));
    let plain =
        web.get(&authorize_url(&gw, CALLBACK, "s", "&code_challenge=abc&code_challenge_method=plain"), &[]).await;
    assert_eq!(query_param(plain.header("location").unwrap(), "error").as_deref(), Some("invalid_request"));
    // A code issued for one redirect URI is refused with another.
    let back = sign_in(&web, &gw, &authorize_url(&gw, CALLBACK, "s", ""), "alice", ALICE_PASSWORD).await;
    let code = query_param(back.header("location").unwrap(), "code").unwrap();
    let swapped =
        [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "https://other.example/cb")];
    assert_eq!(web.token(&gw, "okta", OKTA_SECRET, &swapped).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn sign_in_needs_the_pages_ticket_and_cookie() {
    let (slapd, gw, _dir) = setup("").await;
    let web = Web::default();
    let before = people(&slapd).await;
    let url = authorize_url(&gw, CALLBACK, "s", "");
    let page = web.get(&url, &[]).await;
    let cookie = page.cookie().unwrap();
    assert!(page.header("set-cookie").unwrap().contains("SameSite=Strict"));
    assert!(page.header("set-cookie").unwrap().contains("HttpOnly"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let ticket = ticket(&page.text);
    let other_cookie = web.get(&url, &[]).await.cookie().unwrap();
    let post = format!("{}/oauth/authorize", gw.base);
    let creds =
        |t: &str| vec![("ticket", t.to_owned()), ("username", "alice".into()), ("password", ALICE_PASSWORD.into())];
    let send = |t: String, cookie: Option<String>| {
        let (web, post) = (&web, &post);
        async move {
            let pairs = creds(&t);
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
            web.form(post, &pairs, &headers).await
        }
    };
    // Cross-site: no cookie, another session's cookie, a forged or altered ticket.
    let mut forged = ticket.clone();
    forged.insert(forged.len() / 2, 'A');
    for (t, c) in [
        (ticket.clone(), None),
        (ticket.clone(), Some(other_cookie)),
        (forged, Some(cookie.clone())),
        (String::new(), Some(cookie.clone())),
    ] {
        let r = send(t, c).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(r.header("location").is_none());
    }
    // The genuine form works.
    let ok = send(ticket, Some(cookie)).await;
    assert_eq!(ok.status, 303, "{}", ok.text);
    // Bob is no admin; a wrong password fails the same way; neither gets a code.
    for (login, pw) in [("bob", BOB_PASSWORD), ("alice", "wrong"), ("nobody", "x"), ("*", "x"), ("alice", "")] {
        let r = sign_in(&web, &gw, &url, login, pw).await;
        assert!(r.status == 401 || r.status == 400, "{login}: {} {}", r.status, r.text);
        assert!(r.header("location").is_none());
        assert!(r.text.contains("name=\"ticket\""), "the page is shown again");
    }
    assert_eq!(people(&slapd).await, before, "nothing written");
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_user_and_per_address() {
    let (_slapd, gw, _dir) = setup("login_limit = { per_user = 3, per_address = 5, window_secs = 300 }").await;
    let web = Web::default();
    let url = authorize_url(&gw, CALLBACK, "s", "");
    for _ in 0..3 {
        assert_eq!(sign_in(&web, &gw, &url, "alice", "wrong").await.status, 401);
    }
    // Now even the right password is refused without asking the directory.
    let blocked = sign_in(&web, &gw, &url, "alice", ALICE_PASSWORD).await;
    assert_eq!(blocked.status, 429, "{}", blocked.text);
    assert!(blocked.text.contains("Too many failed sign-ins"));
    assert_eq!(blocked.header("retry-after"), Some("300"));
    // Per address: two more failures (other names) reach the address's limit of 5.
    for name in ["x1", "x2"] {
        assert_eq!(sign_in(&web, &gw, &url, name, "wrong").await.status, 401);
    }
    assert_eq!(sign_in(&web, &gw, &url, "bob", BOB_PASSWORD).await.status, 429);
}

#[tokio::test]
async fn hash_secret_prints_a_phc_string() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scim-gateway"))
        .args(["hash-secret", "-c", "/nonexistent.toml"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a-long-enough-client-secret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$") && !phc.contains("a-long-enough"), "{phc}");
}

#[tokio::test]
async fn grants_and_refusals_are_audited_without_secrets() {
    let slapd = Slapd::start();
    seed(&slapd).await;
    let dir = tempfile::tempdir().unwrap();
    let section = oauth_section(&[key_file(dir.path(), "k.pem")], CALLBACK, "");
    let process = common::process::GatewayProcess::spawn(&(common::gateway::config_text(&slapd, |t| t) + &section));
    let gw = process.client();
    let web = Web::default();
    let granted = web.token(&gw, "entra", ENTRA_SECRET, &[("grant_type", "client_credentials")]).await;
    let access = granted.json()["access_token"].as_str().unwrap().to_owned();
    web.token(&gw, "entra", "a-wrong-secret", &[("grant_type", "client_credentials")]).await;
    let url = authorize_url(&gw, CALLBACK, "s", "");
    sign_in(&web, &gw, &url, "alice", "a-wrong-password").await;
    let back = sign_in(&web, &gw, &url, "alice", ALICE_PASSWORD).await;
    let code = query_param(back.header("location").unwrap(), "code").unwrap();
    let tokens = web
        .token(
            &gw,
            "okta",
            OKTA_SECRET,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)],
        )
        .await
        .json();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    web.token_at(&gw, "revoke", "okta", OKTA_SECRET, &[("token", &refresh)]).await;
    let log = process.settled_log().await;
    for line in [
        "action=\"client_credentials\" client=\"entra\"",
        "client=\"entra\" subject=\"\" address=\"127.0.0.1\" outcome=\"refused: wrong secret\"",
        "action=\"sign_in\" client=\"okta\" subject=\"alice\" address=\"127.0.0.1\" outcome=\"refused: bad_password\"",
        "action=\"authorization_code\" client=\"okta\" subject=\"alice\" address=\"127.0.0.1\" outcome=\"issued\"",
        "action=\"authorization_code\" client=\"okta\" subject=\"alice\" address=\"127.0.0.1\" outcome=\"granted\"",
        "action=\"revocation\" client=\"okta\" subject=\"alice\" address=\"127.0.0.1\" outcome=\"refresh token family revoked\"",
    ] {
        assert!(log.contains(line), "no audit line with {line} in:\n{log}");
    }
    for secret in
        [ENTRA_SECRET, OKTA_SECRET, "a-wrong-secret", "a-wrong-password", ALICE_PASSWORD, &access, &refresh, &code]
    {
        assert!(!log.contains(secret), "a secret or token reached the log");
    }
}

/// Per target: a token one target issued is refused by another, even with the same key files.
#[tokio::test]
async fn each_target_accepts_only_its_own_tokens() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem");
    let acme = format!(
        r#"
[[targets]]
name = "acme"
base_path = "/acme/scim/v2"

[targets.auth.oauth]
issuer = "http://127.0.0.1"
key_files = [{key:?}]

[[targets.auth.oauth.client]]
client_id = "entra"
secret_hash = "{hash}"
grants = ["client_credentials"]

[targets.directory]
url = "{url}"
bind_dn = "{bind}"
bind_password = "{password}"

[targets.users]
base_dn = "ou=people,dc=example,dc=test"
filter = "(objectClass=inetOrgPerson)"
rdn_attribute = "uid"
object_classes = ["inetOrgPerson"]
deactivation = {{ strategy = "ppolicy" }}

[[targets.users.attribute]]
scim = "userName"
ldap = "uid"

[[targets.users.attribute]]
scim = "name.familyName"
ldap = "sn"
"#,
        key = key.display().to_string(),
        hash = scim_gateway::http::oauth::hash_secret(ENTRA_SECRET),
        url = slapd.url,
        bind = slapd.service_dn,
        password = slapd.service_password,
    );
    let gw = gateway(&slapd, &(oauth_section(&[key], CALLBACK, "") + &acme)).await;
    let acme_gw = TestGateway::remote(gw.base.replace("/scim/v2", "/acme/scim/v2"));
    let web = Web::default();
    let token_of = |r: Reply| format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let default_token = token_of(web.token(&gw, "entra", ENTRA_SECRET, &[("grant_type", "client_credentials")]).await);
    let acme_token =
        token_of(web.token(&acme_gw, "entra", ENTRA_SECRET, &[("grant_type", "client_credentials")]).await);
    assert_eq!(gw.call("GET", "/Users", None, Some(&default_token)).await.status, 200);
    assert_eq!(acme_gw.call("GET", "/Users", None, Some(&acme_token)).await.status, 200);
    let crossed = acme_gw.call("GET", "/Users", None, Some(&default_token)).await;
    assert_eq!(crossed.status, 401);
    assert!(crossed.header("www-authenticate").unwrap().contains("invalid_token"));
    assert_eq!(gw.call("GET", "/Users", None, Some(&acme_token)).await.status, 401);
    // acme has no sign-in (no admin group, no code-grant client): its page refuses Okta.
    let page = web.get(&authorize_url(&acme_gw, CALLBACK, "s", ""), &[]).await;
    assert_eq!(page.status, 400);
}
