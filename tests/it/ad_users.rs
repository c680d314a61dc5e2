//! Okta's and Entra ID's user flows against a real Samba AD DC, through the shipped
//! presets/active-directory.toml; every step also reads the AD entry back directly.
//! The tests share one DC (tests/common/samba.rs); each works in its own OU.

use crate::common;

use common::gateway::{okta_user, q, TestGateway};
use common::samba::Samba;
use ldap3::SearchEntry;
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The user with userPrincipalName `user_name` in `ou`, with the attributes these tests look at.
async fn ad_user(samba: &Samba, ou: &str, user_name: &str) -> Option<SearchEntry> {
    let attrs = [
        "userPrincipalName",
        "sAMAccountName",
        "userAccountControl",
        "objectGUID",
        "givenName",
        "sn",
        "mail",
        "displayName",
        "description",
        "department",
        "title",
        "uSNChanged",
    ];
    let filter = format!("(userPrincipalName={})", ldap3::ldap_escape(user_name));
    let mut found = samba.search(ou, &filter, &attrs).await;
    assert!(found.len() <= 1, "{user_name}: {} entries", found.len());
    found.pop()
}

/// objectGUID as the GUID string AD tools show (first three fields little-endian).
fn guid(e: &SearchEntry) -> String {
    let bytes: [u8; 16] = match e.bin_attrs.get("objectGUID") {
        Some(v) => v[0].clone().try_into().unwrap(),
        None => e.attrs["objectGUID"][0].as_bytes().try_into().unwrap(),
    };
    uuid::Uuid::from_bytes_le(bytes).to_string()
}

fn uac(e: &SearchEntry) -> u32 {
    e.attrs["userAccountControl"][0].parse().unwrap()
}

async fn gateway(samba: &Samba, ou: &str) -> TestGateway {
    TestGateway::from_text(samba.preset(ou)).await
}

