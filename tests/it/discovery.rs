//! Discovery documents describe exactly what the configuration maps.

use crate::common;

use common::gateway::TestGateway;
use common::Slapd;

#[tokio::test]
async fn discovery_follows_the_mapping() {
    let slapd = Slapd::start();
    let gw = TestGateway::start(&slapd).await;
    let spc = gw.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], false);
    assert_eq!(spc.body["sort"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);
    assert_eq!(spc.body["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let types = gw.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    assert_eq!(types.body["Resources"][1]["endpoint"], "/Groups");
    let user_type = &types.body["Resources"][0];
    assert_eq!(user_type["endpoint"], "/Users");
    assert_eq!(
        user_type["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    assert_eq!(gw.get("/ResourceTypes/User").await.body, *user_type);

    let schemas = gw.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let group = gw.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").await;
    let group_attrs: Vec<&str> =
        group.body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(group_attrs, ["displayName", "members", "id", "externalId", "meta"]);
    let user = gw.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await;
    assert_eq!(user.status, 200);
    let names: Vec<&str> =
        user.body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for mapped in
        ["userName", "name", "displayName", "emails", "title", "active", "password", "id", "externalId", "meta"]
    {
        assert!(names.contains(&mapped), "{mapped} missing from {names:?}");
    }
    for unmapped in ["nickName", "addresses", "groups", "x509Certificates", "timezone"] {
        assert!(!names.contains(&unmapped), "{unmapped} is not mapped but advertised");
    }
    let name = user.body["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "name").unwrap();
    let subs: Vec<&str> =
        name["subAttributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(subs, ["familyName", "givenName"]);
    let password = user.body["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["returned"], "never");
    let ent = gw.get("/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User").await;
    let ent_names: Vec<&str> =
        ent.body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(ent_names, ["employeeNumber", "department"]);
    gw.get("/Schemas/urn:nope").await.assert_error(404, None);
    gw.stop().await;
}
