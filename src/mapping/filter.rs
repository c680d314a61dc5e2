//! SCIM filter → LDAP filter, through the rules. Every value travels as an assertion value
//! of [`LdapFilter`], which escapes it; attributes no rule maps are refused, never guessed.
//!
//! Some conditions have no exact LDAP form: ordering (`gt`, `ge`, `lt`, `le`) on directory
//! strings, which have no ORDERING rule, and comparisons on `caseExact` attributes, which the
//! directory matches ignoring case. Those translate to a wider filter (a superset of the
//! answer) and the translation says it is not [`Translated::exact`]: the caller then checks
//! the SCIM filter itself on what the directory returns (see `crate::scim::eval`).

use serde_json::Value;

use std::collections::HashMap;

use super::{time, Entity, Error, GroupMapping, Result, Rule, UserMapping, LOCK_ATTR, PERMANENT_LOCK};
use crate::config::{Convert, Deactivation};
use crate::directory::LdapFilter;
use crate::scim::filter::{AttrPath, CompareOp, Filter};
use crate::scim::json::as_bool;
use crate::scim::patch::element_matches;
use crate::scim::schema::Kind;

/// Matches every entry: a condition that is always true once the rules are applied.
fn always() -> LdapFilter {
    LdapFilter::And(Vec::new())
}

/// An LDAP filter for a SCIM filter: the same answer when `exact`, else a superset of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub filter: LdapFilter,
    pub exact: bool,
}

impl Translated {
    fn exact(filter: LdapFilter) -> Self {
        Translated { filter, exact: true }
    }

    fn wider(filter: LdapFilter) -> Self {
        Translated { filter, exact: false }
    }

    /// Combines parts with `and` / `or`: a superset of each part makes a superset of both.
    fn join(parts: Vec<Translated>, make: fn(Vec<LdapFilter>) -> LdapFilter) -> Self {
        let exact = parts.iter().all(|p| p.exact);
        Translated { filter: make(parts.into_iter().map(|p| p.filter).collect()), exact }
    }

    /// `not`: the negation of a superset is a subset, so an inexact part widens to everything.
    fn negate(self) -> Self {
        match self.exact {
            true => Translated::exact(LdapFilter::Not(Box::new(self.filter))),
            false => Translated::wider(always()),
        }
    }

    fn or(parts: Vec<Translated>) -> Self {
        match parts.len() {
            1 => parts.into_iter().next().expect("one part"),
            _ => Translated::join(parts, LdapFilter::Or),
        }
    }
}

/// How a resource type translates the filter nodes only it understands (`active`,
/// `members`); `None` leaves the node to the rules.
type Special<'a> = &'a dyn Fn(&Filter) -> Option<Result<LdapFilter>>;

/// Whether `path` names the core attribute `name` (no sub-attribute unless `sub`).
fn names(path: &AttrPath, schema: &str, name: &str, sub: Option<&str>) -> bool {
    path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(schema))
        && path.name.eq_ignore_ascii_case(name)
        && path.sub_attr.as_deref().map(str::to_ascii_lowercase) == sub.map(str::to_ascii_lowercase)
}

impl UserMapping {
    /// The LDAP filter selecting the users that match `f` (or a superset, see [`Translated`]).
    pub fn ldap_filter(&self, f: &Filter) -> Result<Translated> {
        let active = |node: &Filter| match node {
            Filter::Present(p) if names(p, self.schema, "active", None) => Some(Ok(always())),
            Filter::Compare { path, op, value } if names(path, self.schema, "active", None) => {
                Some(self.active(*op, value))
            }
            _ => None,
        };
        Ok(self.scoped(self.translate(f, &active)?))
    }
}

impl GroupMapping {
    /// The member ids `f` compares with: the caller resolves them to what the member
    /// attribute holds before calling [`GroupMapping::ldap_filter`].
    pub fn member_ids(&self, f: &Filter) -> Vec<String> {
        let mut ids = Vec::new();
        let mut collect = |node: &Filter| {
            if let Some(Ok(Some(id))) = self.member_comparison(node) {
                ids.push(id.to_owned());
            }
        };
        walk(f, &mut collect);
        ids
    }

    /// The LDAP filter selecting the groups that match `f`; `resolved` maps member ids to
    /// member attribute values (ids that resolve to nothing match no group).
    pub fn ldap_filter(&self, f: &Filter, resolved: &HashMap<String, String>) -> Result<Translated> {
        let attr = self.members.attr.as_str();
        let members = |node: &Filter| {
            self.member_comparison(node).map(|r| {
                r.map(|id| match id {
                    None => LdapFilter::present(attr),
                    Some(id) => resolved.get(id).map_or_else(LdapFilter::none, |v| LdapFilter::eq(attr, v)),
                })
            })
        };
        Ok(self.scoped(self.translate(f, &members)?))
    }