#[tokio::test]
async fn okta_create_lookup_and_conflict() {
    let samba = Samba::shared();
    let ou = samba.ou("okta-create").await;
    let gw = gateway(samba, &ou).await;

    let none =
        gw.get(&format!("/Users?filter={}&startIndex=1&count=100", q(r#"userName eq "jdoe@example.test""#))).await;
    assert_eq!((none.status.as_u16(), &none.body["totalResults"]), (200, &json!(0)), "{:#}", none.body);

    let created = gw.post("/Users", &okta_user("jdoe@example.test", Some("t3mpP@ss!x"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let u = &created.body;
    let id = u["id"].as_str().unwrap();
    assert_eq!(u["userName"], "jdoe@example.test");
    assert_eq!(u["active"], true);
    assert_eq!(u["name"], json!({"givenName": "John", "familyName": "Doe"}));
    assert!(u.get("password").is_none());
    assert!(u["meta"]["created"].as_str().unwrap().ends_with('Z'), "{u:#}");
    let version = u["meta"]["version"].as_str().unwrap();
    assert!(version.trim_start_matches("W/\"").trim_end_matches('"').parse::<u64>().is_ok(), "uSNChanged: {version}");

    // In AD: the id is the objectGUID; a normal, enabled account; sAMAccountName derived.
    let e = ad_user(samba, &ou, "jdoe@example.test").await.expect("AD entry");
    assert_eq!(guid(&e), id);
    assert_eq!(e.attrs["userPrincipalName"], ["jdoe@example.test"]);
    assert_eq!(e.attrs["sAMAccountName"], ["jdoe"]);
    assert_eq!(uac(&e), 0x200, "NORMAL_ACCOUNT, enabled");
    assert_eq!(e.attrs["description"], ["00u1abcd2EFGH3ijk4l5"]);
    assert!(samba.can_bind("jdoe@example.test", "t3mpP@ss!x").await, "unicodePwd took the password");
    assert!(!samba.can_bind("jdoe@example.test", "wrong-pass-1").await);

    // Found by userName (any case), by id, by an `id eq` filter (objectGUID as escaped bytes).
    let found = gw.get(&format!("/Users?filter={}", q(r#"userName eq "JDoe@Example.test""#))).await;
    assert_eq!(found.body["totalResults"], 1, "{:#}", found.body);
    assert_eq!(gw.get(&format!("/Users/{id}")).await.body, created.body);
    let by_id = gw.get(&format!("/Users?filter={}", q(&format!(r#"id eq "{id}""#)))).await;
    assert_eq!(by_id.body["Resources"][0]["id"], id, "{:#}", by_id.body);
    gw.get("/Users/00000000-0000-4000-8000-000000000000").await.assert_error(404, None);
    gw.get("/Users/not-a-guid").await.assert_error(404, None);

    // The same userName again: 409, and AD holds one such user.
    gw.post("/Users", &okta_user("JDOE@example.test", Some("t3mpP@ss!y"))).await.assert_error(409, Some("uniqueness"));
    let holders = samba.search(&ou, "(userPrincipalName=jdoe@example.test)", &["cn"]).await;
    assert_eq!(holders.len(), 1);
    let detail = gw.post("/Users", &okta_user("JDOE@example.test", None)).await.body["detail"].to_string();
    assert!(detail.contains("userName"), "a real conflict names the userName: {detail}");
    // Another userName with the same part before '@' gets the next sAMAccountName.
    let other = gw.post("/Users", &okta_user("jdoe@other.test", None)).await;
    assert_eq!(other.status, 201, "{:#}", other.body);
    assert_eq!(ad_user(samba, &ou, "jdoe@other.test").await.unwrap().attrs["sAMAccountName"], ["jdoe1"]);
    gw.stop().await;
}

#[tokio::test]
async fn create_without_password_is_disabled_and_names_are_checked() {
    let samba = Samba::shared();
    let ou = samba.ou("no-password").await;
    let gw = gateway(samba, &ou).await;
    let created = gw.post("/Users", &okta_user("nopw@example.test", None)).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["active"], false, "no password: created disabled, and shown so");
    let e = ad_user(samba, &ou, "nopw@example.test").await.unwrap();
    assert_eq!(uac(&e), 0x202);

    // A password and active = true together enable it.
    let id = created.body["id"].as_str().unwrap();
    let on = gw
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"password": "Fresh-pass-9", "active": true}}]),
        )
        .await;
    assert_eq!(on.status, 200, "{:#}", on.body);
    assert_eq!(on.body["active"], true);
    assert_eq!(uac(&ad_user(samba, &ou, "nopw@example.test").await.unwrap()), 0x200);
    assert!(samba.can_bind("nopw@example.test", "Fresh-pass-9").await);

    // What AD cannot hold in a sAMAccountName is cut or dropped by the preset's rules.
    for (name, sam) in
        [("a-very-long-login-name-here@example.test", "a-very-long-login-na"), ("semi;colon@example.test", "semicolon")]
    {
        let a = gw.post("/Users", &okta_user(name, None)).await;
        assert_eq!(a.status, 201, "{:#}", a.body);
        assert_eq!(ad_user(samba, &ou, name).await.unwrap().attrs["sAMAccountName"], [sam]);
    }
    gw.stop().await;

    // Without those rules, the check before AD is asked still gives a clear 400, and nothing is created.
    let bare = samba
        .preset(&ou)
        .replace("characters = { forbidden = \"\\\"/\\\\[]:;|=,+*?<>@\", not_at_end = \".\" }\nmax_length = 20\n", "");
    assert!(!bare.contains("max_length = 20"), "the rules were taken out");
    let gw = TestGateway::from_text(bare).await;
    for bad in ["another-long-login-name@example.test", "x[1]@example.test"] {
        let a = gw.post("/Users", &okta_user(bad, None)).await;
        a.assert_error(400, Some("invalidValue"));
        assert!(a.body["detail"].as_str().unwrap().contains("sAMAccountName"), "{:#}", a.body);
    }
    assert_eq!(samba.search(&ou, "(objectClass=user)", &["cn"]).await.len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn rename_keeps_the_object_guid() {
    let samba = Samba::shared();
    let ou = samba.ou("rename").await;
    let gw = gateway(samba, &ou).await;
    let created = gw.post("/Users", &okta_user("ann@example.test", Some("Ann-pass-1"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let before = ad_user(samba, &ou, "ann@example.test").await.unwrap();

    let mut body = okta_user("ann.smith@example.test", None);
    body["id"] = id.clone().into();
    body["name"] = json!({"givenName": "Ann", "familyName": "Smith"});
    body["title"] = "Engineer".into();
    let put = gw.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(put.body["id"], id.as_str());
    assert_eq!(put.body["userName"], "ann.smith@example.test");
    assert_ne!(put.body["meta"]["version"], created.body["meta"]["version"]);
    assert!(ad_user(samba, &ou, "ann@example.test").await.is_none());
    let after = ad_user(samba, &ou, "ann.smith@example.test").await.expect("renamed");
    assert_eq!(guid(&after), guid(&before), "objectGUID stable across the rename");
    assert_eq!(guid(&after), id);
    assert_eq!(after.attrs["sAMAccountName"], ["ann"], "the logon name chosen on create stays");
    assert_eq!(after.attrs["userPrincipalName"], ["ann.smith@example.test"]);
    assert_eq!(after.attrs["sn"], ["Smith"]);
    assert_eq!(after.attrs["title"], ["Engineer"]);
    assert!(samba.can_bind("ann.smith@example.test", "Ann-pass-1").await, "the password moved with it");

    // If-Match with the old version (uSNChanged) is refused.
    let stale = created.body["meta"]["version"].as_str().unwrap();
    let ans = gw.raw("PUT", &format!("/Users/{id}"), body.to_string().into_bytes(), None, &[("if-match", stale)]).await;
    ans.assert_error(412, None);
    gw.stop().await;
}

#[tokio::test]
async fn deactivate_reactivate_and_password_push() {
    let samba = Samba::shared();
    let ou = samba.ou("activation").await;
    let gw = gateway(samba, &ou).await;
    let created = gw.post("/Users", &okta_user("bob@example.test", Some("Initial-pw1"))).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let dn = format!("CN=bob@example.test,{ou}");
    // Another bit set behind the gateway's back: DONT_EXPIRE_PASSWORD (0x10000).
    let mut admin = samba.admin().await;
    let set = ldap3::Mod::Replace("userAccountControl", ["66048"].into());
    admin.modify(&dn, vec![set]).await.unwrap().success().unwrap();

    let off = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await;
    assert_eq!(off.status, 200, "{:#}", off.body);
    assert_eq!(off.body["active"], false);
    assert_eq!(uac(&ad_user(samba, &ou, "bob@example.test").await.unwrap()), 0x10202, "only 0x2 changed");
    let Err(refused) = samba.try_bind("bob@example.test", "Initial-pw1").await else { panic!("a disabled user bound") };
    let refused = refused.to_string();
    assert!(refused.contains("data 533"), "AD says: account disabled: {refused}");
    let inactive = gw.get(&format!("/Users?filter={}", q("active eq false"))).await;
    assert_eq!(inactive.body["totalResults"], 1, "{:#}", inactive.body);
    assert_eq!(gw.get(&format!("/Users?filter={}", q("active eq true"))).await.body["totalResults"], 0);

    let on = gw.patch(&format!("/Users/{id}"), json!([{"op": "Replace", "path": "active", "value": "True"}])).await;
    assert_eq!(on.body["active"], true, "{:#}", on.body);
    assert_eq!(uac(&ad_user(samba, &ou, "bob@example.test").await.unwrap()), 0x10200);
    assert!(samba.can_bind("bob@example.test", "Initial-pw1").await);

    // Password push through unicodePwd; never echoed.
    let pw = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": "N3w-pass!"}}])).await;
    assert_eq!(pw.status, 200, "{:#}", pw.body);
    assert!(!pw.body.to_string().contains("N3w-pass!"));
    assert!(samba.can_bind("bob@example.test", "N3w-pass!").await);
    // (The old password may still bind for a while: AD's "old password allowed period".)

    // The domain's password policy refuses a short one: 400 with AD's reason, no echo.
    let weak = gw.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"password": "abc"}}])).await;
    weak.assert_error(400, Some("invalidValue"));
    let detail = weak.body["detail"].as_str().unwrap();
    assert!(detail.contains("password policy") && detail.contains("too short"), "{detail}");
    assert!(!detail.contains("\"abc\"") && !detail.contains(": abc"), "{detail}");
    assert!(samba.can_bind("bob@example.test", "N3w-pass!").await, "unchanged");
    // And on create: nothing is left behind.
    gw.post("/Users", &okta_user("weak@example.test", Some("abc"))).await.assert_error(400, Some("invalidValue"));
    assert!(ad_user(samba, &ou, "weak@example.test").await.is_none());
    gw.stop().await;
}

#[tokio::test]
async fn entra_patch_forms_and_delete() {
    let samba = Samba::shared();
    let ou = samba.ou("entra").await;
    let gw = gateway(samba, &ou).await;
    let mut body = okta_user("ray@example.test", Some("Ray-pass-1"));
    body["externalId"] = "entra-object-42".into();
    let created = gw.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();

    let by_ext = gw.get(&format!("/Users?filter={}", q(r#"externalId eq "entra-object-42""#))).await;
    assert_eq!(by_ext.body["Resources"][0]["id"], id.as_str(), "{:#}", by_ext.body);
    let patched = gw
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "name.givenName", "value": "Ray"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ray.doe@example.test"},
                {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"},
                {"op": "Replace", "path": "displayName", "value": "Ray Doe"},
            ]),
        )
        .await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    assert_eq!(patched.body["active"], false);
    assert_eq!(patched.body[ENTERPRISE]["department"], "R&D");
    let e = ad_user(samba, &ou, "ray@example.test").await.unwrap();
    assert_eq!(e.attrs["givenName"], ["Ray"]);
    assert_eq!(e.attrs["mail"], ["ray.doe@example.test"]);
    assert_eq!(e.attrs["department"], ["R&D"]);
    assert_eq!(e.attrs["displayName"], ["Ray Doe"]);
    assert_eq!(uac(&e) & 0x2, 0x2);

    let removed =
        gw.patch(&format!("/Users/{id}"), json!([{"op": "Remove", "path": "emails[type eq \"work\"]"}])).await;
    assert_eq!(removed.status, 200, "{:#}", removed.body);
    assert!(!ad_user(samba, &ou, "ray@example.test").await.unwrap().attrs.contains_key("mail"));

    assert_eq!(gw.delete(&format!("/Users/{id}")).await.status, 204);
    assert!(ad_user(samba, &ou, "ray@example.test").await.is_none());
    gw.get(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.delete(&format!("/Users/{id}")).await.assert_error(404, None);
    gw.stop().await;
}

#[tokio::test]
async fn import_with_small_pages() {
    let samba = Samba::shared();
    let ou = samba.ou("import").await;
    let mut admin = samba.admin().await;
    for i in 0..45 {
        let (cn, sam) = (format!("imp{i:02}@example.test"), format!("imp{i:02}"));
        let attrs = vec![
            ("objectClass", ["top", "person", "organizationalPerson", "user"].into()),
            ("sAMAccountName", [sam.as_str()].into()),
            ("userPrincipalName", [cn.as_str()].into()),
        ];
        admin.add(&format!("CN={cn},{ou}"), attrs).await.unwrap().success().unwrap();
    }
    // LDAP pages of 7 entries underneath, SCIM pages of 10 on top.
    let gw = TestGateway::from_text(samba.preset(&ou).replace("page_size = 1000", "page_size = 7")).await;
    let mut seen = std::collections::HashSet::new();
    for start in (1..=45).step_by(10) {
        let page = gw.get(&format!("/Users?startIndex={start}&count=10")).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        assert_eq!(page.body["totalResults"], 45);
        for u in page.body["Resources"].as_array().unwrap() {
            assert!(seen.insert(u["id"].as_str().unwrap().to_owned()), "a user on two pages");
            // AD creates accounts disabled unless told otherwise.
            assert_eq!(u["active"], false);
        }
    }
    assert_eq!(seen.len(), 45);
    gw.stop().await;
}

#[tokio::test]
async fn missing_rights_are_403_with_a_hint() {
    let samba = Samba::shared();
    let ou = samba.ou("rights").await;
    // A service account with no delegated rights on the OU.
    let mut admin = samba.admin().await;
    let attrs = vec![
        ("objectClass", ["top", "person", "organizationalPerson", "user"].into()),
        ("sAMAccountName", ["svc-norights"].into()),
        ("userPrincipalName", ["svc-norights@example.test"].into()),
        ("userAccountControl", ["512"].into()),
    ];
    admin.add(&format!("CN=svc-norights,{ou}"), attrs).await.unwrap().success().unwrap();
    let pwd = ldap3::Mod::Replace(b"unicodePwd".to_vec(), [common::samba::unicode_pwd("Svc-pass-1")].into());
    admin.modify(&format!("CN=svc-norights,{ou}"), vec![pwd]).await.unwrap().success().unwrap();
    let text = samba
        .preset(&ou)
        .replace(common::samba::ADMIN, "svc-norights@example.test")
        .replace(common::samba::ADMIN_PASSWORD, "Svc-pass-1");
    let gw = TestGateway::from_text(text).await;
    let denied = gw.post("/Users", &okta_user("eve@example.test", Some("Eve-pass-1"))).await;
    denied.assert_error(403, None);
    let detail = denied.body["detail"].as_str().unwrap();
    assert!(detail.contains("delegate control"), "{detail}");
    assert!(!detail.contains("Eve-pass-1") && !detail.contains("Svc-pass-1"));
    gw.stop().await;
}

#[tokio::test]
async fn the_preset_checks_clean_against_the_schema() {
    let samba = Samba::shared();
    let loaded = scim_gateway::config::Loaded::parse(
        "active-directory.toml",
        samba.preset(&format!("OU=nowhere,{}", common::samba::BASE)),
    )
    .expect("preset");
    let gateway = scim_gateway::Gateway::new(&loaded).expect("gateway");
    let findings = gateway.check_schema().await.expect("AD's subschema read");
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f, scim_gateway::mapping::Finding::Error(_)))
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn filters_and_sorting_through_the_mapping() {
    let samba = Samba::shared();
    let ou = samba.ou("filters").await;
    let gw = gateway(samba, &ou).await;
    for (name, title) in [("amy", "Engineer"), ("ben", "Manager"), ("cat", "Engineer")] {
        let mut u = okta_user(&format!("{name}@example.test"), Some("Filter-pass-1"));
        u["title"] = title.into();
        assert_eq!(gw.post("/Users", &u).await.status, 201);
    }
    let count = async |filter: &str| gw.total(filter).await;
    assert_eq!(count(r#"title eq "Engineer""#).await, 2);
    assert_eq!(count(r#"title eq "Engineer" and userName sw "c""#).await, 1);
    assert_eq!(count(r#"not (title eq "Engineer")"#).await, 1);
    assert_eq!(count(r#"userName ew "n@example.test""#).await, 1);
    assert_eq!(count(r#"emails.value eq "ben@example.test""#).await, 1);
    // whenChanged / whenCreated compared as generalized time.
    assert_eq!(count(r#"meta.lastModified gt "2000-01-01T00:00:00Z""#).await, 3);
    assert_eq!(count(r#"meta.created lt "2000-01-01T00:00:00Z""#).await, 0);
    assert_eq!(count(r#"active eq true"#).await, 3);
    for hostile in [r#"*)(cn=*"#, r#")(|(objectClass=*)"#, "*"] {
        assert_eq!(count(&format!(r#"userName eq "{hostile}""#)).await, 0, "{hostile}");
    }
    let sorted = gw.get("/Users?sortBy=userName&sortOrder=descending").await;
    let names: Vec<&str> =
        sorted.body["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["cat@example.test", "ben@example.test", "amy@example.test"], "{:#}", sorted.body);
    gw.stop().await;
}

#[tokio::test]
async fn starttls_carries_passwords_too() {
    let samba = Samba::shared();
    let ou = samba.ou("starttls").await;
    let text =
        samba.preset(&ou).replace(&samba.ldaps_url, &samba.ldap_url).replace("page_size = 1000", "starttls = true");
    let gw = TestGateway::from_text(text).await;
    let created = gw.post("/Users", &okta_user("tls@example.test", Some("Start-tls-1"))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["active"], true);
    assert!(samba.can_bind("tls@example.test", "Start-tls-1").await);
    gw.stop().await;
}

/// The three names of issue 17, and more, each created with a valid, distinct sAMAccountName read
/// back from AD; a sAMAccountName held by an account outside the gateway's OU is skipped too.
#[tokio::test]
async fn account_names_never_refuse_a_person() {
    let samba = Samba::shared();
    let ou = samba.ou("naming").await;
    // An account elsewhere in the domain already holds "sam".
    let elsewhere = samba.ou("naming-elsewhere").await;
    let mut admin = samba.admin().await;
    let attrs = vec![
        ("objectClass", ["top", "person", "organizationalPerson", "user"].into()),
        ("sAMAccountName", ["sam"].into()),
    ];
    admin.add(&format!("CN=sam-elsewhere,{elsewhere}"), attrs).await.unwrap().success().unwrap();
    let gw = gateway(samba, &ou).await;
    let long = "christopher.alexander.montgomery.smithso"; // 40 characters
    let cases = [
        (format!("{long}@example.test"), "christopher.alexande"),
        ("jane.roe+sales@example.test".into(), "jane.roesales"),
        ("jane.roe@example.test".into(), "jane.roe"),
        ("jane.roe@sub.example.test".into(), "jane.roe1"),
        ("Zoë.Müller@example.test".into(), "Zoe.Muller"),
        ("sam@sub.example.test".into(), "sam1"),
        ("sam@other.test".into(), "sam2"),
        ("Sam@third.test".into(), "Sam3"),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (user_name, expected) in &cases {
        let created = gw.post("/Users", &okta_user(user_name, Some("Naming-pass-1"))).await;
        assert_eq!(created.status, 201, "{user_name}: {:#}", created.body);
        let e = ad_user(samba, &ou, user_name).await.expect("AD entry");
        let sam = &e.attrs["sAMAccountName"][0];
        assert_eq!(sam, expected, "{user_name}");
        assert!(sam.chars().count() <= 20 && sam.is_ascii() && !sam.ends_with('.'), "{sam}");
        assert!(!sam.contains(|c| "\"/\\[]:;|=,+*?<>@".contains(c)), "{sam}");
        assert!(seen.insert(sam.to_lowercase()), "distinct: {sam}");
        assert_eq!(e.attrs["userPrincipalName"], [user_name.as_str()]);
    }
    assert!(samba.can_bind("Zoë.Müller@example.test", "Naming-pass-1").await);

    // Samba: sam@example.test (the realm) implies the sAMAccountName "sam", which the other
    // account holds; no candidate helps, and AD's words say so.
    let implied = gw.post("/Users", &okta_user("sam@example.test", None)).await;
    implied.assert_error(400, Some("invalidValue"));
    let detail = implied.body["detail"].as_str().unwrap();
    assert!(detail.contains("sAMAccountName 'sam'") && detail.contains("userPrincipalName"), "{detail}");

    // A real userName conflict: 409, naming the userName, and nothing added.
    let again = gw.post("/Users", &okta_user("sam@sub.example.test", None)).await;
    again.assert_error(409, Some("uniqueness"));
    let detail = again.body["detail"].as_str().unwrap();
    assert!(detail.contains("userName") && detail.contains("sam@sub.example.test"), "{detail}");
    assert_eq!(samba.search(&ou, "(objectClass=user)", &["cn"]).await.len(), cases.len());
    gw.stop().await;

    // The preset without `unique`: the taken value is named, not a DN that does not exist.
    let text = samba.preset(&ou).replace("unique = { suffixes = 99, base = \"DC=example,DC=test\" }", "");
    assert!(!text.contains("suffixes = 99"));
    let gw = TestGateway::from_text(text).await;
    let taken = gw.post("/Users", &okta_user("jane.roe@fourth.test", None)).await;
    taken.assert_error(400, Some("invalidValue"));
    let detail = &taken.body["detail"];
    assert_eq!(detail, r#"sAMAccountName "jane.roe" is already used by another account"#, "{:#}", taken.body);
    assert!(ad_user(samba, &ou, "jane.roe@fourth.test").await.is_none());
    gw.stop().await;
}

/// Two gateway processes create users whose sAMAccountName has the same base, all at once:
/// every create succeeds, with distinct values (AD refuses a duplicate; the loser moves on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_processes_get_distinct_account_names() {
    use common::process::GatewayProcess;
    const PROCESSES: usize = 2;
    const PER_PROCESS: usize = 6;
    let samba = Samba::shared();
    let ou = samba.ou("naming-race").await;
    let processes: Vec<GatewayProcess> = (0..PROCESSES).map(|_| GatewayProcess::spawn(&samba.preset(&ou))).collect();
    let elapsed = common::process::race_creates(&processes, "adracer", PER_PROCESS).await;
    let entries = samba.search(&ou, "(objectClass=user)", &["sAMAccountName"]).await;
    let names: std::collections::BTreeSet<String> =
        entries.iter().map(|e| e.attrs["sAMAccountName"][0].to_lowercase()).collect();
    assert_eq!(entries.len(), PROCESSES * PER_PROCESS);
    assert_eq!(names.len(), entries.len(), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("adracer") && n.len() <= 20), "{names:?}");
    let retries: usize = processes.iter().map(|p| p.log().matches("taken meanwhile").count()).sum();
    println!(
        "AD race: {} creates from {PROCESSES} processes, all 201, {} distinct sAMAccountNames, {retries} candidates \
         refused by AD and retried, {:.2} s",
        entries.len(),
        names.len(),
        elapsed.as_secs_f64()
    );
}
