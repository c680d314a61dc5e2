//! Okta custom attributes in a schema declared in gateway.toml: discovery, types,
//! mutability and `returned`, sent the way Okta sends them, against slapd.

use crate::common;

use common::gateway::{okta_user, TestGateway, PEOPLE};
use common::Slapd;
use serde_json::json;

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// The shipped configuration, uncached (the test changes the directory behind the gateway),
/// with the acme schema declared and mapped.
fn declared(text: String) -> String {
    let text = text.replace("[cache]\nenabled = true", "[cache]\nenabled = false");
    assert!(text.contains("enabled = false"));
    text + &format!(
        r#"
[[users.schema]]
urn = "{ACME}"

[[users.schema.attribute]]
name = "costCenter"
description = "Okta: user.costCenter"

[[users.schema.attribute]]
name = "level"
type = "integer"

[[users.schema.attribute]]
name = "badgeId"
mutability = "immutable"

[[users.schema.attribute]]
name = "hrKey"
mutability = "readOnly"

[[users.schema.attribute]]
name = "pin"
returned = "never"

[[users.attribute]]
scim = "{ACME}:costCenter"
ldap = "physicalDeliveryOfficeName"

[[users.attribute]]
scim = "{ACME}:level"
ldap = "roomNumber"

[[users.attribute]]
scim = "{ACME}:badgeId"
ldap = "carLicense"

[[users.attribute]]
scim = "{ACME}:hrKey"
ldap = "businessCategory"

[[users.attribute]]
scim = "{ACME}:pin"
ldap = "initials"
"#
    )
}

#[tokio::test]
async fn okta_custom_attributes_round_trip() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, declared).await;

    // Discovery: the declared types, mutability and `returned`.
    let schema = gw.get(&format!("/Schemas/{ACME}")).await;
    assert_eq!(schema.status, 200, "{:#}", schema.body);
    let attr =
        |name: &str| schema.body["attributes"].as_array().unwrap().iter().find(|a| a["name"] == name).cloned().unwrap();
    assert_eq!(attr("level")["type"], "integer");
    assert_eq!(attr("badgeId")["mutability"], "immutable");
    assert_eq!(attr("hrKey")["mutability"], "readOnly");
    assert_eq!(attr("pin")["returned"], "never");
    assert_eq!(attr("costCenter")["description"], "Okta: user.costCenter");
    let user_type = gw.get("/ResourceTypes/User").await.body;
    let extensions: Vec<&str> =
        user_type["schemaExtensions"].as_array().unwrap().iter().map(|e| e["schema"].as_str().unwrap()).collect();
    assert!(extensions.contains(&ACME), "{extensions:?}");

    // POST with the URN as a key.
    let mut user = okta_user("custom@example.com", None);
    user["schemas"].as_array_mut().unwrap().push(ACME.into());
    user[ACME] = json!({"costCenter": "CC-42", "level": 3, "badgeId": "B-1", "pin": "0000"});
    let created = gw.post("/Users", &user).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(
        created.body[ACME],
        json!({"costCenter": "CC-42", "level": 3, "badgeId": "B-1"}),
        "pin is never returned"
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let dn = format!("uid=custom@example.com,{PEOPLE}");
    let e = slapd.entry(&dn).await.unwrap();
    assert_eq!((e.attrs["physicalDeliveryOfficeName"][0].as_str(), e.attrs["initials"][0].as_str()), ("CC-42", "0000"));

    // PATCH without a path, the URN as a key (Okta), then with a path `urn:…:attr`.
    let ops = json!([{"op": "replace", "value": {ACME: {"costCenter": "CC-7", "level": 4}}}]);
    let patched = gw.patch(&format!("/Users/{id}"), ops).await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    assert_eq!(patched.body[ACME]["costCenter"], "CC-7");
    let ops = json!([{"op": "replace", "path": format!("{ACME}:level"), "value": 5}]);
    let patched = gw.patch(&format!("/Users/{id}"), ops).await;
    assert_eq!(patched.body[ACME]["level"], 5, "{:#}", patched.body);
    let e = slapd.entry(&dn).await.unwrap();
    assert_eq!(e.attrs["roomNumber"], ["5"]);
    assert_eq!(e.attrs["initials"], ["0000"], "a PATCH keeps what is never returned");

    // Refusals, with the directory unchanged.
    let before = slapd.entry(&dn).await.unwrap().attrs["entryCSN"].clone();
    let refusals = [
        (json!([{"op": "replace", "path": format!("{ACME}:level"), "value": "five"}]), "invalidValue"),
        (json!([{"op": "replace", "path": format!("{ACME}:badgeId"), "value": "B-2"}]), "mutability"),
        (json!([{"op": "add", "value": {ACME: {"hrKey": "mine"}}}]), "mutability"),
    ];
    for (ops, scim_type) in refusals {
        gw.patch(&format!("/Users/{id}"), ops).await.assert_error(400, Some(scim_type));
    }
    let mut with_read_only = user.clone();
    with_read_only["userName"] = "other@example.com".into();
    with_read_only[ACME]["hrKey"] = "mine".into();
    gw.post("/Users", &with_read_only).await.assert_error(400, Some("mutability"));
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["entryCSN"], before);

    // A readOnly value set by the directory's owners is shown, and a PUT of it is accepted.
    let mut admin = slapd.admin().await;
    let hr = std::collections::HashSet::from(["HR-9"]);
    admin.modify(&dn, vec![ldap3::Mod::Replace("businessCategory", hr)]).await.unwrap().success().unwrap();
    let got = gw.get(&format!("/Users/{id}")).await.body;
    assert_eq!(got[ACME]["hrKey"], "HR-9");
    let put = gw.put(&format!("/Users/{id}"), &got).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    gw.stop().await;
}
