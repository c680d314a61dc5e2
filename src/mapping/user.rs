//! Users: the shared rules plus `active` (a deactivation strategy) and `password`.

use std::ops::Deref;

use serde_json::{Map, Value};

use super::write::Values;
use super::{Entity, Error, Result, Rule, RuleError};
use crate::config::{Deactivation, ResourceConfig};
use crate::dialect::uac;
use crate::directory::{Attributes, Binary, Change, Entry, LdapFilter};
use crate::scim::discovery::Advertised;
use crate::scim::json::{as_bool, get_ci};
use crate::scim::USER_SCHEMA;

/// `pwdAccountLockedTime` of a lock that only an administrator lifts (ppolicy).
pub const PERMANENT_LOCK: &str = "000001010000Z";
pub const LOCK_ATTR: &str = "pwdAccountLockedTime";

/// The compiled users mapping.
#[derive(Debug, Clone)]
pub struct UserMapping {
    entity: Entity,
    pub deactivation: Deactivation,
}

impl Deref for UserMapping {
    type Target = Entity;
    fn deref(&self) -> &Entity {
        &self.entity
    }
}

/// What a user resource asks the directory to hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Write {
    pub attrs: Values,
    /// `None` when the resource does not say.
    pub active: Option<bool>,
    pub password: Option<String>,
}

impl UserMapping {
    pub fn compile(cfg: &ResourceConfig) -> std::result::Result<UserMapping, RuleError> {
        let mut entity = Entity::compile(cfg, "User", USER_SCHEMA)?;
        entity.require(cfg, "userName")?;
        if let Some(m) = &cfg.members {
            return Err(RuleError {
                span: m.span(),
                message: "[users] has no members: that belongs in [groups]".into(),
            });
        }
        let deactivation = cfg.deactivation.as_ref().ok_or_else(|| RuleError {
            span: cfg.rdn_attribute.span(),
            message: "[users] needs a deactivation strategy, e.g. deactivation = { strategy = \"ppolicy\" }".into(),
        })?;
        entity.read_attrs.push(match deactivation.get_ref() {
            Deactivation::Attribute { attribute, .. } => {
                if !super::valid_store_name(attribute)
                    || entity.rules.iter().any(|r| r.ldap.eq_ignore_ascii_case(attribute))
                {
                    return Err(RuleError {
                        span: deactivation.span(),
                        message: format!(
                            "deactivation attribute {attribute} must be a valid LDAP name not used by a rule"
                        ),
                    });
                }
                attribute.clone()
            }
            Deactivation::Ppolicy => LOCK_ATTR.into(),
            Deactivation::AccountControl => uac::ATTR.into(),
        });
        Ok(UserMapping { entity, deactivation: deactivation.get_ref().clone() })
    }

    fn user_name_rule(&self) -> &Rule {
        self.rule_for("userName").expect("checked at compile")
    }

    /// Users whose userName is `user_name` (the directory's matching rule decides case).
    pub fn user_name_filter(&self, user_name: &str) -> LdapFilter {
        self.filter.clone().and(LdapFilter::eq(&self.user_name_rule().ldap, user_name))
    }

    /// A userName as the directory stores it (shaped as a write shapes it), for lookups.
    pub fn stored_user_name(&self, user_name: &str) -> String {
        self.user_name_rule().steps.shape(user_name.to_owned())
    }

    /// Whether entries are named by the userName's attribute: then the DN itself keeps
    /// userNames unique, atomically.
    pub fn named_by_user_name(&self) -> bool {
        self.rdn_attr.eq_ignore_ascii_case(&self.user_name_rule().ldap)
    }

