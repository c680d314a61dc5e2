//! The operator's attribute rules from `gateway.toml`, compiled once and applied both ways:
//! SCIM resource → directory attributes ([`write`]) and entry → SCIM resource ([`read`]),
//! plus SCIM filters → LDAP filters ([`filter`]). Pure: the directory is never called here.

mod filter;
mod read;
pub mod time;
mod write;

use std::ops::Range;

use crate::config::{Deactivation, UsersConfig};
use crate::directory::LdapFilter;
use crate::scim::discovery::Advertised;
use crate::scim::filter::parse_path;
use crate::scim::schema::{self, AttrDef, Kind};
use crate::scim::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};

pub use write::Write;

/// A request the mapping cannot turn into directory data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    InvalidFilter(String),
}

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
}

/// The compiled users mapping.
#[derive(Debug, Clone)]
pub struct UserMapping {
    pub rules: Vec<Rule>,
    pub base_dn: String,
    pub filter: LdapFilter,
    pub rdn_attr: String,
    pub object_classes: Vec<String>,
    pub id_attr: String,
    pub created_attr: String,
    pub modified_attr: String,
    pub version_attr: String,
    pub deactivation: Deactivation,
    /// Every attribute a read must ask for (operational ones included).
    pub read_attrs: Vec<String>,
}

/// `pwdAccountLockedTime` of a lock that only an administrator lifts (ppolicy).
pub const PERMANENT_LOCK: &str = "000001010000Z";
pub const LOCK_ATTR: &str = "pwdAccountLockedTime";

impl UserMapping {
    pub fn compile(cfg: &UsersConfig) -> std::result::Result<UserMapping, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        for r in &cfg.attributes {
            let rule = compile_rule(r.scim.get_ref(), r.ldap.get_ref())
                .map_err(|message| RuleError { span: r.scim.span(), message })?;
            if let Some(other) = rules.iter().find(|o| o.ldap.eq_ignore_ascii_case(&rule.ldap)) {
                return Err(RuleError {
                    span: r.ldap.span(),
                    message: format!("LDAP attribute {} is already mapped from {}", rule.ldap, other.target),
                });
            }
            if rules.iter().any(|o| o.target == rule.target) {
                return Err(RuleError { span: r.scim.span(), message: format!("{} is mapped twice", rule.target) });
            }
            rules.push(rule);
        }
        let whole = cfg.deactivation.span();
        if !rules.iter().any(|r| r.target.is("userName")) {
            return Err(RuleError { span: whole.clone(), message: "no rule maps userName: add one".into() });
        }
        let rdn = cfg.rdn_attribute.get_ref();
        if !rules.iter().any(|r| r.ldap.eq_ignore_ascii_case(rdn)) {
            return Err(RuleError {
                span: cfg.rdn_attribute.span(),
                message: format!("rdn_attribute {rdn} must be the LDAP side of one of the rules"),
            });
        }
        let filter = cfg.filter.get_ref().trim();
        if ldap3::parse_filter(filter).is_err() {
            return Err(RuleError {
                span: cfg.filter.span(),
                message: format!("{filter:?} is not a valid LDAP filter"),
            });
        }
        if let Deactivation::Attribute { attribute, .. } = cfg.deactivation.get_ref() {
            if !valid_ldap_name(attribute) || rules.iter().any(|r| r.ldap.eq_ignore_ascii_case(attribute)) {
                return Err(RuleError {
                    span: whole,
                    message: format!("deactivation attribute {attribute} must be a valid LDAP name not used by a rule"),
                });
            }
        }
        let mut read_attrs: Vec<String> = rules.iter().map(|r| r.ldap.clone()).collect();
        read_attrs.extend(
            [&cfg.id_attribute, &cfg.created_attribute, &cfg.modified_attribute, &cfg.version_attribute]
                .map(Clone::clone),
        );
        read_attrs.push(match cfg.deactivation.get_ref() {
            Deactivation::Attribute { attribute, .. } => attribute.clone(),
            Deactivation::Ppolicy => LOCK_ATTR.into(),
        });
        Ok(UserMapping {
            rules,
            base_dn: cfg.base_dn.as_str().to_owned(),
            filter: LdapFilter::Configured(filter.to_owned()),
            rdn_attr: rdn.clone(),
            object_classes: cfg.object_classes.clone(),
            id_attr: cfg.id_attribute.clone(),
            created_attr: cfg.created_attribute.clone(),
            modified_attr: cfg.modified_attribute.clone(),
            version_attr: cfg.version_attribute.clone(),
            deactivation: cfg.deactivation.get_ref().clone(),
            read_attrs,
        })
    }

    fn user_name_rule(&self) -> &Rule {
        self.rules.iter().find(|r| r.target.is("userName")).expect("checked at compile")
    }

    /// Users whose userName is `user_name` (the directory's matching rule decides case).
    pub fn user_name_filter(&self, user_name: &str) -> LdapFilter {
        self.filter.clone().and(LdapFilter::eq(&self.user_name_rule().ldap, user_name))
    }

    /// Whether entries are named by the userName's attribute: then the DN itself keeps
    /// userNames unique, atomically.
    pub fn named_by_user_name(&self) -> bool {
        self.rdn_attr.eq_ignore_ascii_case(&self.user_name_rule().ldap)
    }

    pub fn user_name<'a>(&self, w: &'a Write) -> Option<&'a str> {
        w.attrs.get(&self.user_name_rule().ldap).map(String::as_str)
    }

    pub fn entry_user_name<'a>(&self, entry: &'a crate::directory::Entry) -> Option<&'a str> {
        entry.first(&self.user_name_rule().ldap)
    }

    /// The user with SCIM `id`; ids that cannot be one never reach the directory.
    pub fn id_filter(&self, id: &str) -> Option<LdapFilter> {
        let valid = !self.id_attr.eq_ignore_ascii_case("entryUUID") || uuid::Uuid::try_parse(id).is_ok();
        valid.then(|| self.filter.clone().and(LdapFilter::eq(&self.id_attr, id)))
    }

    /// What discovery may offer: every mapped attribute and sub-attribute, plus what the
    /// gateway itself handles.
    pub fn advertised(&self) -> Vec<Advertised> {
        let core =
            |attr: &str, sub: Option<&str>| Advertised { schema: None, attr: attr.into(), sub: sub.map(Into::into) };
        let mut out: Vec<Advertised> = ["id", "active", "password"].iter().map(|a| core(a, None)).collect();
        out.extend(
            ["resourceType", "created", "lastModified", "location", "version"].iter().map(|s| core("meta", Some(s))),
        );
        out.push(core("meta", None));
        for r in &self.rules {
            let t = &r.target;
            let at = |sub: Option<&str>| Advertised {
                schema: t.schema.clone(),
                attr: t.attr.clone(),
                sub: sub.map(Into::into),
            };
            out.push(at(None));
            out.extend(t.sub.as_deref().map(|s| at(Some(s))));
            if let Some((key, _)) = &t.selector {
                out.push(at(Some(key)));
                out.push(at(Some("primary")));
            }
        }
        out.dedup();
        out
    }

    /// The extension schemas that at least one rule writes into.
    pub fn extensions(&self) -> Vec<String> {
        let mut urns: Vec<String> = self.rules.iter().filter_map(|r| r.target.schema.clone()).collect();
        urns.sort();
        urns.dedup();
        urns
    }
}