    /// Whether `f` has a condition on `members`, which only the directory can decide.
    pub fn mentions_members(&self, f: &Filter) -> bool {
        let mut found = false;
        walk(f, &mut |node| found |= self.member_comparison(node).is_some());
        found
    }

    /// `members pr` (→ `Some(None)`), or an equality on a member's value: `members eq "id"`,
    /// `members.value eq "id"`, `members[value eq "id"]`. Other conditions on members are refused.
    fn member_comparison<'f>(&self, node: &'f Filter) -> Option<Result<Option<&'f str>>> {
        let is_members =
            |p: &AttrPath| names(p, self.schema, "members", None) || names(p, self.schema, "members", Some("value"));
        let refused = || Error::filter("members supports pr and eq on its value only");
        match node {
            Filter::Present(p) if is_members(p) => Some(Ok(None)),
            Filter::Compare { path, op, value } if is_members(path) => Some(match (op, value) {
                (CompareOp::Eq, Value::String(id)) => Ok(Some(id.as_str())),
                _ => Err(refused()),
            }),
            Filter::ValuePath { path, filter } if is_members(path) => Some(match filter.as_ref() {
                Filter::Compare { path: p, op: CompareOp::Eq, value: Value::String(id) }
                    if p.name.eq_ignore_ascii_case("value") =>
                {
                    Ok(Some(id.as_str()))
                }
                _ => Err(refused()),
            }),
            _ => None,
        }
    }
}

/// Visits every node of a filter.
fn walk(f: &Filter, visit: &mut dyn FnMut(&Filter)) {
    visit(f);
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            walk(a, visit);
            walk(b, visit);
        }
        Filter::Not(a) => walk(a, visit),
        _ => {}
    }
}

impl Entity {
    /// Within the entity's own entries.
    fn scoped(&self, t: Translated) -> Translated {
        Translated { filter: self.filter.clone().and(t.filter), exact: t.exact }
    }

    fn translate(&self, f: &Filter, special: Special) -> Result<Translated> {
        if let Some(done) = special(f) {
            return done.map(Translated::exact);
        }
        match f {
            Filter::And(a, b) => {
                Ok(Translated::join(vec![self.translate(a, special)?, self.translate(b, special)?], LdapFilter::And))
            }
            Filter::Or(a, b) => {
                Ok(Translated::join(vec![self.translate(a, special)?, self.translate(b, special)?], LdapFilter::Or))
            }
            Filter::Not(a) => Ok(self.translate(a, special)?.negate()),
            Filter::Present(path) => self.attribute(path, None),
            Filter::Compare { path, op, value } => self.attribute(path, Some((*op, value))),
            Filter::ValuePath { path, filter } => {
                let rules: Vec<&Rule> =
                    self.rules_for(path).filter(|r| r.target.selector.is_some() || r.target.sub.is_some()).collect();
                if rules.is_empty() {
                    return Err(unmapped(path));
                }
                let parts = rules.into_iter().map(|r| element(r, filter)).collect::<Result<_>>()?;
                Ok(Translated::join(parts, LdapFilter::Or))
            }
        }
    }

