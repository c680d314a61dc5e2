//! The shipped presets load, and the OpenLDAP posix and 389-ds presets work end to end.

use crate::common;

use common::ds389::Ds389;
use common::gateway::{okta_user, preset, q, TestGateway, PEOPLE};
use common::Slapd;
use scim_gateway::config::Loaded;
use serde_json::json;

#[test]
fn every_preset_loads() {
    let dir = std::fs::read_dir(format!("{}/presets", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut seen = 0;
    for file in dir {
        let name = file.unwrap().file_name().into_string().unwrap();
        // presets/postgres.sql is the schema presets/postgres.toml maps, not a configuration.
        if !name.ends_with(".toml") {
            continue;
        }
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
    assert_eq!(created.body["userName"], "JDoe@Example.com", "kept whole in mail; the login is derived");
    let e = slapd.entry(&format!("uid=jdoe,{PEOPLE}")).await.expect("posix user");
    assert_eq!(e.attrs["uidNumber"], ["10000"]);
    assert_eq!(e.attrs["gidNumber"], ["10000"]);
    assert_eq!(e.attrs["homeDirectory"], ["/home/jdoe"]);
    assert_eq!(e.attrs["loginShell"], ["/bin/bash"]);
    assert_eq!(e.attrs["cn"], ["John Doe"]);
    assert_eq!(e.attrs["description"], ["JDoe@Example.com"]);
    // Okta's lookup finds the userName in any case; a second create conflicts.
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

#[tokio::test]
async fn ds389_preset() {
    let ds = Ds389::start();
    let gw = TestGateway::from_text(preset("389ds.toml", &ds.url, &ds.service_password)).await;
    // No password: 389-ds refuses the Password Modify extended operation without TLS.
    let created = gw.post("/Users", &okta_user("jdoe@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let dn = format!("uid=jdoe@example.com,{PEOPLE}");
    let e = ds.entry(&dn).await.expect("389-ds user");
    assert_eq!(e.attrs["nsUniqueId"], [id.as_str()], "the SCIM id is 389-ds's nsUniqueId");
    assert_eq!(e.attrs["cn"], ["John Doe"]);
    assert_eq!(e.attrs["mail"], ["jdoe@example.com"]);
    assert_eq!(e.attrs["description"], ["00u1abcd2EFGH3ijk4l5"]);
    ds.set_password(&dn, "Initial-pw1").await;
    assert!(ds.can_bind(&dn, "Initial-pw1").await);
    let meta = &created.body["meta"];
    assert!(meta["version"].is_string() && meta["lastModified"].is_string(), "{meta:#}");

    // Okta's lookup, then a second create conflicts.
    let found = gw.get(&format!("/Users?filter={}", q(r#"userName eq "jdoe@example.com""#))).await;
    assert_eq!(found.body["totalResults"], 1, "{:#}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    gw.post("/Users", &okta_user("jdoe@example.com", None)).await.assert_error(409, Some("uniqueness"));

    // Deactivation is 389-ds's own account lock, enforced by the server at bind.
    let off = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await;
    assert_eq!(off.status, 200, "{:#}", off.body);
    assert_eq!(off.body["active"], false);
    assert_eq!(ds.entry(&dn).await.unwrap().attrs["nsAccountLock"], ["true"]);
    assert!(!ds.can_bind(&dn, "Initial-pw1").await, "a locked account cannot bind");
    let on = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": true}}])).await;
    assert_eq!(on.body["active"], true, "{:#}", on.body);
    assert!(!ds.entry(&dn).await.unwrap().attrs.contains_key("nsAccountLock"));
    assert!(ds.can_bind(&dn, "Initial-pw1").await);

    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "devs",
                       "members": [{"value": id}]});
    let g = gw.post("/Groups", &group).await;
    assert_eq!(g.status, 201, "{:#}", g.body);
    let ge = ds.entry("cn=devs,ou=groups,dc=example,dc=test").await.expect("389-ds group");
    assert_eq!(ge.attrs["member"], [dn.as_str()]);

    assert_eq!(gw.delete(&format!("/Users/{id}")).await.status, 204);
    assert!(ds.entry(&dn).await.is_none());
    gw.get(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.stop().await;
}