impl Target {
    fn is(&self, core_attr: &str) -> bool {
        self.schema.is_none()
            && self.attr.eq_ignore_ascii_case(core_attr)
            && self.sub.is_none()
            && self.selector.is_none()
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

fn valid_ldap_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Reads one rule: a SCIM path of a shape the gateway can store, and an LDAP attribute name.
fn compile_rule(scim: &str, ldap: &str) -> std::result::Result<Rule, String> {
    use crate::scim::filter::{CompareOp, Filter};
    if !valid_ldap_name(ldap) {
        return Err(format!("{ldap:?} is not an LDAP attribute name"));
    }
    let path = parse_path(scim).map_err(|e| format!("{scim:?} is not a SCIM path: {e}"))?;
    let schema = path.attr.urn.clone().filter(|u| !u.eq_ignore_ascii_case(USER_SCHEMA));
    let defs = match &schema {
        None => Some(schema::USER),
        Some(urn) if urn.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) => Some(schema::ENTERPRISE_USER),
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
        if d.mutability == schema::Mutability::ReadOnly || ["active", "password"].contains(&d.name) {
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
        Some(f) => return Err(format!("only selectors of the form [type eq \"work\"] are supported, not [{f}]")),
    };
    if attr_def.is_some_and(|d| d.multi) && selector.is_none() {
        return Err(format!(
            "{scim} is multi-valued: pick one value with a selector, e.g. {}[type eq \"work\"].value",
            path.attr.name
        ));
    }
    let sub = path.attr.sub_attr.clone().or(path.sub_attr.clone());
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
    Ok(Rule { target, ldap: ldap.to_owned(), def: leaf })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The mapping of the shipped example configuration (every `${VAR}` in it has a default).
    pub fn example() -> UserMapping {
        let loaded = crate::config::Loaded::parse("gateway.toml", include_str!("../../gateway.toml").into());
        UserMapping::compile(&loaded.expect("example config parses").config.users).expect("example rules compile")
    }

    #[test]
    fn compiles_rule_shapes() {
        let r = compile_rule("emails[type eq \"work\"].value", "mail").unwrap();
        assert_eq!(r.target.selector, Some(("type".into(), "work".into())));
        assert_eq!(r.target.sub.as_deref(), Some("value"));
        let r = compile_rule("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "ou").unwrap();
        assert_eq!(r.target.schema.as_deref(), Some(ENTERPRISE_USER_SCHEMA));
        let r = compile_rule("NAME.givenname", "givenName").unwrap();
        assert_eq!((r.target.attr.as_str(), r.target.sub.as_deref()), ("name", Some("givenName")));
        assert!(compile_rule("urn:example:acme:2.0:User:costCenter", "departmentNumber").is_ok());
        for (bad, why) in [
            ("name", "complex"),
            ("emails", "multi-valued"),
            ("emails[value co \"x\"].value", "selectors"),
            ("bogus", "not an attribute"),
            ("id", "cannot be mapped"),
            ("name.nope", "no sub-attribute"),
        ] {
            let e = compile_rule(bad, "cn").unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(compile_rule("userName", "u id").is_err());
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