    fn rules_for<'a>(&'a self, path: &'a AttrPath) -> impl Iterator<Item = &'a Rule> + 'a {
        let schema = path.urn.as_deref().filter(|u| !u.eq_ignore_ascii_case(self.schema));
        self.rules.iter().filter(move |r| {
            r.direction.reads()
                && r.target.schema.as_deref().map(str::to_ascii_lowercase) == schema.map(str::to_ascii_lowercase)
                && r.target.attr.eq_ignore_ascii_case(&path.name)
        })
    }

    /// `pr` (no comparison) or a comparison on one attribute path.
    fn attribute(&self, path: &AttrPath, cmp: Option<(CompareOp, &Value)>) -> Result<Translated> {
        let core = path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(self.schema));
        let name = path.name.to_ascii_lowercase();
        let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
        match (core, name.as_str(), sub.as_deref()) {
            (true, "id", None) => return self.id(cmp).map(Translated::exact),
            (true, "meta", Some(field @ ("created" | "lastmodified"))) => {
                let attr = if field == "created" { &self.created_attr } else { &self.modified_attr };
                return timestamp(attr, cmp).map(Translated::exact);
            }
            _ => {}
        }
        let mut alternatives = Vec::new();
        for rule in self.rules_for(path) {
            let t = &rule.target;
            let sub = path.sub_attr.as_deref();
            let direct = match (&t.selector, sub) {
                (None, s) => s.map(str::to_ascii_lowercase) == t.sub.as_deref().map(str::to_ascii_lowercase),
                // `emails eq "x"` and `emails.value eq "x"` both compare the value.
                (Some(_), None) => t.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("value")),
                (Some(_), Some(s)) => t.sub.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(s)),
            };
            if direct {
                alternatives.push(compare(rule, cmp)?);
            } else if let (Some((key, _)), Some(s)) = (&t.selector, sub) {
                // `emails.type eq "work"`: decided by the rule itself, where the value exists.
                if key.eq_ignore_ascii_case(s) {
                    let f = match cmp {
                        Some((op, value)) => Filter::Compare {
                            path: AttrPath { urn: None, name: key.clone(), sub_attr: None },
                            op,
                            value: value.clone(),
                        },
                        None => Filter::Present(AttrPath { urn: None, name: key.clone(), sub_attr: None }),
                    };
                    let holds = t.selector_element().is_some_and(|e| element_matches(&e, &f));
                    let found = if holds { LdapFilter::present(&rule.ldap) } else { LdapFilter::none() };
                    alternatives.push(Translated::exact(found));
                }
            }
        }
        if alternatives.is_empty() {
            return Err(unmapped(path));
        }
        Ok(Translated::or(alternatives))
    }

    fn id(&self, cmp: Option<(CompareOp, &Value)>) -> Result<LdapFilter> {
        match cmp {
            None => Ok(LdapFilter::present(&self.id_attr)),
            Some((op @ (CompareOp::Eq | CompareOp::Ne), Value::String(id))) => {
                let eq = self.id_filter(id).map_or_else(LdapFilter::none, |_| LdapFilter::eq(&self.id_attr, id));
                Ok(if op == CompareOp::Eq { eq } else { LdapFilter::Not(Box::new(eq)) })
            }
            Some(_) => Err(Error::filter("id supports only eq, ne and pr with a string")),
        }
    }
}

impl UserMapping {
    fn active(&self, op: CompareOp, value: &Value) -> Result<LdapFilter> {
        let inactive = match &self.deactivation {
            Deactivation::Attribute { attribute, inactive_value, .. } => LdapFilter::eq(attribute, inactive_value),
            Deactivation::Ppolicy => LdapFilter::eq(LOCK_ATTR, PERMANENT_LOCK),
            Deactivation::AccountControl => LdapFilter::Configured(crate::dialect::uac::disabled_filter()),
        };
        let wanted =
            as_bool(value).ok_or_else(|| Error::filter(format!("active compares with true or false, not {value}")))?;
        let active = match op {
            CompareOp::Eq => wanted,
            CompareOp::Ne => !wanted,
            _ => return Err(Error::filter("active supports only eq, ne and pr")),
        };
        Ok(if active { LdapFilter::Not(Box::new(inactive)) } else { inactive })
    }
}

/// A value filter (`emails[type eq "work" and value co "@x"]`) on the element a rule stores.
fn element(rule: &Rule, f: &Filter) -> Result<Translated> {
    let (key, _) = rule.target.selector.clone().unwrap_or_default();
    Ok(match f {
        Filter::And(a, b) => Translated::join(vec![element(rule, a)?, element(rule, b)?], LdapFilter::And),
        Filter::Or(a, b) => Translated::join(vec![element(rule, a)?, element(rule, b)?], LdapFilter::Or),
        Filter::Not(a) => element(rule, a)?.negate(),
        Filter::Present(p) | Filter::Compare { path: p, .. }
            if !key.is_empty() && p.name.eq_ignore_ascii_case(&key) =>
        {
            Translated::exact(if rule.target.selector_element().is_some_and(|e| element_matches(&e, f)) {
                LdapFilter::present(&rule.ldap)
            } else {
                LdapFilter::none()
            })
        }
        Filter::Present(p) if rule.target.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(&p.name)) => {
            Translated::exact(LdapFilter::present(&rule.ldap))
        }
        Filter::Compare { path, op, value }
            if rule.target.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(&path.name)) =>
        {
            compare(rule, Some((*op, value)))?
        }
        Filter::ValuePath { .. } => return Err(Error::filter("value filters cannot nest")),
        // A sub-attribute this element does not store never matches.
        Filter::Present(_) | Filter::Compare { .. } => Translated::exact(LdapFilter::none()),
    })
}

