//! Groups: the shared rules plus membership, stored as `member` / `uniqueMember` DNs or as
//! posixGroup `memberUid` values.

use std::ops::Deref;

use serde_json::{json, Value};

use super::{Entity, Error, Result, RuleError};
use crate::config::{Flavour, ResourceConfig, UserGroups};
use crate::directory::{Entry, LdapFilter};
use crate::scim::discovery::Advertised;
use crate::scim::filter::{AttrPath, CompareOp, Filter};
use crate::scim::json::get_ci;
use crate::scim::patch::{Op, Operation};
use crate::scim::GROUP_SCHEMA;

#[derive(Debug, Clone)]
pub struct GroupMapping {
    entity: Entity,
    pub members: Members,
}

impl Deref for GroupMapping {
    type Target = Entity;
    fn deref(&self) -> &Entity {
        &self.entity
    }
}

/// How membership is stored, from `[groups.members]`.
#[derive(Debug, Clone)]
pub struct Members {
    /// The group attribute that lists members.
    pub attr: String,
    /// posixGroup: members are listed by this user attribute's value, not by DN.
    pub by_value_of: Option<String>,
    /// Stands in while a group has no members (groupOfNames requires one); never shown.
    pub empty_member: Option<String>,
    pub user_groups: UserGroups,
    pub remove_deleted_users: bool,
    /// Attributes a new group gets besides its rules' (AD: `groupType`).
    pub on_create: crate::directory::Attributes,
}

/// A member as the IdP names it: a user's or a group's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: String,
    /// `User` or `Group` when the IdP says.
    pub kind: Option<String>,
}

impl GroupMapping {
    pub fn compile(cfg: &ResourceConfig) -> std::result::Result<GroupMapping, RuleError> {
        let entity = Entity::compile(cfg, "Group", GROUP_SCHEMA)?;
        entity.require(cfg, "displayName")?;
        if let Some(d) = &cfg.deactivation {
            return Err(RuleError { span: d.span(), message: "groups cannot be deactivated".into() });
        }
        if let Some(u) = cfg.attributes.iter().find_map(|r| r.unique.as_ref()) {
            return Err(RuleError { span: u.span(), message: "unique candidates are for [users] rules".into() });
        }
        if cfg.table.is_some() {
            // Membership lives in its own table (config checked it); nothing LDAP-shaped.
            let members = Members {
                attr: crate::directory::postgres::sql::MEMBERS.into(),
                by_value_of: None,
                empty_member: None,
                user_groups: UserGroups::Search,
                remove_deleted_users: false,
                on_create: Vec::new(),
            };
            return Ok(GroupMapping { entity, members });
        }
        let spanned = cfg.members.as_ref().ok_or_else(|| RuleError {
            span: cfg.rdn_attribute.span(),
            message: "[groups] needs members = { flavour = \"groupOfNames\", ... }".into(),
        })?;
        let m = spanned.get_ref();
        let fail = |message: &str| Err(RuleError { span: spanned.span(), message: message.into() });
        let (attr, by_value_of) = match m.flavour {
            Flavour::GroupOfNames => ("member", None),
            Flavour::GroupOfUniqueNames => ("uniqueMember", None),
            Flavour::PosixGroup => ("memberUid", Some(m.member_uid_attribute.clone())),
            Flavour::Group => ("member", None),
        };
        let needs_member = matches!(m.flavour, Flavour::GroupOfNames | Flavour::GroupOfUniqueNames);
        if needs_member && m.empty_member.is_none() {
            return fail("groupOfNames and groupOfUniqueNames need at least one member: set empty_member to a DN");
        }
        if m.flavour == Flavour::PosixGroup
            && entity.allocate.as_ref().is_none_or(|a| !a.attr.eq_ignore_ascii_case("gidNumber"))
        {
            return fail(
                "posixGroup needs allocate = { attribute = \"gidNumber\", range = [first, last] } in [groups]",
            );
        }
        if by_value_of.is_some() && m.user_groups == UserGroups::MemberOf {
            return fail("posixGroup membership is not reflected in memberOf: set user_groups = \"search\"");
        }
        let members = Members {
            attr: attr.into(),
            by_value_of,
            empty_member: m.empty_member.clone(),
            user_groups: m.user_groups,
            remove_deleted_users: m.remove_deleted_users,
            on_create: match m.flavour {
                Flavour::Group => vec![("groupType".into(), vec![m.group_type.value().to_string()])],
                _ => Vec::new(),
            },
        };
        Ok(GroupMapping { entity, members })
    }

    /// Groups named `display_name`.
    pub fn display_name_filter(&self, display_name: &str) -> LdapFilter {
        let rule = self.rule_for("displayName").expect("checked at compile");
        self.filter.clone().and(LdapFilter::eq(&rule.ldap, display_name))
    }

