//! The mapping against the directory's schema: what `scim-gateway check` reports before an
//! IdP sends anything.

use std::fmt;

use super::{Entity, GroupMapping, UserMapping};
use crate::config::Deactivation;
use crate::dialect;
use crate::directory::schema::Subschema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Creates or reads will fail.
    Error(String),
    /// Creates fail when the IdP leaves something out.
    Warning(String),
}

impl Finding {
    /// The same finding, about the target `name`.
    pub fn within(self, name: &str) -> Finding {
        match self {
            Finding::Error(m) => Finding::Error(format!("[[targets]] {name}: {m}")),
            Finding::Warning(m) => Finding::Warning(format!("[[targets]] {name}: {m}")),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Error(m) => write!(f, "error: {m}"),
            Finding::Warning(m) => write!(f, "warning: {m}"),
        }
    }
}

impl Entity {
    /// Unknown object classes and attributes, and MUST attributes a create may leave empty.
    /// `own` are attributes the gateway writes itself (members, deactivation).
    fn check_schema(&self, schema: &Subschema, own: &[&str], required: &str) -> Vec<Finding> {
        let kind = format!("[{}s]", self.resource_type.to_ascii_lowercase());
        let mut found = Vec::new();
        for c in self.object_classes.iter().filter(|c| !schema.has_class(c)) {
            found.push(Finding::Error(format!("{kind} object class {c} is not in the directory's schema")));
        }
        let meta = [&self.id_attr, &self.created_attr, &self.modified_attr, &self.version_attr].map(String::as_str);
        let allocated = self.allocate.iter().map(|a| a.attr.as_str());
        let rules = self.rules.iter().map(|r| r.ldap.as_str());
        let computed = self.computed.iter().map(|c| c.ldap.as_str());
        let used = rules.chain(computed.clone()).chain(allocated.clone()).chain(meta).chain(own.iter().copied());
        for a in used.filter(|a| !schema.has_attribute(a)) {
            found.push(Finding::Error(format!(
                "{kind} attribute {a} is not in the directory's schema (misspelled, or its schema is not loaded)"
            )));
        }
        for r in &self.rules {
            let (a, target) = (&r.ldap, &r.target);
            if r.direction.writes() && r.ldap_many() && schema.attribute(a).is_some_and(|t| t.single_value) {
                found.push(Finding::Error(format!(
                    "{kind} {target} writes several values, but {a} is SINGLE-VALUE: use join, or a selector"
                )));
            }
            match (r.binary(), schema.is_binary(a)) {
                (true, false) if schema.has_attribute(a) => found.push(Finding::Warning(format!(
                    "{kind} {target} is base64 (binary) but {a} holds text: is convert = \"base64\" meant?"
                ))),
                (false, true) => found.push(Finding::Error(format!(
                    "{kind} {a} holds bytes: its rule needs convert = \"base64\" (SCIM carries binary as base64)"
                ))),
                _ => {}
            }
        }
        let filled = ["objectClass"].into_iter().chain(dialect::SERVER_FILLED.iter().copied());
        let always: Vec<&str> = computed.chain(allocated).chain(own.iter().copied()).chain(filled).collect();
        let mut musts: Vec<String> = self.object_classes.iter().flat_map(|c| schema.must(c)).collect();
        musts.sort_by_key(|m| m.to_ascii_lowercase());
        musts.dedup_by_key(|m| m.to_ascii_lowercase());
        for m in musts.iter().filter(|m| !always.iter().any(|a| a.eq_ignore_ascii_case(m))) {
            let rule = self.rules.iter().find(|r| r.direction.writes() && r.ldap.eq_ignore_ascii_case(m));
            match rule {
                None => found.push(Finding::Error(format!(
                    "{kind} a create leaves {m} empty, but the object classes require it: add a rule (scim, template or constant)"
                ))),
                Some(r) if r.steps.default.is_none() && !r.target.is(required) => found.push(Finding::Warning(format!(
                    "{kind} {m} is required by the object classes: a create without {} is refused by the directory",
                    r.target
                ))),
                Some(_) => {}
            }
        }
        found
    }
}

