//! What users and groups share: where entries live, how they are named and identified,
//! and the attribute rules.

use std::ops::Range;

use crate::config::{AttributeRule, Direction, ResourceConfig};
use crate::dialect::Dialect;
use crate::directory::{dn, LdapFilter};
use crate::scim::discovery::Advertised;
use crate::scim::schema::Kind;

use super::transform::{self, Characters, Piece, Steps, Transform};
use super::{compile_rule, valid_ldap_name, Computed, Rule, RuleError, Unique};

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
    /// A number attribute allocated for new entries.
    pub allocate: Option<Allocation>,
    /// Refuse attributes no rule stores (see [`Entity::unmapped`]).
    pub strict: bool,
}

/// `allocate`: numbers from `first` to `last` (inclusive), handed out through the `counter`
/// entry, which holds the last number handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub attr: String,
    pub first: u32,
    pub last: u32,
    pub counter: String,
}

impl Entity {
    pub fn compile(
        cfg: &ResourceConfig,
        resource_type: &'static str,
        schema: &'static str,
    ) -> Result<Entity, RuleError> {
        super::custom::check_schemas(&cfg.schema, schema).map_err(|(span, message)| RuleError { span, message })?;
        let mut rules: Vec<Rule> = Vec::new();
        let mut computed: Vec<Computed> = Vec::new();
        // A table's columns were checked as SQL names when the file was loaded.
        let table = cfg.table.is_some();
        for r in &cfg.attributes {
            let ldap = r.ldap.get_ref();
            let err = |span: Range<usize>| move |message: String| RuleError { span, message };
            if !table && !valid_ldap_name(ldap) {
                return Err(err(r.ldap.span())(format!("{ldap:?} is not an LDAP attribute name")));
            }
            let taken = rules
                .iter()
                .map(|o| (&o.ldap, o.target.to_string()))
                .chain(computed.iter().map(|c| (&c.ldap, "a template".into())));
            if let Some((_, from)) = taken.into_iter().find(|(l, _)| l.eq_ignore_ascii_case(ldap)) {
                return Err(err(r.ldap.span())(format!("LDAP attribute {ldap} is already mapped from {from}")));
            }
            let mut steps = Steps { default: r.default.clone(), ..Steps::default() };
            for t in &r.transform {
                steps.transforms.push(Transform::parse(t.get_ref()).map_err(err(t.span()))?);
            }
            if let Some(rep) = &r.replace {
                let [pattern, with] = rep.get_ref();
                steps.transforms.push(Transform::replace(pattern, with).map_err(err(rep.span()))?);
            }
            if let Some(c) = &r.characters {
                steps.characters = Some(Characters::new(c.get_ref()).map_err(err(c.span()))?);
            }
            if let Some(max) = &r.max_length {
                if *max.get_ref() == 0 {
                    return Err(err(max.span())("max_length must be at least 1".into()));
                }
                steps.max_length = Some(*max.get_ref());
            }
            if let (Some(u), None) = (&r.unique, &r.template) {
                return Err(err(u.span())("unique needs a template: a value derived from others".into()));
            }
            match (&r.scim, &r.template, &r.constant) {
                (Some(scim), None, None) => {
                    let mut rule = compile_rule(scim.get_ref(), ldap, schema).map_err(err(scim.span()))?;
                    rule.direction = r.direction;
                    super::custom::declare(&mut rule, &cfg.schema).map_err(err(scim.span()))?;
                    if rules.iter().any(|o| o.target == rule.target) {
                        return Err(err(scim.span())(format!("{} is mapped twice", rule.target)));
                    }
                    if let Some([t, f]) = &r.boolean {
                        if rule.kind() != Some(Kind::Boolean) {
                            return Err(err(scim.span())(format!(
                                "boolean = [..] needs a boolean attribute, not {}",
                                rule.target
                            )));
                        }
                        rule.boolean = Some((t.clone(), f.clone()));
                    }
                    if r.required && !rule.direction.writes() {
                        return Err(err(scim.span())("required = true needs a rule that is written".into()));
                    }
                    rule.required |= r.required;
                    rule.steps = steps;
                    values_rule(&mut rule, r).map_err(err(scim.span()))?;
                    rules.push(rule);
                }
                (None, Some(template), None) => {
                    let written: Vec<&String> =
                        rules.iter().map(|r| &r.ldap).chain(computed.iter().map(|c| &c.ldap)).collect();
                    let parse = |text: &str| {
                        let pieces = transform::parse_template(text, |path: &str| compile_rule(path, ldap, schema))?;
                        match pieces.iter().find_map(|p| match p {
                            Piece::Attr(a) if !written.iter().any(|w| w.eq_ignore_ascii_case(a)) => Some(a),
                            _ => None,
                        }) {
                            Some(a) => Err(format!("{{ldap:{a}}} needs an earlier rule that writes {a}")),
                            None => Ok(pieces),
                        }
                    };
                    let pieces = parse(template.get_ref()).map_err(err(template.span()))?;
                    let unique = match &r.unique {
                        Some(u) => Some(Unique::compile(u.get_ref(), parse).map_err(err(u.span()))?),
                        None => None,
                    };
                    computed.push(Computed { ldap: ldap.clone(), pieces, steps, unique });
                }
                (None, None, Some(constant)) => {
                    let pieces = vec![Piece::Text(constant.clone())];
                    computed.push(Computed { ldap: ldap.clone(), pieces, steps, unique: None });
                }
                _ => return Err(err(r.ldap.span())("give exactly one of scim, template and constant".into())),
            }
            let sourced_by_path = r.scim.is_some();
            let two_way = r.boolean.is_some()
                || r.split.is_some()
                || r.join.is_some()
                || r.convert.is_some()
                || r.reference.is_some();
            if !sourced_by_path && (r.direction != Direction::Both || two_way || r.required) {
                return Err(err(r.ldap.span())(
                    "templates and constants are written only: no direction, boolean, required, split, join or convert"
                        .into(),
                ));
            }
        }
        let rdn = cfg.rdn_attribute.get_ref();
        let written =
            rules.iter().filter(|r| r.direction.writes()).map(|r| &r.ldap).chain(computed.iter().map(|c| &c.ldap));
        if !table && !written.into_iter().any(|l| l.eq_ignore_ascii_case(rdn)) {
            return Err(RuleError {
                span: cfg.rdn_attribute.span(),
                message: format!("rdn_attribute {rdn} must be written by one of the rules"),
            });
        }
        let filter = cfg.filter.get_ref().trim();
        if !table && ldap3::parse_filter(filter).is_err() {
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
            Some(a) => Some(Allocation {
                attr: a.attribute.clone(),
                first: a.range[0],
                last: a.range[1],
                counter: a.counter.clone().unwrap_or_else(|| {
                    dn::child(&dn::rdn("cn", &format!("scim-gateway-{}", a.attribute)), cfg.base_dn.as_str())
                }),
            }),
            None => None,
        };
        // Written-only attributes are read too: updates compare before they write.
        let mut read_attrs: Vec<String> =
            rules.iter().map(|r| r.ldap.clone()).chain(computed.iter().map(|c| c.ldap.clone())).collect();
        // Filled in from the dialect at load; OpenLDAP's when the rules are compiled alone.
        let [id_attr, created_attr, modified_attr, version_attr] = cfg.meta_attributes(Dialect::default());
        read_attrs.extend([&id_attr, &created_attr, &modified_attr, &version_attr].map(Clone::clone));
        Ok(Entity {
            resource_type,
            schema,
            rules,
            computed,
            base_dn: cfg.base_dn.as_str().to_owned(),
            // Every row of a table is of its resource type.
            filter: match table {
                true => LdapFilter::And(Vec::new()),
                false => LdapFilter::Configured(filter.to_owned()),
            },
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
                doc: if sub.is_none() { r.custom_doc() } else { None },
                ..Default::default()
            };
            out.push(at(None));
            out.extend(t.sub.as_deref().map(|s| at(Some(s))));
            match &t.selector {
                // The element of this rule is the primary one: `primary` is stored, as where it goes.
                Some(_) if t.picks_primary() => out.push(Advertised { required: false, ..at(Some("primary")) }),
                Some((key, value)) => {
                    out.push(Advertised { canonical: Some(value.clone()), required: false, ..at(Some(key)) })
                }
                None => {}
            }
            if r.reference {
                out.extend(["$ref", "displayName"].map(|s| at(Some(s))));
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
            Piece::Text(_) | Piece::Attr(_) => None,
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

    /// The rules whose SCIM value is a user's id and LDAP value that user's DN.
    pub fn references(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.reference)
    }

    /// The extension schemas that at least one rule writes into.
    pub fn extensions(&self) -> Vec<String> {
        let mut urns: Vec<String> = self.rules.iter().filter_map(|r| r.target.schema.clone()).collect();
        urns.sort();
        urns.dedup();
        urns
    }
}

/// Applies a rule's `split`, `join` and `convert`, refusing combinations that cannot round-trip.
fn values_rule(rule: &mut Rule, r: &AttributeRule) -> Result<(), String> {
    let sep = |s: &Option<toml::Spanned<String>>| s.as_ref().map(|s| s.get_ref().clone());
    if let Some(c) = &r.convert {
        rule.convert = Some(*c.get_ref());
    }
    rule.split = sep(&r.split);
    rule.join = sep(&r.join);
    let scalar = rule.kind().is_none_or(|k| matches!(k, Kind::String | Kind::DateTime | Kind::Binary));
    if [&rule.split, &rule.join].into_iter().flatten().any(String::is_empty) {
        return Err("split and join need a non-empty separator".into());
    }
    if rule.split.is_some() && rule.join.is_some() {
        return Err("give split or join, not both".into());
    }
    if rule.split.is_some() && rule.many {
        return Err(format!("split cuts one SCIM string into several values; {} has several already", rule.target));
    }
    if rule.join.is_some() {
        // A custom extension attribute becomes multi-valued by being joined.
        match (rule.many, rule.kind()) {
            (true, _) => {}
            (false, None) if rule.target.sub.is_none() => rule.many = true,
            _ => return Err(format!("join needs several SCIM values; {} has one", rule.target)),
        }
    }
    if !scalar && (rule.split.is_some() || rule.join.is_some() || r.convert.is_some()) {
        return Err(format!("split, join and convert work on string values, not {}", rule.target));
    }
    if rule.binary() && (rule.split.is_some() || rule.join.is_some() || !rule.steps.transforms.is_empty()) {
        return Err("binary values (convert = \"base64\") take no split, join or transform".into());
    }
    if r.reference.is_some() {
        let plain = !rule.many && rule.split.is_none() && rule.convert.is_none() && rule.steps.transforms.is_empty();
        if !(plain && rule.target.sub.as_deref() == Some("value") && rule.steps.default.is_none()) {
            return Err(format!(
                "reference = \"user\" needs the value of a single reference, e.g. manager.value, without split, join, convert, transform or default; not {}",
                rule.target
            ));
        }
        rule.reference = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::directory::Change;
    use crate::mapping::tests::entity as compile;
    use serde_json::{json, Value};

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
        assert_eq!(v["uid"], ["jdoe"]);
        assert_eq!(v["cn"], ["Doe"]);
        assert_eq!(v["loginShell"], ["/bin/bash"]);
        assert_eq!(v["title"], ["Staff"]);
        assert_eq!(v["x-primary"], ["Y"]);
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

    /// Rules of every value kind: selector, the rest, joined, split, time, binary.
    const VALUES_RULES: &str = r#"
            [[attribute]]
            scim = "userName"
            ldap = "uid"
            [[attribute]]
            scim = 'emails[type eq "work"].value'
            ldap = "mail"
            [[attribute]]
            scim = "emails.value"
            ldap = "otherMailbox"
            [[attribute]]
            scim = "phoneNumbers.value"
            ldap = "telephoneNumber"
            join = ", "
            [[attribute]]
            scim = "title"
            ldap = "businessCategory"
            split = ","
            [[attribute]]
            scim = "urn:example:params:scim:schemas:extension:acme:2.0:User:hired"
            ldap = "x-hired"
            convert = "generalized_time"
            [[attribute]]
            scim = "urn:example:params:scim:schemas:extension:acme:2.0:User:badge"
            ldap = "jpegPhoto"
            convert = "base64"
            [[attribute]]
            scim = "urn:example:params:scim:schemas:extension:acme:2.0:User:tags"
            ldap = "x-tags"
            join = ";"
            "#;

    #[test]
    fn values_rules() {
        let e = compile(VALUES_RULES).unwrap();
        let acme = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        let res = json!({"userName": "a",
            "emails": [{"value": "h@x", "type": "home"}, {"value": "w@x", "type": "work"}, {"value": "p@x", "primary": true}],
            "phoneNumbers": [{"value": "1"}, {"value": "2"}],
            "title": "a,b", acme: {"hired": "2026-11-22T22:05:30Z", "badge": "/9g=", "tags": ["x", "y"]}});
        let v = e.values(res.as_object().unwrap()).unwrap();
        assert_eq!(v["mail"], ["w@x"]);
        assert_eq!(v["otherMailbox"], ["p@x", "h@x"], "the rest, primary first");
        assert_eq!(v["telephoneNumber"], ["1, 2"]);
        assert_eq!(v["businessCategory"], ["a", "b"]);
        assert_eq!(v["x-hired"], ["20261122220530Z"]);
        assert_eq!(v["x-tags"], ["x;y"]);
        let (_, attrs, binary) = e.new_entry(&v, vec![]).unwrap();
        assert_eq!(binary, vec![("jpegPhoto".to_string(), vec![vec![0xff, 0xd8]])]);
        assert!(!attrs.iter().any(|(a, _)| a == "jpegPhoto"));
        let mut entry = crate::directory::Entry::new("uid=a,ou=people,dc=x");
        for (a, vals) in attrs {
            entry.insert(&a, vals);
        }
        for (a, vals) in binary {
            entry.insert_binary(&a, vals);
        }
        assert!(e.changes(&entry, &v).is_empty(), "{:?}", e.changes(&entry, &v));
        let r = e.base_resource(&entry, "http://h/Users");
        assert_eq!(
            r["emails"],
            json!([{"type": "work", "value": "w@x"}, {"value": "p@x"}, {"value": "h@x"}]),
            "no rule stores primary: none is shown"
        );
        assert_eq!(r["phoneNumbers"], json!([{"value": "1"}, {"value": "2"}]));
        assert_eq!(r["title"], "a,b");
        assert_eq!(r[acme], json!({"hired": "2026-11-22T22:05:30Z", "badge": "/9g=", "tags": ["x", "y"]}));
        // One value fewer: the attribute is replaced as a whole; a new photo is written as bytes.
        let mut less = v.clone();
        less.insert("otherMailbox".into(), vec!["p@x".into()]);
        less.insert("jpegPhoto".into(), vec!["/9j/".into()]);
        assert_eq!(
            e.changes(&entry, &less),
            [
                Change::Replace("otherMailbox".into(), vec!["p@x".into()]),
                Change::Binary("jpegPhoto".into(), vec![vec![0xff, 0xd8, 0xff]])
            ]
        );
        let bad = json!({"userName": "a", acme: {"hired": "tomorrow"}});
        assert!(e.values(bad.as_object().unwrap()).is_err());
        let bad = json!({"userName": "a", acme: {"badge": "%%"}});
        assert!(e.values(bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn primary_selector_keeps_the_primary_value_apart() {
        let e = compile(
            r#"
            [[attribute]]
            scim = "userName"
            ldap = "uid"
            [[attribute]]
            scim = "emails[primary eq true].value"
            ldap = "mail"
            [[attribute]]
            scim = "emails.value"
            ldap = "otherMailbox"
            "#,
        )
        .unwrap();
        let res = json!({"userName": "a", "emails": [{"value": "h@x", "type": "home"}, {"value": "w@x", "primary": "True"}, {"value": "o@x"}]});
        let v = e.values(res.as_object().unwrap()).unwrap();
        assert_eq!(
            (&v["mail"], &v["otherMailbox"]),
            (&vec!["w@x".to_string()], &vec!["h@x".to_string(), "o@x".to_string()])
        );
        let entry = crate::directory::Entry::new("uid=a,ou=people,dc=x")
            .with("otherMailbox", vec!["h@x".into(), "o@x".into()])
            .with("mail", vec!["w@x".into()]);
        let r = e.base_resource(&entry, "http://h/Users");
        assert_eq!(r["emails"], json!([{"primary": true, "value": "w@x"}, {"value": "h@x"}, {"value": "o@x"}]));
    }

    proptest::proptest! {
        /// SCIM → entry → SCIM is the identity for multi-valued, split, joined, time and binary rules.
        #[test]
        fn round_trip_of_value_rules(
            work in "[a-z]{1,8}@w\\.test",
            others in proptest::collection::vec("[a-z]{1,8}@o\\.test", 0..4),
            phones in proptest::collection::vec("\\+[0-9]{3,10}", 1..4),
            units in proptest::collection::vec("[a-z]{1,6}", 1..4),
            tags in proptest::collection::vec("[a-z ]{0,4}[a-z]", 1..4),
            secs in 0i64..4_000_000_000,
            badge in proptest::collection::vec(proptest::num::u8::ANY, 1..64),
        ) {
            use base64::Engine;
            let acme = "urn:example:params:scim:schemas:extension:acme:2.0:User";
            let mut others = others;
            others.sort();
            others.dedup();
            // No `primary`: these rules do not store it (primary_selector_… has one that does).
            let mut emails = vec![json!({"type": "work", "value": work})];
            emails.extend(others.iter().map(|o| json!({"value": o})));
            let phones: Vec<Value> = phones.iter().map(|p| json!({"value": p})).collect();
            let mut units = units;
            units.sort();
            units.dedup();
            let hired = time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
                .format(&time::format_description::well_known::Rfc3339).unwrap();
            let res = json!({"userName": "u", "emails": emails, "phoneNumbers": phones, "title": units.join(","),
                acme: {"hired": hired, "badge": base64::engine::general_purpose::STANDARD.encode(&badge), "tags": tags}});
            let e = compile(VALUES_RULES).unwrap();
            let v = e.values(res.as_object().unwrap()).unwrap();
            let (dn, attrs, binary) = e.new_entry(&v, vec![]).unwrap();
            let mut entry = crate::directory::Entry::new(dn);
            attrs.into_iter().for_each(|(a, vals)| entry.insert(&a, vals));
            binary.into_iter().for_each(|(a, vals)| entry.insert_binary(&a, vals));
            let back = e.base_resource(&entry, "http://h/Users");
            for key in ["emails", "phoneNumbers", "title", acme] {
                proptest::prop_assert_eq!(&back[key], &res[key], "{}", key);
            }
            proptest::prop_assert!(e.changes(&entry, &v).is_empty());
        }
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
        assert_eq!(e.values(without.as_object().unwrap()).unwrap()["sn"], ["-"]);
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
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\njoin = \",\"", "join needs several"),
            ("[[attribute]]\nldap = \"mail\"\nscim = \"emails.value\"\nsplit = \",\"", "has several already"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\nsplit = \"\"", "non-empty separator"),
            ("[[attribute]]\nldap = \"uid\"\nscim = \"userName\"\nconvert = \"rot13\"", "unknown variant"),
            ("[[attribute]]\nldap = \"x\"\nscim = 'emails[type eq \"work\"].primary'\nsplit = \",\"", "string values"),
            ("[[attribute]]\nldap = \"x\"\ntemplate = \"{userName}\"\nsplit = \",\"", "written only"),
            ("[[attribute]]\nldap = \"x\"\nscim = \"title\"\nreference = \"user\"", "manager.value"),
            ("[[attribute]]\nldap = \"x\"\nscim = \"emails.value\"\nreference = \"user\"", "single reference"),
            (
                "[[attribute]]\nldap = \"jpegPhoto\"\nscim = \"x509Certificates.value\"\ntransform = [\"lower\"]",
                "take no split",
            ),
        ];
        for (rules, why) in cases {
            let e = compile(rules).err().unwrap_or_default();
            assert!(e.contains(why), "{rules}: {e}");
        }
    }
}
