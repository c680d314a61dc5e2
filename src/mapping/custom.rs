//! Extension schemas declared in gateway.toml (Okta custom attributes): each attribute's
//! type is checked on input and restored on output, and its mutability, `returned` and
//! `required` are enforced.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{time, Entity, Error, Result, Rule};
use crate::config::{Convert, Direction, ExtensionAttribute, ExtensionSchema};
use crate::scim::schema::{Kind, Mutability, Returned};

impl Rule {
    /// The SCIM type of the rule's value, when known.
    pub fn kind(&self) -> Option<Kind> {
        self.custom.as_ref().map(|c| c.kind).or(self.def.map(|d| d.kind))
    }

    /// Not shown to the IdP (`returned = "never"`, `writeOnly`), though read to be kept.
    pub fn hidden(&self) -> bool {
        self.custom.as_ref().is_some_and(|c| c.returned == Returned::Never || c.mutability == Mutability::WriteOnly)
    }

    /// A declared value checked against its type, as LDAP text.
    pub(super) fn checked(&self, v: &Value) -> Result<String> {
        let bad = |what: &str| Error::value(format!("{} must be {what}, not {v}", self.target));
        match (self.kind(), v) {
            (Some(Kind::Integer), Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            (Some(Kind::Integer), _) => Err(bad("an integer")),
            (Some(Kind::Decimal), Value::Number(n)) => Ok(n.to_string()),
            (Some(Kind::Decimal), _) => Err(bad("a number")),
            (Some(Kind::DateTime), Value::String(s)) if time::to_generalized(s).is_some() => Ok(s.clone()),
            (Some(Kind::DateTime), _) => Err(bad("a dateTime such as 2026-11-22T22:05:30Z")),
            (_, Value::String(s)) => Ok(s.clone()),
            _ => Err(bad("a string")),
        }
    }

    /// LDAP text as the declared type: a number for integer and decimal attributes.
    pub(super) fn typed_number(&self, v: &str) -> Option<Value> {
        match self.kind()? {
            Kind::Integer => v.trim().parse::<i64>().ok().map(Value::from),
            Kind::Decimal => v.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
            _ => None,
        }
    }

    /// The RFC 7643 §7 definition of a declared attribute, for `/Schemas`.
    pub fn custom_doc(&self) -> Option<Value> {
        let c = self.custom.as_ref()?;
        let mut doc = crate::scim::schema::AttrDef {
            name: "",
            kind: c.kind,
            multi: c.multi_valued,
            mutability: c.mutability,
            case_exact: c.case_exact,
            required: c.required,
            sub: &[],
            refs: if c.kind == Kind::Reference { &["external"] } else { &[] },
        }
        .to_json(&|_| true);
        doc["name"] = self.target.attr.clone().into();
        doc["returned"] = match (c.returned, c.mutability) {
            (Returned::Never, _) | (_, Mutability::WriteOnly) => "never",
            (Returned::Always, _) => "always",
            (Returned::Default, _) => "default",
        }
        .into();
        if let Some(d) = &c.description {
            doc["description"] = d.clone().into();
        }
        Some(doc)
    }
}

/// Attaches the declaration of a rule's extension attribute, when its schema is declared.
/// `direction` is the rule's own; a readOnly attribute is never written.
pub(super) fn declare(rule: &mut Rule, schemas: &[ExtensionSchema]) -> std::result::Result<(), String> {
    let Some(urn) = rule.target.schema.clone() else { return Ok(()) };
    let Some(schema) = schemas.iter().find(|s| s.urn.get_ref().eq_ignore_ascii_case(&urn)) else { return Ok(()) };
    let attr = schema
        .attributes
        .iter()
        .find(|a| a.name.get_ref().eq_ignore_ascii_case(&rule.target.attr))
        .ok_or_else(|| format!("{} is not an attribute of the declared schema {urn}", rule.target.attr))?;
    if rule.target.sub.is_some() || rule.target.selector.is_some() {
        return Err(format!("{} is declared as a simple attribute: map it without sub-attribute", rule.target.attr));
    }
    rule.target.schema = Some(schema.urn.get_ref().clone());
    rule.target.attr = attr.name.get_ref().clone();
    rule.many = attr.multi_valued;
    if attr.kind == Kind::Binary {
        rule.convert = Some(Convert::Base64);
    }
    if attr.kind == Kind::Boolean && rule.boolean.is_none() {
        rule.boolean = Some(("TRUE".into(), "FALSE".into()));
    }
    match (attr.mutability, rule.direction) {
        (Mutability::ReadOnly, Direction::Write) => {
            return Err(format!("{} is readOnly: it cannot be written", rule.target))
        }
        (Mutability::ReadOnly, _) => rule.direction = Direction::Read,
        (Mutability::WriteOnly, Direction::Read) => {
            return Err(format!("{} is writeOnly: it cannot be read", rule.target))
        }
        _ => {}
    }
    rule.required |= attr.required && attr.mutability != Mutability::ReadOnly;
    rule.custom = Some(Arc::new(attr.clone()));
    Ok(())
}

/// The mistakes a declaration can hold on its own, before any rule uses it.
pub(super) fn check_schemas(
    schemas: &[ExtensionSchema],
    core: &str,
) -> std::result::Result<(), (std::ops::Range<usize>, String)> {
    for (i, s) in schemas.iter().enumerate() {
        let urn = s.urn.get_ref();
        let known = crate::scim::schema::definitions(urn).is_some() || urn.eq_ignore_ascii_case(core);
        if !urn.starts_with("urn:") || urn.contains(char::is_whitespace) || known {
            return Err((s.urn.span(), format!("{urn:?} must be the URN of an extension schema of your own")));
        }
        if schemas[..i].iter().any(|o| o.urn.get_ref().eq_ignore_ascii_case(urn)) {
            return Err((s.urn.span(), format!("schema {urn} is declared twice")));
        }
        for (j, a) in s.attributes.iter().enumerate() {
            let name = a.name.get_ref();
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid || a.kind == Kind::Complex {
                return Err((a.name.span(), format!("{name:?}: attributes are simple, named like costCenter")));
            }
            if s.attributes[..j].iter().any(|o: &ExtensionAttribute| o.name.get_ref().eq_ignore_ascii_case(name)) {
                return Err((a.name.span(), format!("{name} is declared twice")));
            }
        }
    }
    Ok(())
}

impl Entity {
    /// 400 `mutability` when `after` changes a readOnly attribute, or an immutable one that
    /// already has a value, from what `before` (the current resource; none on create) holds.
    pub fn check_mutability(&self, before: Option<&Map<String, Value>>, after: &Map<String, Value>) -> Result<()> {
        let empty = Map::new();
        let before = before.unwrap_or(&empty);
        for rule in self.rules.iter() {
            let Some(c) = &rule.custom else { continue };
            let (old, new) = (self.lookup(before, rule), self.lookup(after, rule));
            let changed = old != new;
            let refused = match c.mutability {
                Mutability::ReadOnly => changed && !new.is_empty(),
                Mutability::Immutable => changed && !old.is_empty(),
                _ => false,
            };
            if refused {
                return Err(Error::mutability(format!("{} is {}: it cannot be changed", rule.target, mutability(c))));
            }
        }
        Ok(())
    }
}

fn mutability(c: &ExtensionAttribute) -> &'static str {
    match c.mutability {
        Mutability::ReadOnly => "readOnly",
        Mutability::Immutable => "immutable",
        Mutability::ReadWrite => "readWrite",
        Mutability::WriteOnly => "writeOnly",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::mapping::tests::entity;

    const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

    fn acme() -> crate::mapping::Entity {
        entity(&format!(
            r#"
            [[schema]]
            urn = "{ACME}"
            [[schema.attribute]]
            name = "costCenter"
            required = true
            description = "Where the money goes"
            [[schema.attribute]]
            name = "level"
            type = "integer"
            [[schema.attribute]]
            name = "badgeId"
            mutability = "immutable"
            [[schema.attribute]]
            name = "hrKey"
            mutability = "readOnly"
            [[schema.attribute]]
            name = "pin"
            returned = "never"
            [[schema.attribute]]
            name = "remote"
            type = "boolean"
            [[schema.attribute]]
            name = "skills"
            multi_valued = true
            [[attribute]]
            scim = "userName"
            ldap = "uid"
            [[attribute]]
            scim = "{ACME}:CostCenter"
            ldap = "departmentNumber"
            [[attribute]]
            scim = "{ACME}:level"
            ldap = "x-level"
            [[attribute]]
            scim = "{ACME}:badgeId"
            ldap = "employeeNumber"
            [[attribute]]
            scim = "{ACME}:hrKey"
            ldap = "x-hr"
            [[attribute]]
            scim = "{ACME}:pin"
            ldap = "x-pin"
            [[attribute]]
            scim = "{ACME}:remote"
            ldap = "x-remote"
            [[attribute]]
            scim = "{ACME}:skills"
            ldap = "x-skill"
            "#
        ))
        .unwrap()
    }

    #[test]
    fn declared_types_round_trip() {
        let e = acme();
        let res = json!({"userName": "a", ACME: {"costCenter": "42", "level": 7, "badgeId": "B1", "pin": "1234",
                          "remote": true, "skills": ["rust", "ldap"]}});
        let v = e.values(res.as_object().unwrap()).unwrap();
        assert_eq!(
            (&v["x-level"], &v["x-remote"], &v["x-skill"]),
            (&vec!["7".to_string()], &vec!["TRUE".to_string()], &vec!["rust".to_string(), "ldap".to_string()])
        );
        let (dn, attrs, _) = e.new_entry(&v, vec![]).unwrap();
        let mut entry = crate::directory::Entry::new(dn);
        attrs.into_iter().for_each(|(a, vals)| entry.insert(&a, vals));
        entry.insert("x-hr", vec!["from HR".into()]);
        let back = e.base_resource(&entry, "http://h/Users");
        assert_eq!(
            back[ACME],
            json!({"costCenter": "42", "level": 7, "badgeId": "B1", "hrKey": "from HR", "remote": true, "skills": ["rust", "ldap"]}),
            "pin is never returned"
        );
        assert_eq!(e.patch_base(&entry, "http://h/Users")[ACME]["pin"], "1234", "but a PATCH keeps it");
        assert!(!v.contains_key("x-hr"), "readOnly is never written");
    }

    #[test]
    fn declared_types_and_rules_are_enforced() {
        let e = acme();
        let write = |ext: serde_json::Value| e.values(json!({"userName": "a", ACME: ext}).as_object().unwrap());
        for (bad, why) in [
            (json!({"costCenter": "1", "level": "seven"}), "integer"),
            (json!({"costCenter": "1", "level": 1.5}), "integer"),
            (json!({"costCenter": "1", "remote": "maybe"}), "boolean"),
            (json!({"costCenter": 42}), "string"),
            (json!({"level": 1}), "required"),
        ] {
            let err = write(bad.clone()).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let current = json!({"userName": "a", ACME: {"badgeId": "B1", "hrKey": "k"}});
        let current = current.as_object().unwrap();
        let check = |after: serde_json::Value| e.check_mutability(Some(current), after.as_object().unwrap());
        assert!(check(json!({"userName": "a", ACME: {"badgeId": "B1", "hrKey": "k"}})).is_ok());
        assert!(check(json!({"userName": "a", ACME: {"badgeId": "B1"}})).is_ok(), "readOnly left out: ignored");
        assert!(matches!(
            check(json!({"userName": "a", ACME: {"badgeId": "B2"}})),
            Err(crate::scim::Error { kind: crate::scim::ScimType::Mutability, .. })
        ));
        assert!(check(json!({"userName": "a", ACME: {"badgeId": "B1", "hrKey": "x"}})).is_err());
        let new = json!({"userName": "a", ACME: {"badgeId": "B9"}});
        assert!(e.check_mutability(None, new.as_object().unwrap()).is_ok(), "immutable is set on create");
        let new = json!({"userName": "a", ACME: {"hrKey": "x"}});
        assert!(e.check_mutability(None, new.as_object().unwrap()).is_err(), "readOnly is never set");
    }

    #[test]
    fn schemas_documents_and_mistakes() {
        let e = acme();
        let adv = e.advertised();
        let doc = |name: &str| adv.iter().find(|a| a.attr == name).and_then(|a| a.doc.clone()).unwrap();
        assert_eq!(doc("costCenter")["required"], true);
        assert_eq!(doc("costCenter")["description"], "Where the money goes");
        assert_eq!(doc("level")["type"], "integer");
        assert_eq!(doc("badgeId")["mutability"], "immutable");
        assert_eq!(doc("pin")["returned"], "never");
        assert_eq!(doc("skills")["multiValued"], true);
        for (rules, why) in [
            (format!("[[schema]]\nurn = \"{ACME}\"\n[[attribute]]\nscim = \"{ACME}:nope\"\nldap = \"x\""), "not an attribute of the declared schema"),
            ("[[schema]]\nurn = \"acme\"".to_string(), "URN of an extension schema"),
            (format!("[[schema]]\nurn = \"{}\"", crate::scim::ENTERPRISE_USER_SCHEMA), "of your own"),
            (format!("[[schema]]\nurn = \"{ACME}\"\n[[schema.attribute]]\nname = \"a\"\n[[schema.attribute]]\nname = \"A\""), "declared twice"),
            (format!("[[schema]]\nurn = \"{ACME}\"\n[[schema.attribute]]\nname = \"a\"\ntype = \"complex\""), "attributes are simple"),
            (format!("[[schema]]\nurn = \"{ACME}\"\n[[schema.attribute]]\nname = \"a\"\nmutability = \"readOnly\"\n[[attribute]]\nscim = \"{ACME}:a\"\nldap = \"x\"\ndirection = \"write\""), "cannot be written"),
            (format!("[[schema]]\nurn = \"{ACME}\"\n[[schema.attribute]]\nname = \"a\"\ntype = \"float\""), "unknown variant"),
        ] {
            let err = entity(&format!("{rules}\n[[attribute]]\nscim = \"userName\"\nldap = \"uid\"")).err().unwrap_or_default();
            assert!(err.contains(why), "{rules}: {err}");
        }
    }
}
