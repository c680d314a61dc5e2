//! Multi-valued, binary, split / join and generalized-time rules against a real slapd.

use crate::common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::gateway::{okta_user, TestGateway, PEOPLE};
use common::Slapd;
use serde_json::{json, Value};

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// The shipped mapping with every email in `mail`, typed phone numbers and a work address,
/// certificates, and acme extension attributes stored split, joined, as time and as bytes.
fn rules(text: String) -> String {
    let text = text.replace("scim = 'emails[type eq \"work\"].value'", "scim = 'emails.value'");
    text + &format!(
        r#"
[[users.attribute]]
scim = 'phoneNumbers[type eq "mobile"].value'
ldap = "mobile"

[[users.attribute]]
scim = 'addresses[type eq "work"].streetAddress'
ldap = "street"

[[users.attribute]]
scim = 'addresses[type eq "work"].locality'
ldap = "l"

[[users.attribute]]
scim = "x509Certificates.value"
ldap = "userCertificate;binary"

[[users.attribute]]
scim = "{ACME}:badge"
ldap = "jpegPhoto"
convert = "base64"

[[users.attribute]]
scim = "{ACME}:units"
ldap = "ou"
split = ","

[[users.attribute]]
scim = "{ACME}:tags"
ldap = "carLicense"
join = ";"

[[users.attribute]]
scim = "{ACME}:hired"
ldap = "roomNumber"
convert = "generalized_time"
"#
    )
}

/// LDAP value sets are unordered: ldap3 sends each as a set.
fn sorted<T: AsRef<str>>(values: &[T]) -> Vec<&str> {
    let mut v: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    v.sort();
    v
}

fn certificate(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec![name.into()]).unwrap().self_signed(&key).unwrap().der().to_vec()
}

