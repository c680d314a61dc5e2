//! What users and groups share: where entries live, how they are named and identified,
//! and the attribute rules.

use std::ops::Range;

use crate::config::{Dialect, Direction, ResourceConfig};
use crate::directory::LdapFilter;
use crate::scim::discovery::Advertised;
use crate::scim::schema::Kind;

use super::transform::{self, Piece, Steps, Transform};
use super::{compile_rule, valid_ldap_name, Computed, Rule, RuleError};

#[derive(Debug, Clone)]
pub struct Entity {
    /// `User` or `Group`: `meta.resourceType`.
    pub resource_type: &'static str,
    /// The core schema URN.
    pub schema: &'static str,
    pub rules: Vec<Rule>,
    /// Attributes written from templates and constants.
    pub computed: Vec<Computed>,
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
    /// A number attribute allocated for new entries, with its inclusive range.
    pub allocate: Option<(String, u32, u32)>,
    /// Refuse attributes no rule stores (see [`Entity::unmapped`]).
    pub strict: bool,
}

impl Entity {
    pub fn compile(
        cfg: &ResourceConfig,
        resource_type: &'static str,
        schema: &'static str,
    ) -> Result<Entity, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut computed: Vec<Computed> = Vec::new();
        for r in &cfg.attributes {
            let ldap = r.ldap.get_ref();
            let err = |span: Range<usize>| move |message: String| RuleError { span, message };
            if !valid_ldap_name(ldap) {
                return Err(err(r.ldap.span())(format!("{ldap:?} is not an LDAP attribute name")));
            }
            let taken = rules
                .iter()
                .map(|o| (&o.ldap, o.target.to_string()))
                .chain(computed.iter().map(|c| (&c.ldap, "a template".into())));
            if let Some((_, from)) = taken.into_iter().find(|(l, _)| l.eq_ignore_ascii_case(ldap)) {
                return Err(err(r.ldap.span())(format!("LDAP attribute {ldap} is already mapped from {from}")));
            }
            let mut steps = Steps { transforms: Vec::new(), default: r.default.clone() };
            for t in &r.transform {
                steps.transforms.push(Transform::parse(t.get_ref()).map_err(err(t.span()))?);
            }
            if let Some(rep) = &r.replace {
                let [pattern, with] = rep.get_ref();
                steps.transforms.push(Transform::replace(pattern, with).map_err(err(rep.span()))?);
            }
            match (&r.scim, &r.template, &r.constant) {
                (Some(scim), None, None) => {
                    let mut rule = compile_rule(scim.get_ref(), ldap, schema).map_err(err(scim.span()))?;
                    if rules.iter().any(|o| o.target == rule.target) {
                        return Err(err(scim.span())(format!("{} is mapped twice", rule.target)));
                    }
                    if let Some([t, f]) = &r.boolean {
                        if rule.def.is_none_or(|d| d.kind != Kind::Boolean) {
                            return Err(err(scim.span())(format!(
                                "boolean = [..] needs a boolean attribute, not {}",
                                rule.target
                            )));
                        }
                        rule.boolean = Some((t.clone(), f.clone()));
                    }
                    if r.required && !r.direction.writes() {
                        return Err(err(scim.span())("required = true needs a rule that is written".into()));
                    }
                    rule.direction = r.direction;
                    rule.required = r.required;
                    rule.steps = steps;
                    rules.push(rule);
                }
                (None, Some(template), None) => {
                    let compile = |path: &str| compile_rule(path, ldap, schema);
                    let pieces =
                        transform::parse_template(template.get_ref(), compile).map_err(err(template.span()))?;
                    computed.push(Computed { ldap: ldap.clone(), pieces, steps });
                }
                (None, None, Some(constant)) => {
                    computed.push(Computed { ldap: ldap.clone(), pieces: vec![Piece::Text(constant.clone())], steps });
                }
                _ => return Err(err(r.ldap.span())("give exactly one of scim, template and constant".into())),
            }
            let sourced_by_path = r.scim.is_some();
            if !sourced_by_path && (r.direction != Direction::Both || r.boolean.is_some() || r.required) {
                return Err(err(r.ldap.span())(
                    "templates and constants are written only: no direction, boolean or required".into(),
                ));
            }
        }
        let rdn = cfg.rdn_attribute.get_ref();
        let written =
            rules.iter().filter(|r| r.direction.writes()).map(|r| &r.ldap).chain(computed.iter().map(|c| &c.ldap));
        if !written.into_iter().any(|l| l.eq_ignore_ascii_case(rdn)) {
            return Err(RuleError {
                span: cfg.rdn_attribute.span(),
                message: format!("rdn_attribute {rdn} must be written by one of the rules"),
            });
        }
        let filter = cfg.filter.get_ref().trim();
        if ldap3::parse_filter(filter).is_err() {
            return Err(RuleError {
                span: cfg.filter.span(),
                message: format!("{filter:?} is not a valid LDAP filter"),
            });
        }
        let allocate = match &cfg.allocate {
            Some(a) if !valid_ldap_name(&a.attribute) || a.range[0] > a.range[1] => {
                return Err(RuleError {
                    span: cfg.rdn_attribute.span(),
                    message: format!("allocate needs an LDAP attribute and a range [first, last], not {a:?}"),
                })
            }
            Some(a) => Some((a.attribute.clone(), a.range[0], a.range[1])),
            None => None,
        };
        // Written-only attributes are read too: updates compare before they write.
        let mut read_attrs: Vec<String> =
            rules.iter().map(|r| r.ldap.clone()).chain(computed.iter().map(|c| c.ldap.clone())).collect();
        // Filled in from the dialect at load; OpenLDAP's when the rules are compiled alone.
        let [id_attr, created_attr, modified_attr, version_attr] = Dialect::default().meta_attributes(cfg);
        read_attrs.extend([&id_attr, &created_attr, &modified_attr, &version_attr].map(Clone::clone));
        Ok(Entity {
            resource_type,
            schema,
            rules,
            computed,
            base_dn: cfg.base_dn.as_str().to_owned(),
            filter: LdapFilter::Configured(filter.to_owned()),
            rdn_attr: rdn.clone(),
            object_classes: cfg.object_classes.clone(),
            id_attr,
            created_attr,
            modified_attr,
            version_attr,
            read_attrs,
            allocate,
            strict: cfg.strict,
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
        let valid = !Dialect::is_uuid_attribute(&self.id_attr) || uuid::Uuid::try_parse(id).is_ok();
        valid.then(|| self.filter.clone().and(LdapFilter::eq(&self.id_attr, id)))
    }

    /// What discovery may offer: every mapped attribute and sub-attribute, plus `id` and `meta`.
    pub fn advertised(&self) -> Vec<Advertised> {
        let core = |attr: &str, sub: Option<&str>| Advertised {
            attr: attr.into(),
            sub: sub.map(Into::into),
            ..Default::default()
        };
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
                required: r.required,
                ..Default::default()
            };
            out.push(at(None));
            out.extend(t.sub.as_deref().map(|s| at(Some(s))));
            if let Some((key, value)) = &t.selector {
                out.push(Advertised { canonical: Some(value.clone()), required: false, ..at(Some(key)) });
                // One value is stored per selector; the gateway reports it as the primary one.
                out.push(Advertised { computed: true, required: false, ..at(Some("primary")) });
            }
        }
        out.dedup();
        out
    }

    /// The attributes of `res` that no rule stores and the gateway does not handle itself
    /// (`handled`: `active`, `members`, …), by top-level name or `urn:…:name`.
    pub fn unmapped(&self, res: &serde_json::Map<String, serde_json::Value>, handled: &[&str]) -> Vec<String> {
        let templated = self.computed.iter().flat_map(|c| &c.pieces).filter_map(|p| match p {
            Piece::Value(rule) => Some(&rule.target),
            Piece::Text(_) => None,
        });
        let targets: Vec<&super::Target> = self.rules.iter().map(|r| &r.target).chain(templated).collect();
        let stored = |schema: Option<&str>, attr: &str| {
            targets.iter().any(|t| {
                t.schema.as_deref().map(str::to_ascii_lowercase) == schema.map(str::to_ascii_lowercase)
                    && t.attr.eq_ignore_ascii_case(attr)
            })
        };
        let mut out = Vec::new();
        for (key, value) in res {
            let lower = key.to_ascii_lowercase();
            if ["schemas", "id", "meta"].contains(&lower.as_str())
                || handled.iter().any(|h| h.eq_ignore_ascii_case(key))
            {
                continue;
            }
            match value.as_object() {
                Some(inner) if lower.starts_with("urn:") && !lower.eq_ignore_ascii_case(self.schema) => {
                    out.extend(inner.keys().filter(|a| !stored(Some(key), a)).map(|a| format!("{key}:{a}")));
                }
                _ if !stored(None, key) => out.push(key.clone()),
                _ => {}
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::USER_SCHEMA;
    use serde_json::json;

    fn compile(rules: &str) -> Result<Entity, String> {
        let text = format!("base_dn = \"ou=people,dc=x\"\nfilter = \"(objectClass=person)\"\nrdn_attribute = \"uid\"\nobject_classes = [\"person\"]\n{rules}");
        let cfg: ResourceConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        Entity::compile(&cfg, "User", USER_SCHEMA).map_err(|e| e.message)
    }

    #[test]
    fn rule_forms() {
        let e = compile(
            r#"
            [[attribute]]
            scim = "userName"
            ldap = "uid"
            transform = ["trim", "lower"]
            replace = ["@.*$", ""]
            [[attribute]]
            ldap = "cn"
            template = "{name.givenName} {name.familyName}"
            [[attribute]]
            ldap = "loginShell"
            constant = "/bin/bash"
            [[attribute]]
            scim = "title"
            ldap = "title"
            default = "Staff"
            [[attribute]]
            scim = "nickName"
            ldap = "initials"
            direction = "read"
            [[attribute]]
            scim = 'emails[type eq "work"].primary'
            ldap = "x-primary"
            boolean = ["Y", "N"]
            "#,
        )
        .unwrap();
        let res = json!({"userName": " JDoe@Example.com", "name": {"familyName": "Doe"}, "nickName": "JD",
                         "emails": [{"type": "work", "primary": true}]});
        let v = e.values(res.as_object().unwrap()).unwrap();
        assert_eq!(v["uid"], "jdoe");
        assert_eq!(v["cn"], "Doe");
        assert_eq!(v["loginShell"], "/bin/bash");
        assert_eq!(v["title"], "Staff");
        assert_eq!(v["x-primary"], "Y");
        assert!(!v.contains_key("initials"), "read-only rules are not written");
        let entry = crate::directory::Entry::new("uid=jdoe,ou=people,dc=x")
            .with("uid", vec!["jdoe".into()])
            .with("initials", vec!["JD".into()])
            .with("cn", vec!["Doe".into()])
            .with("x-primary", vec!["y".into()]);
        let r = e.base_resource(&entry, "http://h/Users");
        assert_eq!(r["nickName"], "JD");
        assert_eq!(r["emails"][0]["primary"], true);
        assert!(r.get("cn").is_none() && !r.contains_key("name"), "templates are not read back");
        assert!(e.changes(&entry, &v).iter().all(|c| c.attr() != "initials"));
        let extra = json!({"userName": "a", "name": {"givenName": "x"}, "locale": "en", "active": true,
                           "urn:x:ext": {"costCenter": "1"}, "id": "i", "schemas": []});
        assert_eq!(e.unmapped(extra.as_object().unwrap(), &["active"]), ["locale", "urn:x:ext:costCenter"]);
    }

    #[test]
    fn a_required_value_must_come_or_default() {
        let rules = |default: &str| {
            format!("[[attribute]]\nscim = \"userName\"\nldap = \"uid\"\n[[attribute]]\nscim = \"name.familyName\"\nldap = \"sn\"\nrequired = true\n{default}")
        };
        let without = json!({"userName": "a", "name": {"givenName": "x"}});
        let e = compile(&rules("")).unwrap();
        let err = e.values(without.as_object().unwrap()).unwrap_err();
        assert!(err.to_string().contains("name.familyName is required"), "{err}");
        let sn = &e.advertised().into_iter().find(|a| a.sub.as_deref() == Some("familyName")).unwrap();
        assert!(sn.required);
        let e = compile(&rules("default = \"-\"")).unwrap();
        assert_eq!(e.values(without.as_object().unwrap()).unwrap()["sn"], "-");
    }

    #[test]
    fn rule_mistakes() {
        let cases = [
            ("[[attribute]]\nldap = \"uid\"", "exactly one of scim, template and constant"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\ntemplate = \"x\"", "exactly one"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\ntransform = [\"shout\"]", "unknown transform"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\nreplace = [\"(\", \"\"]", "replace pattern"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\nboolean = [\"Y\", \"N\"]", "needs a boolean"),
            ("[[attribute]]\nldap = \"uid\"\ntemplate = \"{nope}\"", "not an attribute"),
            ("[[attribute]]\nldap = \"uid\"\nconstant = \"x\"\ndirection = \"read\"", "written only"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\ndirection = \"read\"", "must be written"),
            ("[[attribute]]\nldap = \"uid\"\nconstant = \"x\"\nrequired = true", "written only"),
            (
                "[[attribute]]\nldap = \"sn\"\nscim = \"title\"\nrequired = true\ndirection = \"read\"",
                "required = true",
            ),
            (
                "[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\n[[attribute]]\nldap = \"UID\"\nconstant = \"x\"",
                "already mapped",
            ),
        ];
        for (rules, why) in cases {
            let e = compile(rules).err().unwrap_or_default();
            assert!(e.contains(why), "{rules}: {e}");
        }
    }
}