    pub fn user_name<'a>(&self, w: &'a Write) -> Option<&'a str> {
        w.attrs.get(&self.user_name_rule().ldap).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn entry_user_name<'a>(&self, entry: &'a Entry) -> Option<&'a str> {
        entry.first(&self.user_name_rule().ldap)
    }

    /// Discovery: the mapped attributes plus `active` and `password`.
    pub fn advertised(&self) -> Vec<Advertised> {
        let mut out = self.entity.advertised();
        out.extend(["active", "password"].map(|a| Advertised { attr: a.into(), ..Default::default() }));
        out
    }

    /// The SCIM representation of `entry` (see [`Entity::base_resource`]).
    pub fn to_resource(&self, entry: &Entry, location: &str) -> Value {
        let mut res = self.base_resource(entry, location);
        res.insert("active".into(), self.is_active(entry).into());
        Value::Object(res)
    }

    /// The resource a PATCH applies to: [`Self::to_resource`] plus the values never shown.
    pub fn patch_base(&self, entry: &Entry, location: &str) -> Map<String, Value> {
        let mut res = self.entity.patch_base(entry, location);
        res.insert("active".into(), self.is_active(entry).into());
        res
    }

    pub fn is_active(&self, entry: &Entry) -> bool {
        match &self.deactivation {
            Deactivation::Attribute { attribute, inactive_value, .. } => {
                !entry.values(attribute).iter().any(|v| v.eq_ignore_ascii_case(inactive_value))
            }
            // Temporary lockouts after failed binds are the directory's business, not the IdP's.
            Deactivation::Ppolicy => entry.first(LOCK_ATTR) != Some(PERMANENT_LOCK),
            Deactivation::AccountControl => uac::is_enabled(entry.first(uac::ATTR)),
        }
    }

    pub fn to_write(&self, res: &Map<String, Value>) -> Result<Write> {
        let attrs = self.values(res)?;
        self.require_name(&attrs, "userName")?;
        let active = match get_ci(res, "active") {
            None | Some(Value::Null) => None,
            Some(v) => Some(as_bool(v).ok_or_else(|| Error::value(format!("active must be a boolean, not {v}")))?),
        };
        let password = match get_ci(res, "password") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if !p.is_empty() => Some(p.clone()),
            // Never echo the value: it is a password.
            Some(_) => return Err(Error::value("password must be a non-empty string")),
        };
        Ok(Write { attrs, active, password })
    }

    /// The DN and attributes of a new user entry for `w`, plus `extra` (an allocated number).
    pub fn new_user(&self, w: &Write, extra: Attributes) -> Result<(String, Attributes, Binary)> {
        self.new_entry(&w.attrs, [self.initial_activation(w), extra].concat())
    }

    /// The columns of a new row for `w` (a table has no DN, object classes or binary values).
    pub fn new_record(&self, w: &Write) -> Attributes {
        let attrs = w.attrs.iter().map(|(k, v)| (k.clone(), v.clone()));
        attrs.chain(self.initial_activation(w)).collect()
    }

    /// What a new account holds to say whether it is active.
    fn initial_activation(&self, w: &Write) -> Attributes {
        match (&self.deactivation, w.active) {
            (Deactivation::Attribute { attribute, inactive_value, .. }, Some(false)) => {
                vec![(attribute.clone(), vec![inactive_value.clone()])]
            }
            (Deactivation::Attribute { attribute, active_value: Some(v), .. }, _) => {
                vec![(attribute.clone(), vec![v.clone()])]
            }
            (Deactivation::Ppolicy, Some(false)) => vec![(LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()])],
            // AD enables an account only with a password: without one it starts disabled.
            (Deactivation::AccountControl, active) => {
                let enabled = active != Some(false) && w.password.is_some();
                vec![(uac::ATTR.into(), vec![uac::initial(enabled).to_string()])]
            }
            _ => vec![],
        }
    }

    /// The modifications that make `entry` hold `w` (see [`Entity::changes`]), including `active`.
    pub fn user_changes(&self, entry: &Entry, w: &Write) -> Vec<Change> {
        let mut changes = self.changes(entry, &w.attrs);
        match w.active {
            Some(active) if active != self.is_active(entry) => changes.push(self.activation(entry, active)),
            _ => {}
        }
        changes
    }

    /// Whether `change` enables an account in a way the directory allows only once the
    /// account has a password (Active Directory's userAccountControl).
    pub fn enabling_needs_password(&self, change: &Change) -> bool {
        matches!(self.deactivation, Deactivation::AccountControl) && change.attr().eq_ignore_ascii_case(uac::ATTR)
    }

    fn activation(&self, entry: &Entry, active: bool) -> Change {
        match (&self.deactivation, active) {
            (Deactivation::Attribute { attribute, inactive_value, .. }, false) => {
                Change::Replace(attribute.clone(), vec![inactive_value.clone()])
            }
            (Deactivation::Attribute { attribute, active_value, .. }, true) => {
                Change::Replace(attribute.clone(), active_value.iter().cloned().collect())
            }
            (Deactivation::Ppolicy, false) => Change::Replace(LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()]),
            (Deactivation::Ppolicy, true) => Change::Replace(LOCK_ATTR.into(), vec![]),
            // Only bit 0x2 changes; delete-old/add-new fails if another writer got there first.
            (Deactivation::AccountControl, _) => match entry.first(uac::ATTR) {
                Some(old) => {
                    let current = old.trim().parse::<i64>().unwrap_or_default() as u32;
                    let new = uac::with_enabled(current, active) as i32;
                    Change::Swap(uac::ATTR.into(), old.to_owned(), new.to_string())
                }
                None => Change::Replace(uac::ATTR.into(), vec![uac::initial(active).to_string()]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::tests::example;
    use serde_json::json;

    fn write(v: Value) -> Result<Write> {
        example().to_write(v.as_object().unwrap())
    }

    #[test]
    fn entry_to_resource() {
        let m = example();
        let e = Entry::new("uid=jdoe,ou=people,dc=example,dc=test")
            .with("uid", vec!["jdoe@example.com".into()])
            .with("givenName", vec!["John".into()])
            .with("sn", vec!["Doe".into()])
            .with("mail", vec!["jdoe@example.com".into(), "second@example.com".into()])
            .with("entryUUID", vec!["6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11".into()])
            .with("createTimestamp", vec!["20261122220530Z".into()])
            .with("modifyTimestamp", vec!["20261122220531Z".into()])
            .with("entryCSN", vec!["20261122220531.000001Z#000000#000#000000".into()])
            .with("pwdAccountLockedTime", vec!["000001010000Z".into()]);
        let r = m.to_resource(&e, "http://h/scim/v2/Users");
        assert_eq!(r["id"], "6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11");
        assert_eq!(r["userName"], "jdoe@example.com");
        assert_eq!(r["name"], json!({"givenName": "John", "familyName": "Doe"}));
        assert_eq!(r["emails"], json!([{"type": "work", "value": "jdoe@example.com"}]));
        assert_eq!(r["active"], false);
        assert_eq!(r["meta"]["created"], "2026-11-22T22:05:30Z");
        assert_eq!(r["meta"]["version"], "W/\"20261122220531.000001Z#000000#000#000000\"");
        assert_eq!(r["meta"]["location"], "http://h/scim/v2/Users/6f1c2a8e-1111-4e2b-9a57-0e7b0f6c1a11");
        assert!(r.get("password").is_none());
    }

    #[test]
    fn okta_create_body() {
        let w = write(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "jdoe@example.com",
            "name": {"givenName": "John", "familyName": "Doe"},
            "emails": [{"primary": true, "value": "jdoe@example.com", "type": "work"}],
            "displayName": "John Doe", "externalId": "00u1abcd2EFGH3ijk4l5",
            "groups": [], "password": "t3mpP@ss", "active": true
        }))
        .unwrap();
        assert_eq!(w.attrs["uid"], ["jdoe@example.com"]);
        assert_eq!(w.attrs["mail"], ["jdoe@example.com"]);
        assert_eq!(w.attrs["sn"], ["Doe"]);
        assert_eq!((w.active, w.password.as_deref()), (Some(true), Some("t3mpP@ss")));
        let (dn, attrs, _) = example().new_user(&w, vec![]).unwrap();
        assert_eq!(dn, "uid=jdoe@example.com,ou=people,dc=example,dc=test");
        assert!(attrs.iter().any(|(k, v)| k == "objectClass" && v.contains(&"inetOrgPerson".to_string())));
        assert!(!attrs.iter().any(|(k, _)| k == "userPassword"));
    }

    #[test]
    fn bad_values() {
        assert!(write(json!({"name": {"familyName": "x"}})).unwrap_err().to_string().contains("userName is required"));
        assert!(write(json!({"userName": {"a": 1}})).is_err());
        for bad in ["x\r\ny", "a\u{0}b", "   ", "tab\there"] {
            let e = write(json!({"userName": bad, "name": {"familyName": "x"}})).unwrap_err().to_string();
            assert!(e.contains("blank") || e.contains("control characters"), "{bad:?}: {e}");
        }
        assert!(write(json!({"userName": "a", "active": "maybe"})).is_err());
        // A string attribute of a known schema takes strings only (RFC 7643 §2.3.1).
        for (body, name) in [
            (json!({"userName": 7, "name": {"familyName": "x"}}), "userName"),
            (json!({"userName": "a", "name": {"familyName": true}}), "name.familyName"),
            (json!({"userName": "a", "name": {"familyName": "x"}, "displayName": 1.5}), "displayName"),
        ] {
            let e = write(body).unwrap_err().to_string();
            assert!(e.contains(&format!("{name} must be a string")), "{e}");
        }
        let e = write(json!({"userName": "a", "password": 42})).unwrap_err().to_string();
        assert!(!e.contains("42"));
        assert_eq!(
            write(json!({"userName": "a", "name": {"familyName": "A"}, "active": "False"})).unwrap().active,
            Some(false)
        );
    }

    #[test]
    fn diff_touches_only_changes() {
        let m = example();
        let entry = Entry::new("uid=a,ou=people,dc=example,dc=test")
            .with("uid", vec!["a".into()])
            .with("sn", vec!["Old".into()])
            .with("mail", vec!["a@x".into(), "b@x".into()])
            .with("title", vec!["t".into()]);
        let w = write(json!({"userName": "a", "name": {"familyName": "New"},
                             "emails": [{"type": "work", "value": "a@x"}], "active": false}))
        .unwrap();
        assert_eq!(
            m.user_changes(&entry, &w),
            vec![
                Change::Replace("sn".into(), vec!["New".into()]),
                Change::Delete("title".into(), vec![]),
                Change::Replace("cn".into(), vec!["New".into()]),
                Change::Replace(LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()]),
            ]
        );
        assert_eq!(m.renamed(&entry, &w.attrs).unwrap(), None);
        let w2 = write(json!({"userName": "b,c", "name": {"familyName": "New"}})).unwrap();
        assert_eq!(m.renamed(&entry, &w2.attrs).unwrap().as_deref(), Some(r"uid=b\2cc"));
    }

    #[test]
    fn template_of_an_outside_entry_is_kept_until_its_values_change() {
        let m = example();
        let entry = Entry::new("uid=a,ou=people,dc=example,dc=test")
            .with("uid", vec!["a".into()])
            .with("givenName", vec!["John".into()])
            .with("sn", vec!["Doe".into()])
            .with("cn", vec!["Doe, John (HR)".into()]);
        let deactivate = write(json!({"userName": "a", "name": {"givenName": "John", "familyName": "Doe"},
                                      "active": false}))
        .unwrap();
        assert_eq!(
            m.user_changes(&entry, &deactivate),
            vec![Change::Replace(LOCK_ATTR.into(), vec![PERMANENT_LOCK.into()])]
        );
        let renamed = write(json!({"userName": "a", "name": {"givenName": "John", "familyName": "Roe"}})).unwrap();
        let changes = m.user_changes(&entry, &renamed);
        assert!(changes.contains(&Change::Replace("cn".into(), vec!["John Roe".into()])), "{changes:?}");
    }

    proptest::proptest! {
        /// SCIM → entry → SCIM is the identity on everything the example maps and reads.
        #[test]
        fn round_trip(
            user_name in "[a-z][a-z0-9.@-]{0,20}",
            given in "\\PC{1,12}",
            family in "\\PC{1,12}",
            email in "[a-z]{1,8}@[a-z]{1,8}\\.test",
            title in proptest::option::of("\\PC{1,16}"),
            department in proptest::option::of("[A-Za-z&]{1,10}"),
            active in proptest::bool::ANY,
        ) {
            let (given, family) = (given.trim().to_owned(), family.trim().to_owned());
            proptest::prop_assume!(!given.is_empty() && !family.is_empty());
            let mut res = json!({
                "schemas": [crate::scim::USER_SCHEMA], "userName": user_name, "active": active,
                "name": {"givenName": given, "familyName": family},
                // No `primary`: the example's rules do not store it, so it does not come back.
                "emails": [{"type": "work", "value": email}],
            });
            if let Some(t) = &title {
                res["title"] = t.clone().into();
            }
            if let Some(d) = &department {
                res[crate::scim::ENTERPRISE_USER_SCHEMA] = json!({"department": d});
                res["schemas"] = json!([crate::scim::USER_SCHEMA, crate::scim::ENTERPRISE_USER_SCHEMA]);
            }
            let m = example();
            let w = m.to_write(res.as_object().unwrap()).unwrap();
            let (dn, attrs, _) = m.new_user(&w, vec![]).unwrap();
            let mut entry = Entry::new(dn);
            for (a, v) in attrs {
                entry.insert(&a, v);
            }
            let back = m.to_resource(&entry, "http://h/Users");
            for key in ["userName", "name", "emails", "title", "active", "schemas"] {
                proptest::prop_assert_eq!(&back[key], &res[key], "{}", key);
            }
            proptest::prop_assert_eq!(&back[crate::scim::ENTERPRISE_USER_SCHEMA], &res[crate::scim::ENTERPRISE_USER_SCHEMA]);
        }
    }
}
