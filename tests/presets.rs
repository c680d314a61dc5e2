//! The shipped presets load, and the OpenLDAP posix preset works end to end.

mod common;

use common::gateway::{okta_user, q, TestGateway, PEOPLE, TOKEN};
use common::Slapd;
use scim_gateway::config::Loaded;
use serde_json::json;

fn preset(name: &str, slapd_url: &str, password: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/presets/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.replace("${SCIM_GATEWAY_LDAP_URL}", slapd_url)
        .replace("${SCIM_GATEWAY_TOKEN}", TOKEN)
        .replace("${SCIM_GATEWAY_BIND_PASSWORD}", password)
}

#[test]
fn every_preset_loads() {
    let dir = std::fs::read_dir(format!("{}/presets", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut seen = 0;
    for file in dir {
        let name = file.unwrap().file_name().into_string().unwrap();
        let loaded = Loaded::parse(&name, preset(&name, "ldap://127.0.0.1:1", "x")).unwrap_or_else(|e| panic!("{e}"));
        scim_gateway::Gateway::new(&loaded).unwrap_or_else(|e| panic!("{e}"));
        seen += 1;
    }
    assert!(seen >= 2);
}

#[tokio::test]
async fn openldap_posix_preset() {
    let slapd = Slapd::start();
    let gw = TestGateway::from_text(preset("openldap-posix.toml", &slapd.url, &slapd.service_password)).await;
    let created = gw.post("/Users", &okta_user("JDoe@Example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["userName"], "jdoe");
    let e = slapd.entry(&format!("uid=jdoe,{PEOPLE}")).await.expect("posix user");
    assert_eq!(e.attrs["uidNumber"], ["10000"]);
    assert_eq!(e.attrs["gidNumber"], ["10000"]);
    assert_eq!(e.attrs["homeDirectory"], ["/home/jdoe"]);
    assert_eq!(e.attrs["loginShell"], ["/bin/bash"]);
    assert_eq!(e.attrs["cn"], ["John Doe"]);
    // Okta's lookup with the full userName finds the shaped uid; a second create conflicts.
    let found = gw.get(&format!("/Users?filter={}", q(r#"userName eq "jdoe@example.com""#))).await;
    assert_eq!(found.body["totalResults"], 1);
    gw.post("/Users", &okta_user("jdoe@example.com", None)).await.assert_error(409, Some("uniqueness"));
    let second = gw.post("/Users", &okta_user("ann@example.com", None)).await;
    assert_eq!(
        slapd.entry(&format!("uid=ann,{PEOPLE}")).await.unwrap().attrs["uidNumber"],
        ["10001"],
        "{:#}",
        second.body
    );

    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "devs",
                       "members": [{"value": created.body["id"]}]});
    let g = gw.post("/Groups", &group).await;
    assert_eq!(g.status, 201, "{:#}", g.body);
    let ge = slapd.entry("cn=devs,ou=groups,dc=example,dc=test").await.unwrap();
    assert_eq!(
        (ge.attrs["gidNumber"].clone(), ge.attrs["memberUid"].clone()),
        (vec!["20000".to_string()], vec!["jdoe".to_string()])
    );
    gw.stop().await;
}