impl UserMapping {
    pub fn check_schema(&self, schema: &Subschema) -> Vec<Finding> {
        let lock = match &self.deactivation {
            Deactivation::Attribute { attribute, .. } => attribute.as_str(),
            Deactivation::Ppolicy => super::LOCK_ATTR,
            Deactivation::AccountControl => dialect::uac::ATTR,
        };
        let mut found = Vec::new();
        if !schema.has_attribute(lock) {
            found.push(Finding::Error(format!(
                "[users] deactivation needs {lock}, which the directory does not know (is the ppolicy overlay loaded?)"
            )));
        }
        // The deactivation attribute is written only on deactivation, so it fills no MUST;
        // userAccountControl is written on every create.
        let own: &[&str] = match self.deactivation {
            Deactivation::AccountControl => &[dialect::uac::ATTR],
            _ => &[],
        };
        found.extend(Entity::check_schema(self, schema, own, "userName"));
        found
    }
}

impl GroupMapping {
    pub fn check_schema(&self, schema: &Subschema) -> Vec<Finding> {
        let own: Vec<&str> = std::iter::once(self.members.attr.as_str())
            .chain(self.members.on_create.iter().map(|(a, _)| a.as_str()))
            .collect();
        Entity::check_schema(self, schema, &own, "displayName")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::tests::{example, example_groups};

    fn schema(extra_must: &str) -> Subschema {
        let attrs: Vec<String> = [
            "uid",
            "cn",
            "sn",
            "givenName",
            "displayName",
            "mail",
            "telephoneNumber",
            "title",
            "preferredLanguage",
            "employeeNumber",
            "departmentNumber",
            "description",
            "member",
            "entryUUID",
            "createTimestamp",
            "modifyTimestamp",
            "entryCSN",
            "pwdAccountLockedTime",
            "objectClass",
        ]
        .iter()
        .map(|n| format!("( 1.1 NAME '{n}' )"))
        .collect();
        let classes = vec![
            "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )".to_string(),
            format!("( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn {extra_must}) )"),
            "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL )".into(),
            "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL )".into(),
            "( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) )".into(),
        ];
        Subschema::parse(&attrs, &classes)
    }

    #[test]
    fn example_against_a_schema() {
        let found = example().check_schema(&schema(""));
        assert_eq!(found, vec![Finding::Warning("[users] sn is required by the object classes: a create without name.familyName is refused by the directory".into())]);
        assert!(example_groups().check_schema(&schema("")).is_empty());
        let found = example().check_schema(&schema("$ street "));
        assert!(found.iter().any(|f| matches!(f, Finding::Error(m) if m.contains("leaves street empty"))), "{found:?}");
        let found = crate::mapping::tests::entity(
            "[[attribute]]\nscim = \"userName\"\nldap = \"uid\"\n[[attribute]]\nscim = \"emails.value\"\nldap = \"mail\"\n[[attribute]]\nscim = \"nickName\"\nldap = \"photo\"",
        )
        .unwrap()
        .check_schema(&Subschema::parse(
            &[
                "( 1.1 NAME 'mail' SINGLE-VALUE )".into(),
                "( 1.2 NAME 'photo' SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )".into(),
            ],
            &[],
        ), &[], "userName");
        for expected in ["is SINGLE-VALUE", "photo holds bytes"] {
            assert!(
                found.iter().any(|f| matches!(f, Finding::Error(m) if m.contains(expected))),
                "{expected}: {found:?}"
            );
        }
        let bare = Subschema::parse(&["( 1.1 NAME 'uid' )".into()], &["( 2.5.6.0 NAME 'top' ABSTRACT )".into()]);
        let found = example().check_schema(&bare);
        for expected in
            ["object class inetOrgPerson is not in", "attribute title is not in", "needs pwdAccountLockedTime"]
        {
            assert!(
                found.iter().any(|f| matches!(f, Finding::Error(m) if m.contains(expected))),
                "{expected}: {found:?}"
            );
        }
    }
}