    /// Discovery: the mapped attributes plus `members`.
    pub fn advertised(&self) -> Vec<Advertised> {
        let mut out = self.entity.advertised();
        let members =
            |sub: Option<&str>| Advertised { attr: "members".into(), sub: sub.map(Into::into), ..Default::default() };
        out.push(members(None));
        out.extend(["value", "$ref", "display", "type"].map(|s| members(Some(s))));
        out.extend(["User", "Group"].map(|t| Advertised { canonical: Some(t.into()), ..members(Some("type")) }));
        out
    }

    /// The SCIM group for `entry`; `members` are already resolved (None: not asked for).
    pub fn to_resource(&self, entry: &Entry, location: &str, members: Option<Vec<Value>>) -> Value {
        let mut res = self.base_resource(entry, location);
        if let Some(m) = members {
            res.insert("members".into(), Value::Array(m));
        }
        Value::Object(res)
    }

    /// The raw member values of an entry, without the empty-group stand-in.
    pub fn member_values<'a>(&self, entry: &'a Entry) -> impl Iterator<Item = &'a String> + 'a {
        let placeholder = self.members.empty_member.clone();
        entry
            .values(&self.members.attr)
            .iter()
            .filter(move |v| placeholder.as_ref().is_none_or(|p| !p.eq_ignore_ascii_case(v)))
    }
}

/// The members a SCIM value lists (`[{"value": id, "type": "User"}, …]`, or one such object).
pub fn member_refs(value: &Value) -> Result<Vec<MemberRef>> {
    let items = match value {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        single => std::slice::from_ref(single),
    };
    items
        .iter()
        .map(|m| {
            let obj = m.as_object().ok_or_else(|| Error::value(format!("a member must be an object, not {m}")))?;
            let id = get_ci(obj, "value").and_then(Value::as_str).filter(|s| !s.is_empty());
            let id = id.ok_or_else(|| Error::value(format!("a member needs a string value: {m}")))?;
            let kind = get_ci(obj, "type").and_then(Value::as_str).map(str::to_owned);
            Ok(MemberRef { id: id.to_owned(), kind })
        })
        .collect()
}

/// A membership change a PATCH asks for, in terms of member ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    Add(Vec<MemberRef>),
    Remove(Vec<MemberRef>),
    RemoveAll,
    /// The whole list: the gateway applies the difference.
    Replace(Vec<MemberRef>),
}

/// Splits a group PATCH into membership changes and the operations on everything else,
/// so members are changed value by value and the member list is never read to patch it.
pub fn split_member_ops(ops: Vec<Operation>) -> Result<(Vec<MemberOp>, Vec<Operation>)> {
    let mut members = Vec::new();
    let mut rest = Vec::new();
    let is_members = |p: &AttrPath| {
        p.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA)) && p.name.eq_ignore_ascii_case("members")
    };
    for op in ops {
        match (op.path, op.value) {
            (Some(path), value) if is_members(&path.attr) => {
                if path.attr.sub_attr.is_some() || path.sub_attr.is_some() {
                    return Err(Error::value("only whole members can be changed, not their sub-attributes"));
                }
                let refs = || member_refs(value.as_ref().unwrap_or(&Value::Null));
                members.push(match (op.op, &path.filter) {
                    (Op::Add, None) => MemberOp::Add(refs()?),
                    (Op::Replace, None) => MemberOp::Replace(refs()?),
                    (Op::Remove, None) if value.is_some() => MemberOp::Remove(refs()?),
                    (Op::Remove, None) => MemberOp::RemoveAll,
                    (Op::Remove, Some(f)) => MemberOp::Remove(ids_in(f)?),
                    (_, Some(f)) => return Err(Error::value(format!("members[{f}] can only be removed"))),
                });
            }
            (None, Some(Value::Object(mut fields))) => {
                if let Some(key) = fields.keys().find(|k| k.eq_ignore_ascii_case("members")).cloned() {
                    let refs = member_refs(&fields.remove(&key).unwrap_or(Value::Null))?;
                    members.push(match op.op {
                        Op::Add => MemberOp::Add(refs),
                        _ => MemberOp::Replace(refs),
                    });
                }
                rest.push(Operation { op: op.op, path: None, value: Some(Value::Object(fields)) });
            }
            (path, value) => rest.push(Operation { op: op.op, path, value }),
        }
    }
    Ok((members, rest))
}

/// The ids of `value eq "id"` comparisons joined by `or`: Okta's `members[value eq "id"]`.
fn ids_in(f: &Filter) -> Result<Vec<MemberRef>> {
    match f {
        Filter::Compare { path, op: CompareOp::Eq, value: Value::String(id) }
            if path.name.eq_ignore_ascii_case("value") =>
        {
            Ok(vec![MemberRef { id: id.clone(), kind: None }])
        }
        Filter::Or(a, b) => Ok([ids_in(a)?, ids_in(b)?].concat()),
        _ => {
            Err(Error::value(format!("members[{f}]: only value eq \"id\" (or several, joined by or) selects members")))
        }
    }
}

