//! The Okta and Microsoft Entra ID user and group flows (shared/reference/idp-requests.md),
//! written once and run against every store the gateway writes to: OpenLDAP
//! (tests/it/okta_users.rs, entra_users.rs, groups.rs) and PostgreSQL (tests/it/postgres/). Every
//! HTTP answer is checked, and after every step so is the record read back from the store
//! itself (LDAP searches as the rootdn, SQL as the superuser), never through the gateway.
//!
//! A [`Store`] says how to start a gateway on it and how to read a user or group back as
//! stored, in a neutral shape ([`StoredUser`], [`StoredGroup`]); member references keep the
//! store's own words (an LDAP DN, a SQL row's name), so an LDAP flow still asserts the very
//! DNs and the groupOfNames stand-in it always did.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::gateway::{member_ids, okta_user, q, TestGateway};

/// A store the flows run against.
#[async_trait]
pub trait Store: Sync {
    /// A gateway in this process serving the store with its shipped configuration.
    async fn gateway(&self) -> TestGateway;
    /// The user whose userName is `user_name`, as stored; None when there is none.
    async fn user(&self, user_name: &str) -> Option<StoredUser>;
    /// The group whose displayName is `name`, as stored.
    async fn group(&self, name: &str) -> Option<StoredGroup>;
    /// How many users are stored.
    async fn user_count(&self) -> usize;
    /// Stores users named `names` directly (not through the gateway), as an import finds them.
    async fn seed_users(&self, names: &[String]);
    /// Whether the application behind the store lets `user_name` log in with `password`
    /// (LDAP: a bind; SQL: the active flag and the stored hash, as the app checks them).
    async fn can_log_in(&self, user_name: &str, password: &str) -> bool;
    /// Whether `stored` is a password in the store's hashed form, never the cleartext.
    fn hashed(&self, stored: &str) -> bool;
    /// How a group's member list refers to the user `user_name` (lower case).
    fn user_ref(&self, user_name: &str) -> String;
    /// How a member list (or a user's group list) refers to the group `name` (lower case).
    fn group_ref(&self, name: &str) -> String;
    /// An empty group's stored member list (groupOfNames must hold a stand-in).
    fn empty_members(&self) -> Vec<String>;
    /// Whether a group may be a member of another group.
    fn nested_groups(&self) -> bool;
}

/// A user as stored, in SCIM's terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredUser {
    /// The store's identifier, which is the SCIM id.
    pub id: String,
    pub user_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub employee_number: Option<String>,
    pub active: bool,
    /// The stored password (hashed), if any.
    pub password: Option<String>,
    /// The groups it is a member of, as [`Store::group_ref`]s, sorted.
    pub groups: Vec<String>,
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub id: String,
    pub name: String,
    /// Its members as [`Store::user_ref`] / [`Store::group_ref`]s, sorted.
    pub members: Vec<String>,
}

/// `refs`, sorted: member lists are compared as sets.
pub fn sorted(mut refs: Vec<String>) -> Vec<String> {
    refs.sort();
    refs
}

async fn stored_user(store: &impl Store, user_name: &str) -> StoredUser {
    store.user(user_name).await.unwrap_or_else(|| panic!("user {user_name} not stored"))
}

async fn members(store: &impl Store, group: &str) -> Vec<String> {
    store.group(group).await.unwrap_or_else(|| panic!("group {group} not stored")).members
}

