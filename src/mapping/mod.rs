//! The operator's attribute rules from `gateway.toml`, compiled once and applied both ways:
//! SCIM resource → directory attributes ([`write`]) and entry → SCIM resource ([`read`]),
//! plus SCIM filters → LDAP filters ([`filter`]). Pure: the directory is never called here.

mod account;
mod check;
mod columns;
mod custom;
mod entity;
mod filter;
mod group;
mod projection;
mod read;
pub mod time;
mod transform;
mod unique;
mod user;
mod values;
mod write;

use std::ops::Range;

use crate::config::{Convert, Direction};
use crate::scim::filter::parse_path;
use crate::scim::schema::{self, AttrDef, Kind};
use crate::scim::ENTERPRISE_USER_SCHEMA;

pub use account::check_user;
pub use check::Finding;
pub use columns::check_membership;
pub use entity::{Allocation, Entity};
pub use filter::Translated;
pub use group::{member_json, member_refs, split_member_ops, GroupMapping, MemberOp, MemberRef, Members};
use transform::{Piece, Steps};
pub use unique::{Candidates, Unique};
pub use user::{UserMapping, Write, LOCK_ATTR, PERMANENT_LOCK};
pub use write::Values;

/// A request the mapping cannot turn into directory data: a client error in SCIM's own
/// terms (invalidValue, invalidFilter, mutability), so there is one way to say each.
pub use crate::scim::Error;

pub type Result<T> = std::result::Result<T, Error>;

/// A rule that cannot work, with the place in gateway.toml that says it.
#[derive(Debug)]
pub struct RuleError {
    pub span: Range<usize>,
    pub message: String,
}

/// Where a rule puts its value in the SCIM resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Extension schema URN; `None` for the core User schema.
    pub schema: Option<String>,
    /// Attribute name, canonical case when the schema is known.
    pub attr: String,
    /// `emails[type eq "work"]`: the (sub-attribute, value) that picks one element.
    pub selector: Option<(String, String)>,
    pub sub: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub target: Target,
    pub ldap: String,
    /// The definition of the value the rule carries (the leaf), when known.
    pub def: Option<&'static AttrDef>,
    pub direction: Direction,
    /// How values are shaped on write.
    pub steps: Steps,
    /// A boolean stored as these strings (true, false) instead of LDAP's TRUE / FALSE.
    pub boolean: Option<(String, String)>,
    /// A create or replacement without a value is refused.
    pub required: bool,
    /// One SCIM string ⇄ several LDAP values, cut at this separator.
    pub split: Option<String>,
    /// Several SCIM values ⇄ one LDAP value, joined with this separator.
    pub join: Option<String>,
    pub convert: Option<Convert>,
    /// The SCIM value is a user's id; the directory holds that user's DN (resolved by
    /// `provision`, which can ask the directory).
    pub reference: bool,
    /// The declaration of an extension attribute (`[[users.schema]]`).
    pub custom: Option<std::sync::Arc<crate::config::ExtensionAttribute>>,
    /// The SCIM side holds several values: every element of a multi-valued attribute that no
    /// selector rule picks (`emails.value`), or a multi-valued simple attribute.
    pub many: bool,
}

impl Rule {
    /// Whether the LDAP attribute holds several values for this rule (all written, all read).
    pub fn ldap_many(&self) -> bool {
        self.split.is_some() || (self.many && self.join.is_none())
    }

    pub fn binary(&self) -> bool {
        self.convert == Some(Convert::Base64)
    }
}

/// An LDAP attribute written from a template or a constant, never read back.
#[derive(Debug, Clone)]
pub struct Computed {
    pub ldap: String,
    pub pieces: Vec<Piece>,
    pub steps: Steps,
    /// No other entry may hold the value: the candidates to try.
    pub unique: Option<Unique>,
}

impl Target {
    pub fn is(&self, core_attr: &str) -> bool {
        self.schema.is_none()
            && self.attr.eq_ignore_ascii_case(core_attr)
            && self.sub.is_none()
            && self.selector.is_none()
    }
}