#[tokio::test]
async fn multi_valued_binary_and_converted_values_round_trip() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, rules).await;
    let (cert1, cert2) = (certificate("a.example.test"), certificate("b.example.test"));
    let photo = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46];
    let mut user = okta_user("multi@example.com", None);
    user["schemas"].as_array_mut().unwrap().push(ACME.into());
    user["emails"] = json!([
        {"value": "home@example.com", "type": "home"},
        {"value": "multi@example.com", "type": "work", "primary": true}
    ]);
    user["phoneNumbers"] =
        json!([{"value": "+1 555 0100", "type": "work"}, {"value": "+1 555 0199", "type": "mobile"}]);
    user["addresses"] = json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}]);
    user["x509Certificates"] = json!([{"value": STANDARD.encode(&cert1)}, {"value": STANDARD.encode(&cert2)}]);
    user[ACME] = json!({"badge": STANDARD.encode(&photo), "units": "north, south", "tags": ["x", "y"],
                        "hired": "2026-11-22T23:05:30+01:00"});
    let created = gw.post("/Users", &user).await;
    assert_eq!(created.status, 201, "{:#}", created.body);

    let e = slapd.entry(&format!("uid=multi@example.com,{PEOPLE}")).await.unwrap();
    assert_eq!(sorted(&e.attrs["mail"]), ["home@example.com", "multi@example.com"]);
    assert_eq!(e.attrs["mobile"], ["+1 555 0199"]);
    assert_eq!(
        (e.attrs["street"].clone(), e.attrs["l"].clone()),
        (vec!["1 Main St".into()], vec!["Springfield".into()])
    );
    assert_eq!(e.bin_attrs["jpegPhoto"], std::slice::from_ref(&photo));
    assert_eq!(e.bin_attrs["userCertificate;binary"].len(), 2);
    assert!(e.bin_attrs["userCertificate;binary"].contains(&cert1));
    assert_eq!(sorted(&e.attrs["ou"]), ["north", "south"]);
    assert_eq!(e.attrs["carLicense"], ["x;y"]);
    assert_eq!(e.attrs["roomNumber"], ["20261122220530Z"]);

    let id = created.body["id"].as_str().unwrap().to_owned();
    let got = gw.get(&format!("/Users/{id}")).await.body;
    let emails: Vec<&str> = got["emails"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(sorted(&emails), ["home@example.com", "multi@example.com"]);
    // No rule here stores which email is primary, so none is said to be.
    assert_eq!(got["emails"].as_array().unwrap().iter().filter(|m| m.get("primary").is_some()).count(), 0);
    let phones: Vec<&Value> = got["phoneNumbers"].as_array().unwrap().iter().collect();
    assert!(phones.iter().any(|p| p["type"] == "mobile" && p["value"] == "+1 555 0199"), "{phones:?}");
    assert_eq!(got["addresses"][0]["locality"], "Springfield");
    let certs: Vec<&str> =
        got["x509Certificates"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    assert!(certs.contains(&STANDARD.encode(&cert2).as_str()), "{certs:?}");
    let units = got[ACME]["units"].as_str().unwrap();
    assert!(units == "north,south" || units == "south,north", "{units}");
    assert_eq!(
        got[ACME],
        json!({"badge": STANDARD.encode(&photo), "units": units, "tags": ["x", "y"], "hired": "2026-11-22T22:05:30Z"})
    );
    assert_eq!(got["schemas"], json!(["urn:ietf:params:scim:schemas:core:2.0:User", ACME]));

    // PUT of what was read changes nothing; Okta's PATCH adds an email value.
    let put = gw.put(&format!("/Users/{id}"), &got).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    assert_eq!(put.body["meta"]["version"], got["meta"]["version"], "nothing to write");
    let add = json!([{"op": "add", "path": "emails", "value": [{"value": "third@example.com", "type": "other"}]}]);
    let patched = gw.patch(&format!("/Users/{id}"), add).await;
    assert_eq!(patched.status, 200, "{:#}", patched.body);
    let e = slapd.entry(&format!("uid=multi@example.com,{PEOPLE}")).await.unwrap();
    assert_eq!(sorted(&e.attrs["mail"]), ["home@example.com", "multi@example.com", "third@example.com"]);

    // Removing a certificate and changing the photo rewrite those attributes only.
    let mut less = got.clone();
    less["x509Certificates"] = json!([{"value": STANDARD.encode(&cert2)}]);
    less[ACME]["badge"] = STANDARD.encode([0xff, 0xd8, 0x00]).into();
    less.as_object_mut().unwrap().remove("meta");
    let put = gw.put(&format!("/Users/{id}"), &less).await;
    assert_eq!(put.status, 200, "{:#}", put.body);
    let e = slapd.entry(&format!("uid=multi@example.com,{PEOPLE}")).await.unwrap();
    assert_eq!(e.bin_attrs["userCertificate;binary"], [cert2]);
    assert_eq!(e.bin_attrs["jpegPhoto"], [vec![0xff, 0xd8, 0x00]]);

    // Bad input: 400, directory unchanged.
    for (key, bad) in [("badge", "%%% not base64"), ("hired", "next tuesday")] {
        let mut wrong = less.clone();
        wrong[ACME][key] = bad.into();
        gw.put(&format!("/Users/{id}"), &wrong).await.assert_error(400, Some("invalidValue"));
    }
    let after = slapd.entry(&format!("uid=multi@example.com,{PEOPLE}")).await.unwrap();
    assert_eq!(after.attrs["modifyTimestamp"], e.attrs["modifyTimestamp"]);
    assert_eq!(after.attrs["entryCSN"], e.attrs["entryCSN"]);

    // Filters: a time rule compares as generalized time; a binary one only with pr.
    let found = gw
        .get(&format!("/Users?filter={}", common::gateway::q(&format!(r#"{ACME}:hired eq "2026-11-22T22:05:30Z""#))))
        .await;
    assert_eq!(found.body["totalResults"], 1, "{:#}", found.body);
    let refused = gw.get(&format!("/Users?filter={}", common::gateway::q(&format!(r#"{ACME}:badge eq "x""#)))).await;
    refused.assert_error(400, Some("invalidFilter"));
    gw.stop().await;
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn manager_is_a_reference_by_id() {
    let slapd = Slapd::start();
    let gw = TestGateway::start_with(&slapd, |t| {
        t + &format!(
            "\n[[users.attribute]]\nscim = \"{ENTERPRISE}:manager.value\"\nldap = \"manager\"\nreference = \"user\"\n"
        )
    })
    .await;
    let boss = gw.post("/Users", &okta_user("boss@example.com", None)).await.body;
    let other = gw.post("/Users", &okta_user("other@example.com", None)).await.body;
    let (boss_id, other_id) = (boss["id"].as_str().unwrap(), other["id"].as_str().unwrap());
    let mut user = okta_user("worker@example.com", None);
    user["schemas"].as_array_mut().unwrap().push(ENTERPRISE.into());
    user[ENTERPRISE] = json!({"manager": {"value": boss_id}});
    let created = gw.post("/Users", &user).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let dn = format!("uid=worker@example.com,{PEOPLE}");
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["manager"], [format!("uid=boss@example.com,{PEOPLE}")]);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let manager = &created.body[ENTERPRISE]["manager"];
    assert_eq!(manager["value"], boss_id);
    assert_eq!(manager["displayName"], "John Doe");
    assert!(manager["$ref"].as_str().unwrap().ends_with(&format!("/Users/{boss_id}")), "{manager}");

    // Okta and Entra change it by PATCH, with the complex value or the sub-attribute path.
    let ops = json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": other_id}}]);
    let patched = gw.patch(&format!("/Users/{id}"), ops).await;
    assert_eq!(patched.body[ENTERPRISE]["manager"]["value"], other_id, "{:#}", patched.body);
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["manager"], [format!("uid=other@example.com,{PEOPLE}")]);
    let ops = json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager.value"), "value": boss_id}]);
    let patched = gw.patch(&format!("/Users/{id}"), ops).await;
    assert_eq!(patched.body[ENTERPRISE]["manager"]["value"], boss_id, "{:#}", patched.body);
    // A PATCH of something else leaves the manager as it is.
    let ops = json!([{"op": "replace", "value": {"title": "Engineer"}}]);
    let patched = gw.patch(&format!("/Users/{id}"), ops).await;
    assert_eq!(patched.body[ENTERPRISE]["manager"]["value"], boss_id, "{:#}", patched.body);

    // An unknown manager: 400, directory unchanged.
    let before = slapd.entry(&dn).await.unwrap();
    for unknown in ["6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11", "not-an-id"] {
        let ops = json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager.value"), "value": unknown}]);
        gw.patch(&format!("/Users/{id}"), ops).await.assert_error(400, Some("invalidValue"));
    }
    assert_eq!(slapd.entry(&dn).await.unwrap().attrs["entryCSN"], before.attrs["entryCSN"]);
    let filter = common::gateway::q(&format!(r#"{ENTERPRISE}:manager.value eq "{boss_id}""#));
    gw.get(&format!("/Users?filter={filter}")).await.assert_error(400, Some("invalidFilter"));

    // The manager leaves: the reference is not shown, and removing it works.
    assert_eq!(gw.delete(&format!("/Users/{boss_id}")).await.status, 204);
    let got = gw.get(&format!("/Users/{id}")).await.body;
    assert!(got[ENTERPRISE].get("manager").is_none(), "{got:#}");
    let ops = json!([{"op": "remove", "path": format!("{ENTERPRISE}:manager")}]);
    assert_eq!(gw.patch(&format!("/Users/{id}"), ops).await.status, 200);
    assert!(!slapd.entry(&dn).await.unwrap().attrs.contains_key("manager"));
    gw.stop().await;
}
