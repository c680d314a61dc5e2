//! What users and groups share: where entries live, how they are named and identified,
//! and the attribute rules.

use crate::config::ResourceConfig;
use crate::directory::LdapFilter;
use crate::scim::discovery::Advertised;

use super::{compile_rule, Rule, RuleError};

#[derive(Debug, Clone)]
pub struct Entity {
    /// `User` or `Group`: `meta.resourceType`.
    pub resource_type: &'static str,
    /// The core schema URN.
    pub schema: &'static str,
    pub rules: Vec<Rule>,
    pub base_dn: String,
    pub filter: LdapFilter,
    pub rdn_attr: String,
    pub object_classes: Vec<String>,
    pub id_attr: String,
    pub created_attr: String,
    pub modified_attr: String,
    pub version_attr: String,
    /// Every attribute a read must ask for (operational ones included).
    pub read_attrs: Vec<String>,
}

impl Entity {
    pub fn compile(
        cfg: &ResourceConfig,
        resource_type: &'static str,
        schema: &'static str,
    ) -> Result<Entity, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        for r in &cfg.attributes {
            let rule = compile_rule(r.scim.get_ref(), r.ldap.get_ref(), schema)
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
        let mut read_attrs: Vec<String> = rules.iter().map(|r| r.ldap.clone()).collect();
        read_attrs.extend(
            [&cfg.id_attribute, &cfg.created_attribute, &cfg.modified_attribute, &cfg.version_attribute]
                .map(Clone::clone),
        );
        Ok(Entity {
            resource_type,
            schema,
            rules,
            base_dn: cfg.base_dn.as_str().to_owned(),
            filter: LdapFilter::Configured(filter.to_owned()),
            rdn_attr: rdn.clone(),
            object_classes: cfg.object_classes.clone(),
            id_attr: cfg.id_attribute.clone(),
            created_attr: cfg.created_attribute.clone(),
            modified_attr: cfg.modified_attribute.clone(),
            version_attr: cfg.version_attribute.clone(),
            read_attrs,
        })
    }

    /// A check for an attribute the resource cannot do without (`userName`, `displayName`).
    pub fn require(&self, cfg: &ResourceConfig, core_attr: &str) -> Result<(), RuleError> {
        match self.rule_for(core_attr) {
            Some(_) => Ok(()),
            None => {
                Err(RuleError { span: cfg.rdn_attribute.span(), message: format!("no rule maps {core_attr}: add one") })
            }
        }
    }

    /// The rule that stores a plain core attribute.
    pub fn rule_for(&self, core_attr: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.target.is(core_attr))
    }

    /// The entry with SCIM `id`; ids that cannot be one never reach the directory.
    pub fn id_filter(&self, id: &str) -> Option<LdapFilter> {
        let valid = !self.id_attr.eq_ignore_ascii_case("entryUUID") || uuid::Uuid::try_parse(id).is_ok();
        valid.then(|| self.filter.clone().and(LdapFilter::eq(&self.id_attr, id)))
    }

    /// What discovery may offer: every mapped attribute and sub-attribute, plus `id` and `meta`.
    pub fn advertised(&self) -> Vec<Advertised> {
        let core =
            |attr: &str, sub: Option<&str>| Advertised { schema: None, attr: attr.into(), sub: sub.map(Into::into) };
        let mut out = vec![core("id", None), core("meta", None)];
        out.extend(
            ["resourceType", "created", "lastModified", "location", "version"].iter().map(|s| core("meta", Some(s))),
        );
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