impl Target {
    /// Whether the other target stores a part of the same SCIM attribute.
    pub fn same_attr(&self, other: &Target) -> bool {
        // Called for every pair of rules on every render: compare without lower-cased copies.
        self.attr.eq_ignore_ascii_case(&other.attr)
            && match (self.schema.as_deref(), other.schema.as_deref()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }

    /// `[primary eq true]`: the element marked primary.
    pub fn picks_primary(&self) -> bool {
        self.selector.as_ref().is_some_and(|(k, _)| k.eq_ignore_ascii_case("primary"))
    }

    /// The selector as a one-key element, e.g. `{"type": "work"}` or `{"primary": true}`.
    pub fn selector_element(&self) -> Option<serde_json::Value> {
        let (key, wanted) = self.selector.as_ref()?;
        let value = match self.picks_primary() {
            true => serde_json::Value::Bool(true),
            false => wanted.clone().into(),
        };
        Some(serde_json::json!({ key.clone(): value }))
    }

    /// Whether the selector picks the element `item`.
    pub fn picks(&self, item: &serde_json::Value) -> bool {
        let Some((key, wanted)) = &self.selector else { return false };
        let found = item.as_object().and_then(|o| crate::scim::json::get_ci(o, key));
        match (self.picks_primary(), found) {
            (true, Some(v)) => crate::scim::json::as_bool(v) == Some(true),
            (false, Some(serde_json::Value::String(s))) => s.eq_ignore_ascii_case(wanted),
            _ => false,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{s}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some((k, v)) = &self.selector {
            write!(f, "[{k} eq {v:?}]")?;
        }
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// An attribute description: a name and options (`userCertificate;binary`), RFC 4512 §2.5.
pub(crate) fn valid_ldap_name(name: &str) -> bool {
    let word = |w: &str| {
        let mut chars = w.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let mut parts = name.split(';');
    parts.next().is_some_and(|n| n.starts_with(|c: char| c.is_ascii_alphabetic()) && word(n)) && parts.all(word)
}

/// An LDAP attribute or a SQL column (the configuration checks which one a target has).
pub(crate) fn valid_store_name(name: &str) -> bool {
    valid_ldap_name(name) || crate::config::is_identifier(name)
}

/// Reads one rule: a SCIM path of a shape the gateway can store, and an LDAP attribute name.
/// `core` is the resource's core schema URN; the enterprise extension applies to users.
fn compile_rule(scim: &str, ldap: &str, core: &str) -> std::result::Result<Rule, String> {
    use crate::scim::filter::{CompareOp, Filter};
    if !valid_store_name(ldap) {
        return Err(format!("{ldap:?} is not an LDAP attribute name"));
    }
    let path = parse_path(scim).map_err(|e| format!("{scim:?} is not a SCIM path: {e}"))?;
    let schema = path.attr.urn.clone().filter(|u| !u.eq_ignore_ascii_case(core));
    let defs = match &schema {
        None => schema::definitions(core),
        Some(urn) if urn.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) && core == crate::scim::USER_SCHEMA => {
            Some(schema::ENTERPRISE_USER)
        }
        Some(_) => None, // custom extension: plain strings
    };
    let attr_def = match defs {
        Some(defs) => Some(
            schema::find(defs, &path.attr.name)
                .or_else(|| schema::find(schema::COMMON, &path.attr.name))
                .ok_or_else(|| format!("{} is not an attribute of its schema", path.attr.name))?,
        ),
        None => None,
    };
    if let Some(d) = attr_def {
        if d.mutability == schema::Mutability::ReadOnly || ["active", "password", "members"].contains(&d.name) {
            return Err(format!("{} is handled by the gateway and cannot be mapped", d.name));
        }
    }
    let selector = match &path.filter {
        None => None,
        Some(Filter::Compare { path: p, op: CompareOp::Eq, value: serde_json::Value::String(v) })
            if p.sub_attr.is_none() =>
        {
            Some((p.name.clone(), v.clone()))
        }
        Some(Filter::Compare { path: p, op: CompareOp::Eq, value: serde_json::Value::Bool(true) })
            if p.sub_attr.is_none() && p.name.eq_ignore_ascii_case("primary") =>
        {
            Some(("primary".to_owned(), "true".to_owned()))
        }
        Some(f) => {
            return Err(format!(
                "only selectors of the form [type eq \"work\"] or [primary eq true] are supported, not [{f}]"
            ))
        }
    };
    let sub = path.attr.sub_attr.clone().or(path.sub_attr.clone());
    if attr_def.is_some_and(|d| d.multi && d.kind == Kind::Complex) && selector.is_none() && sub.is_none() {
        return Err(format!(
            "{scim} is multi-valued: map a sub-attribute of every value ({0}.value) or of one, picked with a selector, e.g. {0}[type eq \"work\"].value",
            path.attr.name
        ));
    }
    let leaf = match (attr_def, &sub) {
        (Some(d), Some(s)) => {
            Some(schema::find(d.sub, s).ok_or_else(|| format!("{} has no sub-attribute {s}", d.name))?)
        }
        (Some(d), None) if d.kind == Kind::Complex => {
            return Err(format!(
                "{} is complex: map one of its sub-attributes, e.g. {}.{}",
                d.name, d.name, d.sub[0].name
            ))
        }
        (d, _) => d,
    };
    if selector.is_some() && !attr_def.is_none_or(|d| d.multi) {
        return Err("a [selector] needs a multi-valued attribute".into());
    }
    if selector.is_some() && sub.is_none() {
        return Err("a [selector] must name a sub-attribute, e.g. emails[type eq \"work\"].value".into());
    }
    let target = Target {
        schema,
        attr: attr_def.map_or(path.attr.name.clone(), |d| d.name.to_owned()),
        selector,
        sub: sub.map(|s| leaf.map_or(s, |l| l.name.to_owned())),
    };
    Ok(Rule {
        many: attr_def.is_some_and(|d| d.multi) && target.selector.is_none(),
        convert: leaf.is_some_and(|d| d.kind == Kind::Binary).then_some(Convert::Base64),
        target,
        ldap: ldap.to_owned(),
        def: leaf,
        direction: Direction::Both,
        steps: Steps::default(),
        boolean: None,
        required: false,
        split: None,
        join: None,
        reference: false,
        custom: None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const U: &str = crate::scim::USER_SCHEMA;

    fn loaded() -> crate::config::Loaded {
        crate::config::Loaded::parse("gateway.toml", include_str!("../../gateway.toml").into()).expect("example parses")
    }

    /// The users mapping of the shipped example configuration (every `${VAR}` in it has a default).
    pub fn example() -> UserMapping {
        UserMapping::compile(&loaded().config.users).expect("example rules compile")
    }

    /// A users entity with these `[[attribute]]` rules (TOML), named by `uid`.
    pub fn entity(rules: &str) -> std::result::Result<Entity, String> {
        let text = format!("base_dn = \"ou=people,dc=x\"\nfilter = \"(objectClass=person)\"\nrdn_attribute = \"uid\"\nobject_classes = [\"person\"]\n{rules}");
        let cfg: crate::config::ResourceConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        Entity::compile(&cfg, "User", U).map_err(|e| e.message)
    }

    /// The groups mapping of the shipped example configuration.
    pub fn example_groups() -> GroupMapping {
        GroupMapping::compile(loaded().config.groups.as_ref().expect("groups configured")).expect("group rules compile")
    }

    #[test]
    fn compiles_rule_shapes() {
        let r = compile_rule("emails[type eq \"work\"].value", "mail", U).unwrap();
        assert_eq!(r.target.selector, Some(("type".into(), "work".into())));
        assert_eq!(r.target.sub.as_deref(), Some("value"));
        let r = compile_rule("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "ou", U).unwrap();
        assert_eq!(r.target.schema.as_deref(), Some(ENTERPRISE_USER_SCHEMA));
        let r = compile_rule("NAME.givenname", "givenName", U).unwrap();
        assert_eq!((r.target.attr.as_str(), r.target.sub.as_deref()), ("name", Some("givenName")));
        assert!(compile_rule("urn:example:acme:2.0:User:costCenter", "departmentNumber", U).is_ok());
        let r = compile_rule("emails.value", "mail", U).unwrap();
        assert!(r.many && r.ldap_many() && r.target.selector.is_none());
        let r = compile_rule("x509Certificates.value", "userCertificate;binary", U).unwrap();
        assert!(r.binary(), "binary sub-attributes are base64 in SCIM");
        assert!(!valid_ldap_name("a;") && !valid_ldap_name(";binary") && !valid_ldap_name("1a"));
        for (bad, why) in [
            ("name", "complex"),
            ("emails", "multi-valued"),
            ("emails[value co \"x\"].value", "selectors"),
            ("bogus", "not an attribute"),
            ("id", "cannot be mapped"),
            ("name.nope", "no sub-attribute"),
        ] {
            let e = compile_rule(bad, "cn", U).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(compile_rule("userName", "u id", U).is_err());
        assert!(compile_rule("displayName", "cn", crate::scim::GROUP_SCHEMA).is_ok());
        assert!(compile_rule("members", "member", crate::scim::GROUP_SCHEMA).unwrap_err().contains("cannot be mapped"));
        assert!(compile_rule("userName", "uid", crate::scim::GROUP_SCHEMA).is_err());
    }

    #[test]
    fn example_mapping() {
        let m = example();
        let adv = m.advertised();
        let has = |attr: &str, sub: Option<&str>| {
            adv.iter().any(|a| a.schema.is_none() && a.attr == attr && a.sub.as_deref() == sub)
        };
        assert!(has("userName", None) && has("emails", Some("type")) && has("meta", Some("created")));
        assert!(!has("nickName", None));
        assert!(m.id_filter("not-a-uuid").is_none());
        let f = m.user_name_filter("a*)(uid=*").to_string();
        assert!(f.contains(r"a\2a\29\28uid=\2a"), "{f}");
    }
}