fn compare(rule: &Rule, cmp: Option<(CompareOp, &Value)>) -> Result<Translated> {
    let attr = rule.ldap.as_str();
    let Some((op, value)) = cmp else { return Ok(Translated::exact(LdapFilter::present(attr))) };
    if rule.reference {
        return Err(Error::filter(format!("{} holds a reference: it can only be tested with pr", rule.target)));
    }
    match rule.convert {
        Some(Convert::GeneralizedTime) => return timestamp(attr, cmp).map(Translated::exact),
        Some(Convert::Base64) => {
            return Err(Error::filter(format!("{} is binary: it can only be tested with pr", rule.target)))
        }
        None => {}
    }
    let boolean = rule.kind() == Some(Kind::Boolean);
    let text = match value {
        Value::Null => {
            let present = LdapFilter::present(attr);
            return match op {
                CompareOp::Eq => Ok(Translated::exact(LdapFilter::Not(Box::new(present)))),
                CompareOp::Ne => Ok(Translated::exact(present)),
                _ => Err(Error::filter(format!("null only compares with eq or ne ({})", rule.target))),
            };
        }
        _ if boolean && !matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            return Err(Error::filter(format!("{} is a boolean: it compares with eq and ne", rule.target)))
        }
        v if boolean => match (as_bool(v), &rule.boolean) {
            (Some(b), Some((t, f))) => if b { t } else { f }.clone(),
            (Some(b), None) => if b { "TRUE" } else { "FALSE" }.to_owned(),
            (None, _) => return Err(Error::filter(format!("{} compares with true or false", rule.target))),
        },
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(Error::filter(format!("cannot compare with {other}"))),
    };
    if matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le) {
        // Directory string attributes (uid, sn, mail, …) have no ordering rule: the server
        // would quietly match nothing. Every entry holding the attribute is a candidate.
        return Ok(Translated::wider(LdapFilter::present(attr)));
    }
    // Shaped as a write would shape it, so a lookup finds what a create stored.
    let text = rule.steps.shape(text);
    let case_exact =
        !boolean && rule.custom.as_ref().map(|c| c.case_exact).or(rule.def.map(|d| d.case_exact)) == Some(true);
    Ok(match (case_exact, op) {
        (false, op) => Translated::exact(ordered(attr, op, text)),
        // The directory ignores case: `ne` would drop entries differing only in case.
        (true, CompareOp::Ne) => Translated::wider(always()),
        (true, op) => Translated::wider(ordered(attr, op, text)),
    })
}

/// One comparison, LDAP style. `co ""` and friends match any value.
fn ordered(attr: &str, op: CompareOp, text: String) -> LdapFilter {
    let substring = |initial, any, last| LdapFilter::Substring { attr: attr.to_owned(), initial, any, last };
    let not_eq = || LdapFilter::Not(Box::new(LdapFilter::eq(attr, &text)));
    match op {
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew if text.is_empty() => LdapFilter::present(attr),
        CompareOp::Eq => LdapFilter::eq(attr, &text),
        CompareOp::Ne => not_eq(),
        CompareOp::Co => substring(None, vec![text], None),
        CompareOp::Sw => substring(Some(text), vec![], None),
        CompareOp::Ew => substring(None, vec![], Some(text)),
        CompareOp::Ge => LdapFilter::GreaterOrEqual(attr.to_owned(), text),
        CompareOp::Le => LdapFilter::LessOrEqual(attr.to_owned(), text),
        CompareOp::Gt => LdapFilter::And(vec![LdapFilter::GreaterOrEqual(attr.to_owned(), text.clone()), not_eq()]),
        CompareOp::Lt => LdapFilter::And(vec![LdapFilter::LessOrEqual(attr.to_owned(), text.clone()), not_eq()]),
    }
}

fn timestamp(attr: &str, cmp: Option<(CompareOp, &Value)>) -> Result<LdapFilter> {
    let Some((op, value)) = cmp else { return Ok(LdapFilter::present(attr)) };
    let generalized = value
        .as_str()
        .and_then(time::to_generalized)
        .ok_or_else(|| Error::filter(format!("{value} is not an RFC 3339 dateTime")))?;
    match op {
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            Err(Error::filter("dateTime attributes support eq, ne, gt, ge, lt, le"))
        }
        op => Ok(ordered(attr, op, generalized)),
    }
}

fn unmapped(path: &AttrPath) -> Error {
    Error::filter(format!("cannot filter on {path}: no rule in gateway.toml maps it"))
}

#[cfg(test)]
mod tests {
    use crate::mapping::tests::example;
    use crate::scim::filter::parse_filter;

    fn ldap(scim: &str) -> String {
        example().ldap_filter(&parse_filter(scim).unwrap()).unwrap().filter.to_string()
    }