/// Okta: look up, create (with a password), find again, refuse a duplicate in another case.
pub async fn okta_create_user(store: &impl Store) {
    let gw = store.gateway().await;

    // 1. Okta looks the user up first.
    let found =
        gw.get(&format!("/Users?filter={}&startIndex=1&count=100", q(r#"userName eq "jdoe@example.com""#))).await;
    assert_eq!(found.status, 200);
    assert_eq!(
        found.body,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
               "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
    assert_eq!(found.header("content-type"), Some("application/scim+json"));

    // 2. Then creates it.
    let created = gw.post("/Users", &okta_user("jdoe@example.com", Some("t3mpP@ss!x"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let user = &created.body;
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["userName"], "jdoe@example.com");
    assert_eq!(user["name"], json!({"givenName": "John", "familyName": "Doe"}));
    // Okta's `primary` is not stored by the shipped rules, so it is not claimed back.
    assert_eq!(user["emails"], json!([{"type": "work", "value": "jdoe@example.com"}]));
    assert_eq!(user["externalId"], "00u1abcd2EFGH3ijk4l5");
    assert_eq!(user["active"], true);
    assert!(user.get("password").is_none(), "password must never be returned");
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["location"], format!("{}/Users/{id}", gw.base));
    assert_eq!(created.header("location"), Some(format!("{}/Users/{id}", gw.base).as_str()));
    assert!(user["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(user["meta"]["lastModified"].is_string());
    let version = user["meta"]["version"].as_str().unwrap();
    assert!(version.starts_with("W/\""));
    assert_eq!(created.header("etag"), Some(version));

    // The store holds it, with the id as its identifier and a hashed password.
    let stored = stored_user(store, "jdoe@example.com").await;
    assert_eq!(stored.id, id);
    assert_eq!(stored.display_name.as_deref(), Some("John Doe"));
    assert_eq!(stored.family_name.as_deref(), Some("Doe"));
    assert_eq!(stored.given_name.as_deref(), Some("John"));
    assert_eq!(stored.email.as_deref(), Some("jdoe@example.com"));
    assert_eq!(stored.external_id.as_deref(), Some("00u1abcd2EFGH3ijk4l5"));
    assert!(store.hashed(stored.password.as_deref().expect("a stored password")), "the password is hashed");
    assert!(store.can_log_in("jdoe@example.com", "t3mpP@ss!x").await);

    // 3. The lookup now finds it, by userName in any case, and by id.
    let found = gw.get(&format!("/Users?filter={}", q(r#"userName eq "JDOE@example.com""#))).await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id);
    let read = gw.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body);

    // 4. A second create with the same userName (other case) is refused; nothing changes.
    let people_before = store.user_count().await;
    let again = gw.post("/Users", &okta_user("JDoe@Example.com", Some("other-pw-1"))).await;
    again.assert_error(409, Some("uniqueness"));
    assert_eq!(store.user_count().await, people_before);
    assert!(store.can_log_in("jdoe@example.com", "t3mpP@ss!x").await, "the first user's password is untouched");
    gw.stop().await;
}

/// Okta: a whole-resource PUT, a userName change (same id), a rename onto a taken name, a
/// stale If-Match.
pub async fn okta_put_and_rename(store: &impl Store) {
    let gw = store.gateway().await;
    let created = gw.post("/Users", &okta_user("ann@example.com", None)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    // A whole-resource update, as Okta sends it (with id).
    let mut body = okta_user("ann@example.com", None);
    body["id"] = id.clone().into();
    body["name"] = json!({"givenName": "Ann", "familyName": "Smith"});
    body["displayName"] = "Ann Smith".into();
    body["title"] = "Engineer".into();
    body.as_object_mut().unwrap().remove("externalId");
    let put = gw.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(put.body["name"]["familyName"], "Smith");
    assert_eq!(put.body["title"], "Engineer");
    assert!(put.body.get("externalId").is_none(), "PUT replaces: an omitted attribute is cleared");
    let stored = stored_user(store, "ann@example.com").await;
    assert_eq!(stored.family_name.as_deref(), Some("Smith"));
    assert_eq!(stored.display_name.as_deref(), Some("Ann Smith"));
    assert_eq!(stored.title.as_deref(), Some("Engineer"));
    assert_eq!(stored.external_id, None);
    assert_ne!(put.body["meta"]["version"], created.body["meta"]["version"]);

    // A userName change renames the record in place: same identifier, same id.
    body["userName"] = "ann.smith@example.com".into();
    let renamed = gw.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    assert_eq!(renamed.body["id"], id.as_str());
    assert_eq!(renamed.body["userName"], "ann.smith@example.com");
    assert!(store.user("ann@example.com").await.is_none());
    let moved = stored_user(store, "ann.smith@example.com").await;
    assert_eq!(moved.id, id);
    assert_eq!(moved.user_name, "ann.smith@example.com", "the old name is gone");
    assert_eq!(gw.get(&format!("/Users/{id}")).await.body["userName"], "ann.smith@example.com");

    // Renaming onto a taken userName is a conflict and changes nothing.
    gw.post("/Users", &okta_user("taken@example.com", None)).await;
    body["userName"] = "TAKEN@example.com".into();
    gw.put(&format!("/Users/{id}"), &body).await.assert_error(409, Some("uniqueness"));
    assert_eq!(stored_user(store, "ann.smith@example.com").await, moved);

    // If-Match with a stale version is refused.
    let stale = created.body["meta"]["version"].as_str().unwrap();
    let ans = gw.raw("PUT", &format!("/Users/{id}"), body.to_string().into_bytes(), None, &[("if-match", stale)]).await;
    ans.assert_error(412, None);
    gw.stop().await;
}

/// Okta: deactivate (the user cannot log in), reactivate, push a new password.
pub async fn okta_deactivate_and_password_push(store: &impl Store) {
    let gw = store.gateway().await;
    let created = gw.post("/Users", &okta_user("bob@example.com", Some("Initial-pw1"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let bob = "bob@example.com";
    assert!(store.can_log_in(bob, "Initial-pw1").await);

    let off = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await;
    assert_eq!(off.status, 200, "{:#}", off.body);
    assert_eq!(off.body["active"], false);
    assert!(!stored_user(store, bob).await.active);
    assert!(!store.can_log_in(bob, "Initial-pw1").await, "a deactivated user cannot log in");
    let listed = gw.get(&format!("/Users?filter={}", q("active eq false"))).await;
    assert_eq!(listed.body["totalResults"], 1);

    let on = gw.patch(&format!("/Users/{id}"), json!([{"op": "Replace", "value": {"active": true}}])).await;
    assert_eq!(on.body["active"], true);
    assert!(stored_user(store, bob).await.active);
    assert!(store.can_log_in(bob, "Initial-pw1").await);

    // Password push: hashed, never echoed.
    let pw = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": "N3w-pass!"}}])).await;
    assert_eq!(pw.status, 200, "{:#}", pw.body);
    assert!(pw.body.get("password").is_none());
    assert!(!pw.body.to_string().contains("N3w-pass!"));
    assert!(store.can_log_in(bob, "N3w-pass!").await);
    assert!(!store.can_log_in(bob, "Initial-pw1").await);
    assert!(store.hashed(stored_user(store, bob).await.password.as_deref().expect("a stored password")));
    gw.stop().await;
}

/// Okta's import: every page of 100 through more users than a size limit, each user once.
pub async fn okta_import_pages(store: &impl Store) {
    // 620 users: past slapd's default size limit of 500 for non-root binds.
    let names: Vec<String> = (0..620).map(|i| format!("user{i:04}")).collect();
    store.seed_users(&names).await;
    let gw = store.gateway().await;
    let mut seen = std::collections::HashSet::new();
    let mut start = 1;
    loop {
        let page = gw.get(&format!("/Users?startIndex={start}&count=100")).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        assert_eq!(page.body["totalResults"], 620);
        assert_eq!(page.body["startIndex"], start);
        let items = page.body["Resources"].as_array().unwrap();
        assert_eq!(page.body["itemsPerPage"], items.len());
        assert_eq!(items.len(), 100.min(620 - (start - 1)));
        for u in items {
            assert!(seen.insert(u["id"].as_str().unwrap().to_owned()), "a user appeared on two pages");
        }
        start += 100;
        if start > 620 {
            break;
        }
    }
    assert_eq!(seen.len(), 620);
    let past = gw.get("/Users?startIndex=1000&count=100").await;
    assert_eq!((past.body["totalResults"].as_u64(), past.body["itemsPerPage"].as_u64()), (Some(620), Some(0)));
    let counted = gw.get("/Users?count=0").await;
    assert_eq!(counted.body["totalResults"], 620);
    assert_eq!(counted.body["Resources"], json!([]));
    gw.stop().await;
}

/// `attributes` / `excludedAttributes` and `POST /Users/.search` with a value filter.
pub async fn projection_and_search(store: &impl Store) {
    let gw = store.gateway().await;
    let id = gw.post("/Users", &okta_user("proj@example.com", None)).await.body["id"].as_str().unwrap().to_owned();
    let only = gw.get(&format!("/Users/{id}?attributes=userName,name.givenName")).await;
    assert_eq!(
        only.body,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "proj@example.com",
               "name": {"givenName": "John"}})
    );
    let without = gw.get(&format!("/Users?excludedAttributes=emails,meta&filter={}", q(r#"userName sw "proj""#))).await;
    let r = &without.body["Resources"][0];
    assert!(r.get("emails").is_none() && r.get("meta").is_none() && r["userName"] == "proj@example.com");
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": "emails[type eq \"work\" and value co \"proj@\"]", "attributes": ["userName"], "count": 10});
    let found = gw.post("/Users/.search", &search).await;
    assert_eq!(found.status, 200, "{:#}", found.body);
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(
        found.body["Resources"][0],
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "proj@example.com"})
    );
    gw.stop().await;
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Entra: externalId lookups, PATCH with capitalised ops, value-filter paths, string booleans,
/// extension attributes, dotted keys, DELETE.
pub async fn entra_patch_forms_and_delete(store: &impl Store) {
    let gw = store.gateway().await;
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
    let ray = "ray@example.com";
    let stored = stored_user(store, ray).await;
    assert_eq!(stored.given_name.as_deref(), Some("Ray"));
    assert_eq!(stored.email.as_deref(), Some("ray@example.com"));
    assert_eq!(stored.department.as_deref(), Some("R&D"));
    assert_eq!(stored.display_name.as_deref(), Some("Ray Doe"));
    assert!(!stored.active);

    // Path-less replace with Entra's dotted keys and an extension object; then "True".
    let again = gw
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "value": {"name.familyName": "Ray-Doe", ENTERPRISE: {"employeeNumber": "1001"}, "active": "True"}}]),
        )
        .await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    let stored = stored_user(store, ray).await;
    assert_eq!(stored.family_name.as_deref(), Some("Ray-Doe"));
    assert_eq!(stored.employee_number.as_deref(), Some("1001"));
    assert!(stored.active);

    // Remove with a value filter clears just that element.
    let removed =
        gw.patch(&format!("/Users/{id}"), json!([{"op": "Remove", "path": "emails[type eq \"work\"]"}])).await;
    assert_eq!(removed.status, 200, "{:#}", removed.body);
    assert!(removed.body.get("emails").is_none());
    assert_eq!(stored_user(store, ray).await.email, None);

    // DELETE, then the user is gone for every endpoint.
    let deleted = gw.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    assert!(store.user(ray).await.is_none());
    gw.get(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.delete(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.stop().await;
}

/// Filters through the mapping: and/or/not, sw/co/ew/pr, value paths, meta dates, and hostile
/// values (LDAP and SQL syntax alike) that match nothing and break nothing.
pub async fn filters_through_the_mapping(store: &impl Store) {
    let gw = store.gateway().await;
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
    for hostile in [r#"*)(uid=*"#, r#")(|(objectClass=*)"#, r#"\u0000"#, "*", r#"' OR '1'='1"#, "%", "_%"] {
        assert_eq!(count(&format!(r#"userName eq "{hostile}""#)).await, 0, "{hostile}");
    }
    assert_eq!(store.user_count().await, 3);
    gw.stop().await;
}

fn group(name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

/// Creates users `{name}@example.com` through the gateway and returns their ids.
pub async fn create_users(gw: &TestGateway, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in names {
        let a = gw.post("/Users", &okta_user(&format!("{n}@example.com"), None)).await;
        assert_eq!(a.status, 201, "{:#}", a.body);
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Okta "Push Groups": create empty, add members, remove, an unknown member refused, rename,
/// PUT with the whole list, reads and filters, a duplicate name, DELETE.
pub async fn okta_push_groups(store: &impl Store) {
    let gw = store.gateway().await;
    let ids = create_users(&gw, &["amy", "ben", "cal"]).await;
    let (amy, ben, cal) = (&ids[0], &ids[1], &ids[2]);
    let user = |n: &str| store.user_ref(&format!("{n}@example.com"));

    let none = gw.get(&format!("/Groups?filter={}&startIndex=1&count=100", q(r#"displayName eq "Engineering""#))).await;
    assert_eq!(none.body["totalResults"], 0);
    let created = gw.post("/Groups", &group("Engineering", json!([]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    assert_eq!(created.body["members"], json!([]));
    assert_eq!(created.body["meta"]["resourceType"], "Group");
    assert_eq!(created.header("location"), Some(format!("{}/Groups/{id}", gw.base).as_str()));
    let stored = store.group("Engineering").await.expect("group stored");
    assert_eq!(stored.members, store.empty_members(), "an empty group as the store holds one");
    assert_eq!(stored.id, id);

    // Okta adds members with a members array (display included).
    let added = gw
        .patch(&format!("{path}?attributes=members"), json!([{"op": "add", "path": "members", "value": [{"value": amy, "display": "amy@example.com"}, {"value": ben}]}]))
        .await;
    assert_eq!(added.status, 200, "{:#}", added.body);
    assert_eq!(member_ids(&added.body), sorted(vec![amy.clone(), ben.clone()]));
    assert_eq!(added.body["members"][0]["type"], "User");
    assert_eq!(members(store, "Engineering").await, sorted(vec![user("amy"), user("ben")]), "no stand-in left");
    // The user's groups as stored, and `groups` in SCIM.
    assert_eq!(stored_user(store, "amy@example.com").await.groups, [store.group_ref("Engineering")]);
    let amy_user = gw.get(&format!("/Users/{amy}")).await;
    assert_eq!(
        amy_user.body["groups"],
        json!([{"value": id, "type": "direct", "display": "Engineering", "$ref": format!("{}/Groups/{id}", gw.base)}])
    );

    // Twice is not an error; removing an absent member is not an error either.
    // Without attributes asked for, a group PATCH answers 204: no member list is read back.
    assert_eq!(gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": amy}]}])).await.status, 204);
    let removed = gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{amy}\"]")}])).await;
    assert_eq!(removed.status, 204, "{:#}", removed.body);
    assert_eq!(members(store, "Engineering").await, [user("ben")]);
    assert_eq!(
        gw.patch(&path, json!([{"op": "remove", "path": format!("members[value eq \"{amy}\"]")}])).await.status,
        204
    );

    // An unknown member is refused and changes nothing.
    let unknown = gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": cal}, {"value": "00000000-0000-4000-8000-000000000000"}]}])).await;
    unknown.assert_error(400, Some("invalidValue"));
    assert_eq!(members(store, "Engineering").await, [user("ben")]);

    // Removing the last member leaves an empty group; SCIM never shows a stand-in.
    let emptied = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "remove", "path": format!("members[value eq \"{ben}\"]")}]),
        )
        .await;
    assert_eq!(emptied.status, 200, "{:#}", emptied.body);
    assert_eq!(emptied.body["members"], json!([]));
    assert_eq!(members(store, "Engineering").await, store.empty_members());

    // Rename, Okta's way: value object with the id; the group is renamed in place.
    let renamed = gw
        .patch(
            &format!("{path}?excludedAttributes=members"),
            json!([{"op": "replace", "value": {"id": id, "displayName": "Engineering EU"}}]),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    assert_eq!(renamed.body["displayName"], "Engineering EU");
    assert!(store.group("Engineering").await.is_none());
    assert_eq!(store.group("Engineering EU").await.expect("renamed group").id, id);

    // PUT with the whole list applies the difference.
    gw.patch(&path, json!([{"op": "add", "path": "members", "value": [{"value": amy}, {"value": ben}]}])).await;
    let mut body = group("Engineering EU", json!([{"value": ben}, {"value": cal}]));
    body["id"] = id.clone().into();
    let put = gw.put(&path, &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(members(store, "Engineering EU").await, sorted(vec![user("ben"), user("cal")]));

    // Reads that leave members out; filters on displayName and on members.
    let lean = gw.get(&format!("{path}?excludedAttributes=members")).await;
    assert!(lean.body.get("members").is_none());
    assert_eq!(lean.body["displayName"], "Engineering EU");
    let named = gw.get(&format!("{path}?attributes=displayName")).await;
    assert_eq!(
        named.body,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": id, "displayName": "Engineering EU"})
    );
    let by_name =
        gw.get(&format!("/Groups?excludedAttributes=members&filter={}", q(r#"displayName eq "Engineering EU""#))).await;
    assert_eq!(by_name.body["totalResults"], 1);
    assert!(by_name.body["Resources"][0].get("members").is_none());
    let by_member = gw.get(&format!("/Groups?filter={}", q(&format!(r#"members[value eq "{cal}"]"#)))).await;
    assert_eq!(by_member.body["totalResults"], 1, "{:#}", by_member.body);
    let not_member = gw.get(&format!("/Groups?filter={}", q(&format!(r#"members.value eq "{amy}""#)))).await;
    assert_eq!(not_member.body["totalResults"], 0);

    // A duplicate name conflicts; DELETE removes the group (and the users' membership with it).
    gw.post("/Groups", &group("Engineering EU", json!([]))).await.assert_error(409, Some("uniqueness"));
    assert_eq!(gw.delete(&path).await.status, 204);
    assert!(store.group("Engineering EU").await.is_none());
    gw.get(&path).await.assert_error(404, None);
    assert!(stored_user(store, "ben@example.com").await.groups.is_empty());
    gw.stop().await;
}

/// Entra's group provisioning: create with a member, capitalised ops, a group in a group
/// (or its refusal where the store has no nested groups), replace and remove the whole list,
/// a deleted user leaving its groups.
pub async fn entra_group_flows(store: &impl Store) {
    let gw = store.gateway().await;
    let ids = create_users(&gw, &["dee", "eve"]).await;
    let (dee, eve) = (&ids[0], &ids[1]);
    let user = |n: &str| store.user_ref(&format!("{n}@example.com"));
    let created = gw.post("/Groups", &group("Sales", json!([{"value": dee}]))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    assert_eq!(members(store, "Sales").await, [user("dee")]);

    let lookup = gw.get(&format!("/Groups?excludedAttributes=members&filter={}", q(r#"displayName eq "Sales""#))).await;
    assert_eq!(lookup.body["Resources"][0]["id"], id.as_str());

    assert_eq!(gw.patch(&path, json!([{"op": "Add", "path": "members", "value": [{"value": eve}]}])).await.status, 204);
    assert_eq!(members(store, "Sales").await, sorted(vec![user("dee"), user("eve")]));
    let r = gw.patch(&path, json!([{"op": "Remove", "path": "members", "value": [{"value": dee}]}])).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    assert_eq!(members(store, "Sales").await, [user("eve")]);

    // A group as a member of another.
    let nested = group("All", json!([{"value": id, "type": "Group"}, {"value": dee}]));
    if store.nested_groups() {
        let parent = gw.post("/Groups", &nested).await;
        assert_eq!(parent.status, 201, "{:#}", parent.body);
        let kinds: Vec<&str> =
            parent.body["members"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"Group") && kinds.contains(&"User"), "{kinds:?}");
        assert_eq!(members(store, "All").await, sorted(vec![store.group_ref("Sales"), user("dee")]));
    } else {
        gw.post("/Groups", &nested).await.assert_error(400, Some("invalidValue"));
        assert!(store.group("All").await.is_none(), "nothing created");
        let parent = gw.post("/Groups", &group("All", json!([{"value": dee}]))).await;
        assert_eq!(parent.status, 201, "{:#}", parent.body);
    }

    // Replace the whole list; remove all.
    let r = gw
        .patch(
            &format!("{path}?attributes=members"),
            json!([{"op": "replace", "path": "members", "value": [{"value": dee}]}]),
        )
        .await;
    assert_eq!(member_ids(&r.body), std::slice::from_ref(dee));
    assert_eq!(members(store, "Sales").await, [user("dee")]);
    let r = gw.patch(&format!("{path}?attributes=members"), json!([{"op": "remove", "path": "members"}])).await;
    assert_eq!(r.body["members"], json!([]));
    assert_eq!(members(store, "Sales").await, store.empty_members());

    // Deleting a user takes it out of its groups.
    assert_eq!(gw.delete(&format!("/Users/{dee}")).await.status, 204);
    let left = if store.nested_groups() { vec![store.group_ref("Sales")] } else { store.empty_members() };
    assert_eq!(members(store, "All").await, left);
    gw.stop().await;
}
