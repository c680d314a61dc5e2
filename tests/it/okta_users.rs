//! Okta's user flows (shared/reference/idp-requests.md) end to end against a real slapd:
//! every HTTP answer is checked, and so is the entry read back directly over LDAP. The flows
//! themselves are shared with the PostgreSQL store (tests/common/scenario.rs).

use crate::common;

use common::gateway::{okta_user, q, TestGateway, PEOPLE};
use common::scenario;
use common::Slapd;
use serde_json::json;

#[tokio::test]
async fn create_user_the_okta_way() {
    scenario::okta_create_user(&Slapd::start()).await;
}

#[tokio::test]
async fn profile_update_with_put_and_rename() {
    scenario::okta_put_and_rename(&Slapd::start()).await;
}

#[tokio::test]
async fn deactivate_reactivate_and_password_push_with_ppolicy() {
    // The shared flow reads ppolicy's lock: pwdAccountLockedTime 000001010000Z is inactive.
    scenario::okta_deactivate_and_password_push(&Slapd::start()).await;
}

#[tokio::test]
async fn deactivation_by_attribute_value() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| {
        t.replace(
            r#"deactivation = { strategy = "ppolicy" }"#,
            r#"deactivation = { strategy = "attribute", attribute = "employeeType", inactive_value = "inactive", active_value = "active" }"#,
        )
    })
    .await;
    let mut body = okta_user("carl@example.com", None);
    body["active"] = false.into();
    let created = gw.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["active"], false);
    let dn = format!("uid=carl@example.com,{PEOPLE}");
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["employeeType"], ["inactive"]);
    let id = created.body["id"].as_str().unwrap();
    let on = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!(on.body["active"], true);
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["employeeType"], ["active"]);
    assert_eq!(gw.get(&format!("/Users?filter={}", q("active eq true"))).await.body["totalResults"], 1);
    gw.stop().await;
}

#[tokio::test]
async fn import_pages_through_more_than_the_size_limit() {
    scenario::okta_import_pages(&Slapd::start()).await;
}

#[tokio::test]
async fn projection_and_search_endpoint() {
    scenario::projection_and_search(&Slapd::start()).await;
}
