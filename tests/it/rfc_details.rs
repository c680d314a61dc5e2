//! RFC 7643 / 7644 details that the independent checker (tests/it/conformance.rs) drove: each is
//! pinned here against slapd so that it holds without the checker too.

use crate::common;

use common::gateway::{okta_user, TestGateway};
use common::Slapd;
use serde_json::{json, Value};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The definition of `name` in `attrs` (a schema's `attributes` or `subAttributes`).
fn def<'a>(attrs: &'a Value, name: &str) -> &'a Value {
    attrs.as_array().unwrap().iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("no {name} in {attrs:#}"))
}

#[tokio::test]
async fn queries_at_the_root_are_not_implemented() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    gw.get("/").await.assert_error(501, None);
    gw.post("/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}))
        .await
        .assert_error(501, None);
    // Per resource type they are served.
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 1});
    assert_eq!(gw.post("/Users/.search", &search).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn endpoint_names_ignore_case() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/users", &okta_user("ann@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap();
    assert!(created.header("location").unwrap().ends_with(&format!("/Users/{id}")), "{:?}", created.headers);
    assert_eq!(gw.get(&format!("/USERS/{id}")).await.body["userName"], "ann@example.com");
    assert_eq!(gw.get("/users").await.body["totalResults"], 1);
    assert_eq!(gw.get("/schemas").await.status, 200);
    gw.get("/userz").await.assert_error(404, None);
    gw.stop().await;
}

#[tokio::test]
async fn schemas_describe_references_required_values_and_stored_types() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let group = gw.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").await.body;
    let members = &def(&group["attributes"], "members")["subAttributes"];
    assert_eq!(def(members, "$ref")["referenceTypes"], json!(["User", "Group"]));
    assert_eq!(def(members, "type")["canonicalValues"], json!(["User", "Group"]));

    let user = gw.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await.body;
    // gateway.toml says `required = true` for name.familyName (person requires sn).
    let name = def(&user["attributes"], "name");
    assert_eq!(name["required"], true);
    assert_eq!(def(&name["subAttributes"], "familyName")["required"], true);
    assert_eq!(def(&name["subAttributes"], "givenName")["required"], false);
    let emails = def(&user["attributes"], "emails");
    assert_eq!(def(&emails["subAttributes"], "type")["canonicalValues"], json!(["work"]));
    // No rule of gateway.toml stores `primary`: it is not offered (see primary_… below).
    assert!(emails["subAttributes"].as_array().unwrap().iter().all(|s| s["name"] != "primary"), "{emails:#}");
    assert_eq!(def(&emails["subAttributes"], "value")["mutability"], "readWrite");
    let meta = &def(&user["attributes"], "meta")["subAttributes"];
    assert_eq!(def(meta, "location")["referenceTypes"], json!(["uri"]));
    gw.stop().await;
}

#[tokio::test]
async fn a_required_attribute_missing_is_refused_before_the_directory() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let mut body = okta_user("nofamily@example.com", None);
    body["name"].as_object_mut().unwrap().remove("familyName");
    let a = gw.post("/Users", &body).await;
    a.assert_error(400, Some("invalidValue"));
    assert!(a.body["detail"].as_str().unwrap().contains("name.familyName"), "{:#}", a.body);
    assert!(slapd.search("ou=people,dc=example,dc=test", "(uid=nofamily@example.com)").await.is_empty());

    let created = gw.post("/Users", &okta_user("family@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let a = gw.patch(&format!("/Users/{id}"), json!([{"op": "remove", "path": "name.familyName"}])).await;
    a.assert_error(400, Some("invalidValue"));
    gw.stop().await;

    // Without `required`, the directory refuses it (person needs sn): 400 with its reason.
    let gw = TestGateway::start_with(&slapd, |t| t.replace("required = true\n", "")).await;
    let refused = gw.post("/Users", &body).await;
    refused.assert_error(400, Some("invalidValue"));
    assert!(refused.body["detail"].as_str().unwrap().contains("'sn'"), "{:#}", refused.body);
    gw.stop().await;
}

#[tokio::test]
async fn patch_with_a_path_naming_a_whole_extension() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let created = gw.post("/Users", &okta_user("ext@example.com", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let path = format!("/Users/{}", created.body["id"].as_str().unwrap());
    let dn = "uid=ext@example.com,ou=people,dc=example,dc=test";

    let set = json!({"employeeNumber": "42", "department": "R&D"});
    let a = gw.patch(&path, json!([{"op": "add", "path": ENTERPRISE, "value": set}])).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert_eq!(a.body[ENTERPRISE], set);
    let entry = slapd.entry(dn).await.unwrap();
    assert_eq!(entry.attrs["employeeNumber"], ["42"]);
    assert_eq!(entry.attrs["departmentNumber"], ["R&D"]);

    let a = gw.patch(&path, json!([{"op": "replace", "path": ENTERPRISE, "value": {"department": "Ops"}}])).await;
    assert_eq!(a.body[ENTERPRISE], json!({"employeeNumber": "42", "department": "Ops"}));

    let a = gw.patch(&path, json!([{"op": "remove", "path": ENTERPRISE}])).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert!(a.body.get(ENTERPRISE).is_none(), "{:#}", a.body);
    let entry = slapd.entry(dn).await.unwrap();
    assert!(!entry.attrs.contains_key("employeeNumber") && !entry.attrs.contains_key("departmentNumber"));
    gw.stop().await;
}

/// `primary` is shown only where a rule stores it. The shipped rules keep the work email in
/// `mail` and nothing about primary: a create without `primary` reads back without it (and
/// `/Schemas` does not offer it). With `emails[primary eq true].value`, the primary element
/// has an attribute of its own, and `primary` round-trips.
#[tokio::test]
async fn primary_is_shown_only_where_a_rule_stores_it() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let mut body = okta_user("noprimary@example.com", None);
    body["emails"] = json!([{"value": "noprimary@example.com", "type": "work"}]);
    let created = gw.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["emails"], body["emails"]);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(gw.get(&format!("/Users/{id}")).await.body["emails"], body["emails"]);
    gw.stop().await;

    let stored = TestGateway::start_with(&slapd, |t| {
        let rule = "scim = 'emails[type eq \"work\"].value'";
        assert!(t.contains(rule), "gateway.toml maps the work email");
        t.replace(rule, "scim = 'emails[primary eq true].value'")
    })
    .await;
    let mut body = okta_user("primary@example.com", None);
    body["emails"] = json!([{"value": "primary@example.com", "primary": true}]);
    let created = stored.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["emails"], body["emails"]);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(stored.get(&format!("/Users/{id}")).await.body["emails"], body["emails"]);
    let entry = slapd.entry(&format!("uid=primary@example.com,{}", common::gateway::PEOPLE)).await.unwrap();
    assert_eq!(entry.attrs["mail"], ["primary@example.com"]);
    let user = stored.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await.body;
    let primary = def(&def(&user["attributes"], "emails")["subAttributes"], "primary");
    assert_eq!(primary["mutability"], "readWrite", "{primary:#}");
    stored.stop().await;
}