    fn exact(scim: &str) -> bool {
        example().ldap_filter(&parse_filter(scim).unwrap()).unwrap().exact
    }

    #[test]
    fn okta_and_entra_lookups() {
        assert_eq!(ldap(r#"userName eq "jdoe@example.com""#), "(&(objectClass=inetOrgPerson)(uid=jdoe@example.com))");
        assert_eq!(ldap(r#"externalId eq "00u1""#), "(&(objectClass=inetOrgPerson)(description=00u1))");
        assert_eq!(ldap(r#"USERNAME EQ "x""#), "(&(objectClass=inetOrgPerson)(uid=x))");
    }

    #[test]
    fn operators() {
        assert_eq!(ldap(r#"userName sw "j""#), "(&(objectClass=inetOrgPerson)(uid=j*))");
        assert_eq!(ldap(r#"name.familyName co "o" or title pr"#), "(&(objectClass=inetOrgPerson)(|(sn=*o*)(title=*)))");
        assert_eq!(ldap(r#"not (userName ew "z")"#), "(&(objectClass=inetOrgPerson)(!(uid=*z)))");
        assert_eq!(ldap("active eq false"), "(&(objectClass=inetOrgPerson)(pwdAccountLockedTime=000001010000Z))");
        assert_eq!(
            ldap(r#"meta.lastModified gt "2026-11-22T22:05:30Z""#),
            "(&(objectClass=inetOrgPerson)(modifyTimestamp>=20261122220530Z)(!(modifyTimestamp=20261122220530Z)))"
        );
        assert_eq!(ldap(r#"id eq "nope""#), "(&(objectClass=inetOrgPerson)(!(objectClass=*)))");
    }

    #[test]
    fn multi_valued_attributes() {
        assert_eq!(ldap(r#"emails.value eq "a@x""#), "(&(objectClass=inetOrgPerson)(mail=a@x))");
        assert_eq!(ldap(r#"emails eq "a@x""#), "(&(objectClass=inetOrgPerson)(mail=a@x))");
        assert_eq!(
            ldap(r#"emails[type eq "work" and value co "@x"]"#),
            "(&(objectClass=inetOrgPerson)(|(&(mail=*)(mail=*@x*))))"
        );
        assert_eq!(ldap(r#"emails[type eq "home"]"#), "(&(objectClass=inetOrgPerson)(|(!(objectClass=*))))");
    }

    #[test]
    fn hostile_values_stay_values() {
        for v in [r#"*)(uid=*"#, r#"\u0000"#, r#")(|(objectClass=*)"#] {
            let f = ldap(&format!(r#"userName eq "{v}""#));
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
            assert_eq!(f.matches("(uid=").count(), 1, "{f}");
        }
    }

    #[test]
    fn what_ldap_cannot_say_exactly_is_widened() {
        // No ORDERING rule on directory strings: every holder is a candidate.
        assert_eq!(ldap(r#"userName gt "m""#), "(&(objectClass=inetOrgPerson)(uid=*))");
        assert!(!exact(r#"userName gt "m""#) && !exact(r#"emails.value le "x""#));
        // externalId is caseExact; the directory's match ignores case.
        assert_eq!(ldap(r#"externalId eq "Ab""#), "(&(objectClass=inetOrgPerson)(description=Ab))");
        assert!(!exact(r#"externalId eq "Ab""#));
        assert_eq!(ldap(r#"externalId ne "Ab""#), "(&(objectClass=inetOrgPerson))");
        // A negated superset would be a subset: it widens to every entry.
        assert_eq!(
            ldap(r#"not (title lt "m") and userName eq "x""#),
            "(&(objectClass=inetOrgPerson)(objectClass=*)(uid=x))"
        );
        assert!(!exact(r#"not (title lt "m") and userName eq "x""#));
        assert_eq!(ldap(r#"title lt "m" or userName eq "x""#), "(&(objectClass=inetOrgPerson)(|(title=*)(uid=x)))");
        for ok in [
            r#"userName eq "x""#,
            r#"not (userName eq "x")"#,
            "active eq false",
            r#"meta.created gt "2026-01-01T00:00:00Z""#,
        ] {
            assert!(exact(ok), "{ok}");
        }
    }

    #[test]
    fn refusals() {
        let m = example();
        for bad in [
            "nickName eq \"x\"",
            "id gt \"a\"",
            "active eq \"maybe\"",
            "meta.created gt \"yesterday\"",
            "userName eq {}",
            "id lt \"m\"",
            "meta.created co \"2026\"",
        ] {
            if let Ok(f) = parse_filter(bad) {
                assert!(m.ldap_filter(&f).is_err(), "{bad}");
            }
        }
    }
}
