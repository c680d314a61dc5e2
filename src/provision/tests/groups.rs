//! Groups: the empty-group stand-in, idempotent member changes, refused members, and
//! create/replace/delete outcomes.

use serde_json::json;

use super::*;
use crate::provision::Error;

async fn create_group(s: &Site, name: &str, members: &[&str]) -> crate::provision::Result<Value> {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
    s.groups.create(&body, ROOT).await
}

async fn patch_group(s: &Site, id: &str, ops: Value) -> crate::provision::Result<Option<Value>> {
    s.groups.patch(id, &patch(ops), None, &Projection::default(), ROOT).await
}

fn members_of(s: &Site, cn: &str) -> Vec<String> {
    s.dir.entry(&format!("cn={cn},{GROUPS}")).expect("group").values("member").to_vec()
}

#[tokio::test]
async fn an_empty_group_holds_the_stand_in_and_never_shows_it() {
    let s = site(|t| t);
    let g = create_group(&s, "eng", &[]).await.unwrap();
    assert_eq!(members_of(&s, "eng"), [STAND_IN]);
    assert!(g["members"].as_array().is_none_or(|m| m.is_empty()), "{g:#}");
    let id = g["id"].as_str().unwrap();
    let got = s.groups.get(id, &Projection::default(), ROOT).await.unwrap().value();
    assert!(got["members"].as_array().is_none_or(|m| m.is_empty()), "{got:#}");
}

#[tokio::test]
async fn the_stand_in_goes_with_the_first_member_and_comes_back_after_the_last() {
    let s = site(|t| t);
    let ann = s.create_user("ann@example.com").await;
    let ann_dn = s.user("ann@example.com").dn;
    let id = create_group(&s, "eng", &[]).await.unwrap()["id"].as_str().unwrap().to_owned();
    let add = json!([{"op": "add", "path": "members", "value": [{"value": ann["id"]}]}]);
    assert!(patch_group(&s, &id, add.clone()).await.unwrap().is_none(), "204");
    assert_eq!(members_of(&s, "eng"), [ann_dn.as_str()]);
    // Adding again is not an error for the IdP, and changes nothing.
    patch_group(&s, &id, add).await.unwrap();
    assert_eq!(members_of(&s, "eng"), [ann_dn.as_str()]);
    let remove = json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ann["id"].as_str().unwrap())}]);
    patch_group(&s, &id, remove.clone()).await.unwrap();
    assert_eq!(members_of(&s, "eng"), [STAND_IN], "the schema needs a member: the stand-in is back");
    // Removing an absent member is not an error either.
    patch_group(&s, &id, remove).await.unwrap();
    assert_eq!(members_of(&s, "eng"), [STAND_IN]);
}

#[tokio::test]
async fn an_unknown_member_is_refused_and_nothing_is_written() {
    let s = site(|t| t);
    let e = create_group(&s, "eng", &["00000000-0000-4000-8000-000000000000"]).await.unwrap_err();
    assert!(matches!(&e, Error::Scim(s) if s.kind == crate::scim::ScimType::InvalidValue), "{e}");
    assert!(s.entries(GROUPS).is_empty());
    let id = create_group(&s, "ops", &[]).await.unwrap()["id"].as_str().unwrap().to_owned();
    let add = json!([{"op": "add", "path": "members", "value": [{"value": "00000000-0000-4000-8000-000000000000"}]}]);
    assert!(patch_group(&s, &id, add).await.is_err());
    assert_eq!(members_of(&s, "ops"), [STAND_IN]);
}

#[tokio::test]
async fn create_replace_and_delete() {
    let s = site(|t| t);
    let (ann, bob) = (s.create_user("ann@example.com").await, s.create_user("bob@example.com").await);
    let ids = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let g = create_group(&s, "eng", &[&ids(&ann)]).await.unwrap();
    let id = ids(&g);
    assert_eq!(g["members"][0]["value"], ann["id"]);
    let e = create_group(&s, "ENG", &[]).await.unwrap_err();
    assert!(matches!(e, Error::Uniqueness(_)), "{e}");
    assert_eq!(s.entries(GROUPS).len(), 1);

    // PUT replaces the member list.
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "eng",
                      "members": [{"value": ids(&bob)}]});
    let put = s.groups.replace(&id, &body, None, ROOT).await.unwrap();
    assert_eq!(put["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(members_of(&s, "eng"), [s.user("bob@example.com").dn]);
    assert_eq!(s.user("bob@example.com").values("memberOf"), [format!("cn=eng,{GROUPS}")]);

    s.groups.delete(&id, None).await.unwrap();
    assert!(s.entries(GROUPS).is_empty());
    assert!(s.user("bob@example.com").values("memberOf").is_empty());
    assert!(matches!(s.groups.delete(&id, None).await, Err(Error::NotFound(_))));
}