/// A member as SCIM shows it.
pub fn member_json(id: &str, kind: &str, location: &str, display: Option<&str>) -> Value {
    let mut m = json!({"value": id, "type": kind, "$ref": format!("{location}/{id}")});
    if let Some(d) = display {
        m["display"] = d.into();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::tests::example_groups;

    #[test]
    fn unique_candidates_are_for_users() {
        let text = include_str!("../../gateway.toml").replace(
            "[[groups.attribute]]\nscim = \"externalId\"",
            "[[groups.attribute]]\nldap = \"ou\"\ntemplate = \"{displayName}\"\nunique = { suffixes = 9 }\n\n[[groups.attribute]]\nscim = \"externalId\"",
        );
        let cfg = crate::config::Loaded::parse("g.toml", text).map(|l| l.config);
        let e = match cfg {
            Ok(c) => GroupMapping::compile(c.groups.as_ref().unwrap()).err().map(|e| e.message),
            Err(e) => Some(e.to_string()),
        };
        assert!(e.as_deref().unwrap_or_default().contains("unique candidates are for [users]"), "{e:?}");
    }

    #[test]
    fn members_and_resources() {
        let g = example_groups();
        assert_eq!(g.members.attr, "member");
        let refs = member_refs(&json!([{"value": "a", "display": "x"}, {"value": "b", "type": "Group"}])).unwrap();
        assert_eq!(refs[1], MemberRef { id: "b".into(), kind: Some("Group".into()) });
        assert_eq!(member_refs(&json!({"value": "c"})).unwrap().len(), 1);
        assert!(member_refs(&json!([{"display": "no value"}])).is_err());
        assert!(member_refs(&json!(["bare"])).is_err());
        let placeholder = g.members.empty_member.clone().unwrap();
        let e = Entry::new("cn=eng,ou=groups,dc=example,dc=test")
            .with("cn", vec!["eng".into()])
            .with("member", vec![placeholder.to_uppercase(), "uid=a,ou=people,dc=example,dc=test".into()])
            .with("entryUUID", vec!["0b0e7a4c-0000-4000-8000-000000000001".into()]);
        assert_eq!(g.member_values(&e).count(), 1, "the stand-in is hidden");
        let r = g.to_resource(
            &e,
            "http://h/scim/v2/Groups",
            Some(vec![member_json("u1", "User", "http://h/scim/v2/Users", None)]),
        );
        assert_eq!(r["displayName"], "eng");
        assert_eq!(r["meta"]["resourceType"], "Group");
        assert_eq!(r["schemas"], json!([GROUP_SCHEMA]));
        assert_eq!(r["members"][0]["$ref"], "http://h/scim/v2/Users/u1");
        assert!(g.display_name_filter("a)(x").to_string().contains(r"a\29\28x"));
    }

    fn ops(v: Value) -> Vec<Operation> {
        crate::scim::patch::parse(&json!({"schemas": [crate::scim::PATCH_OP_SCHEMA], "Operations": v})).unwrap()
    }

    #[test]
    fn member_operations_in_every_idp_form() {
        let r = |id: &str| MemberRef { id: id.into(), kind: None };
        let (m, rest) = split_member_ops(ops(json!([
            {"op": "add", "path": "members", "value": [{"value": "a", "display": "jdoe"}]},
            {"op": "remove", "path": "members[value eq \"b\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "c"}]},
            {"op": "Add", "path": "members", "value": [{"value": "d"}]},
            {"op": "replace", "value": {"id": "g", "displayName": "Eng EU"}},
            {"op": "replace", "path": "members", "value": [{"value": "e"}]},
            {"op": "remove", "path": "members"},
            {"op": "remove", "path": "members[value eq \"f\" or value eq \"g\"]"},
        ])))
        .unwrap();
        assert_eq!(
            m,
            vec![
                MemberOp::Add(vec![r("a")]),
                MemberOp::Remove(vec![r("b")]),
                MemberOp::Remove(vec![r("c")]),
                MemberOp::Add(vec![r("d")]),
                MemberOp::Replace(vec![r("e")]),
                MemberOp::RemoveAll,
                MemberOp::Remove(vec![r("f"), r("g")]),
            ]
        );
        assert_eq!(rest.len(), 1);
        let (m, rest) = split_member_ops(ops(
            json!([{"op": "replace", "value": {"displayName": "x", "members": [{"value": "z"}]}}]),
        ))
        .unwrap();
        assert_eq!(
            (m, rest[0].value.clone()),
            (vec![MemberOp::Replace(vec![r("z")])], Some(json!({"displayName": "x"})))
        );
        for bad in [
            json!([{"op": "replace", "path": "members[value eq \"a\"]", "value": {"value": "b"}}]),
            json!([{"op": "remove", "path": "members[display eq \"a\"]"}]),
            json!([{"op": "add", "path": "members.display", "value": "x"}]),
            json!([{"op": "add", "path": "members", "value": ["bare-id"]}]),
        ] {
            assert!(split_member_ops(ops(bad.clone())).is_err(), "{bad}");
        }
    }
}
