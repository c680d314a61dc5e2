//! Microsoft Entra ID's user requests: externalId lookups, PATCH with capitalised ops,
//! value-filter paths and string booleans, extension attributes, and DELETE.

use crate::common;

use common::gateway::{okta_user, q, TestGateway, PEOPLE};
use common::Slapd;
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn entra_patch_forms_and_delete() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let mut body = okta_user("ray@example.com", None);
    body["externalId"] = "entra-object-42".into();
    body["emails"] = json!([]);
    let created = gw.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Existence checks by externalId, and by a value that is not there.
    let by_ext = gw.get(&format!("/Users?filter={}", q(r#"externalId eq "entra-object-42""#))).await;
    assert_eq!(by_ext.body["totalResults"], 1);
    assert_eq!(by_ext.body["Resources"][0]["id"], id.as_str());
    assert_eq!(gw.get(&format!("/Users?filter={}", q(r#"externalId eq "nobody""#))).await.body["totalResults"], 0);

    let patched = gw
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "name.givenName", "value": "Ray"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ray@example.com"},
                {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"},
                {"op": "Replace", "path": "displayName", "value": "Ray Doe"},
            ]),
        )
        .await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    let u = &patched.body;
    assert_eq!(u["active"], false);
    assert_eq!(u["name"]["givenName"], "Ray");
    assert_eq!(u["emails"][0]["value"], "ray@example.com");
    assert_eq!(u[ENTERPRISE]["department"], "R&D");
    assert!(u["schemas"].as_array().unwrap().contains(&json!(ENTERPRISE)));
    let dn = format!("uid=ray@example.com,{PEOPLE}");
    let entry = slapd.entry(&dn).await.unwrap();
    assert_eq!(entry.attrs["givenName"], ["Ray"]);
    assert_eq!(entry.attrs["mail"], ["ray@example.com"]);
    assert_eq!(entry.attrs["departmentNumber"], ["R&D"]);
    assert_eq!(entry.attrs["cn"], ["Ray Doe"]);
    assert_eq!(entry.attrs["pwdAccountLockedTime"], ["000001010000Z"]);

    // Path-less replace with Entra's dotted keys and an extension object; then "True".
    let again = gw
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "value": {"name.familyName": "Ray-Doe", ENTERPRISE: {"employeeNumber": "1001"}, "active": "True"}}]),
        )
        .await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    let entry = slapd.entry(&dn).await.unwrap();
    assert_eq!(entry.attrs["sn"], ["Ray-Doe"]);
    assert_eq!(entry.attrs["employeeNumber"], ["1001"]);
    assert!(!entry.attrs.contains_key("pwdAccountLockedTime"));

    // Remove with a value filter clears just that element.
    let removed =
        gw.patch(&format!("/Users/{id}"), json!([{"op": "Remove", "path": "emails[type eq \"work\"]"}])).await;
    assert_eq!(removed.status, 200, "{:#}", removed.body);
    assert!(removed.body.get("emails").is_none());
    assert!(!slapd.entry(&dn).await.unwrap().attrs.contains_key("mail"));

    // DELETE, then the user is gone for every endpoint.
    let deleted = gw.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, serde_json::Value::Null);
    assert!(slapd.entry(&dn).await.is_none());
    gw.get(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.delete(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.stop().await;
}

#[tokio::test]
async fn filters_through_the_mapping() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    for (name, title) in [("amy", "Engineer"), ("ben", "Manager"), ("cat", "Engineer")] {
        let mut u = okta_user(&format!("{name}@example.com"), None);
        u["title"] = title.into();
        assert_eq!(gw.post("/Users", &u).await.status, 201);
    }
    let count = async |filter: &str| gw.total(filter).await;
    assert_eq!(count(r#"title eq "Engineer""#).await, 2);
    assert_eq!(count(r#"title eq "Engineer" and userName sw "c""#).await, 1);
    assert_eq!(count(r#"title eq "Manager" or userName eq "amy@example.com""#).await, 2);
    assert_eq!(count(r#"not (title eq "Engineer")"#).await, 1);
    assert_eq!(count(r#"userName co "@example" and title pr"#).await, 3);
    assert_eq!(count(r#"userName ew "n@example.com""#).await, 1);
    assert_eq!(count(r#"emails.value eq "ben@example.com""#).await, 1);
    assert_eq!(count(r#"meta.lastModified gt "2000-01-01T00:00:00Z""#).await, 3);
    assert_eq!(count(r#"meta.created lt "2000-01-01T00:00:00Z""#).await, 0);
    // Hostile values are only values: they match nothing and break nothing.
    for hostile in [r#"*)(uid=*"#, r#")(|(objectClass=*)"#, r#"\u0000"#, "*"] {
        assert_eq!(count(&format!(r#"userName eq "{hostile}""#)).await, 0, "{hostile}");
    }
    gw.stop().await;
}
