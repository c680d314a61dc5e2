//! Derived values that no other entry may hold (`unique = {…}` on a template rule): the
//! candidates a create tries, in order. Which of them are free is the directory's to say
//! (`provision::naming`); here they are only computed, so this stays pure.

use serde_json::{Map, Value};

use super::transform::Piece;
use super::write::Values;
use super::{Computed, Entity};
use crate::config::{OnChange, UniqueRule};
use crate::directory::Entry;

/// More templates than this in `also` are refused at load.
pub const MAX_ALSO: usize = 10;
/// Numbered suffixes, at most: with [`MAX_ALSO`], a create checks at most 110 candidates of
/// one rule, in one search.
pub const MAX_SUFFIXES: u32 = 99;

/// A unique rule, compiled.
#[derive(Debug, Clone)]
pub struct Unique {
    also: Vec<Vec<Piece>>,
    suffixes: u32,
    pub on_change: OnChange,
    base: Option<String>,
}

impl Unique {
    /// `template` compiles one of the `also` templates like the rule's own.
    pub fn compile(rule: &UniqueRule, template: impl Fn(&str) -> Result<Vec<Piece>, String>) -> Result<Unique, String> {
        if rule.also.len() > MAX_ALSO {
            return Err(format!("unique: at most {MAX_ALSO} templates in also"));
        }
        if rule.suffixes > MAX_SUFFIXES {
            return Err(format!("unique: suffixes goes up to {MAX_SUFFIXES}"));
        }
        let also = rule.also.iter().map(|t| template(t)).collect::<Result<_, _>>()?;
        if rule.base.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err("unique: base must be a DN".into());
        }
        Ok(Unique { also, suffixes: rule.suffixes, on_change: rule.on_change, base: rule.base.clone() })
    }
}

/// The values one unique attribute may take for a resource, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub ldap: String,
    pub values: Vec<String>,
    /// Where other holders are searched for.
    pub base: String,
}

impl Entity {
    /// The rules whose values must be unique.
    pub fn unique(&self) -> impl Iterator<Item = &Computed> {
        self.computed.iter().filter(|c| c.unique.is_some())
    }

    /// For each unique rule, the values a new entry for `res` may take (`values` as the rules
    /// give them): the rule's own, then `also`, then its own with 1, 2 … appended, cut to the
    /// length limit. Equal values (as LDAP compares names: ignoring case) are tried once.
    pub fn candidates(&self, res: &Map<String, Value>, values: &Values) -> Vec<Candidates> {
        self.unique().map(|c| self.candidates_of(c, res, values)).collect()
    }

    fn candidates_of(&self, c: &Computed, res: &Map<String, Value>, values: &Values) -> Candidates {
        let unique = c.unique.as_ref().expect("a unique rule");
        let written = |a: &str| first(values, a);
        let own = self.render_template(&c.pieces, &c.steps, res, &written);
        let mut all: Vec<String> = own.iter().cloned().collect();
        all.extend(unique.also.iter().filter_map(|t| self.render_template(t, &c.steps, res, &written)));
        if let Some(base) = &own {
            all.extend((1..=unique.suffixes).filter_map(|n| c.steps.fit(base, &n.to_string())));
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|v| !v.is_empty() && seen.insert(v.to_lowercase()));
        let base = unique.base.clone().unwrap_or_else(|| self.base_dn.clone());
        Candidates { ldap: c.ldap.clone(), values: all, base }
    }

    /// Before an update of `entry` to `values` (from `res`; `before` is the entry as a
    /// resource): a unique value stays as the entry holds it unless its rule regenerates and
    /// a value it is made of changed, or the entry has none. Those left to choose are
    /// returned with their candidates; the entry's own value among them is free for it.
    pub fn settle(
        &self,
        entry: &Entry,
        before: &Map<String, Value>,
        res: &Map<String, Value>,
        values: &mut Values,
    ) -> Vec<Candidates> {
        let mut open = Vec::new();
        for c in self.unique() {
            let held = entry.values(&c.ldap);
            let changed = || {
                let was = |a: &str| entry.first(a).map(String::from);
                let now = |a: &str| first(values, a);
                self.render_template(&c.pieces, &c.steps, before, &was)
                    != self.render_template(&c.pieces, &c.steps, res, &now)
            };
            let regenerate = c.unique.as_ref().is_some_and(|u| u.on_change == OnChange::Regenerate);
            match held.is_empty() || (regenerate && changed()) {
                true => open.push(self.candidates_of(c, res, values)),
                false => {
                    values.insert(c.ldap.clone(), held.to_vec());
                }
            }
        }
        self.rederive(res, values);
        open
    }

    /// Makes `values` hold `value` for the unique attribute `ldap`, and the templates that
    /// name it (`{ldap:uid}`) follow.
    pub fn choose(&self, res: &Map<String, Value>, values: &mut Values, ldap: &str, value: &str) {
        values.insert(ldap.to_owned(), vec![value.to_owned()]);
        self.rederive(res, values);
    }

    /// Recomputes the templates that contain `{ldap:…}`, in rule order.
    fn rederive(&self, res: &Map<String, Value>, values: &mut Values) {
        let dependent = |c: &&Computed| c.unique.is_none() && c.pieces.iter().any(|p| matches!(p, Piece::Attr(_)));
        for c in self.computed.iter().filter(dependent) {
            let v = self.render_template(&c.pieces, &c.steps, res, &|a| first(values, a));
            match v {
                Some(v) => values.insert(c.ldap.clone(), vec![v]),
                None => values.remove(&c.ldap),
            };
        }
    }
}

/// The first value `values` holds for `attr` (attribute names compare ignoring case).
pub(super) fn first(values: &Values, attr: &str) -> Option<String> {
    values.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first().cloned())
}

#[cfg(test)]
mod tests {
    use crate::directory::Entry;
    use crate::mapping::tests::entity;
    use serde_json::json;

    const SAM: &str = r#"
        [[attribute]]
        scim = "userName"
        ldap = "userPrincipalName"
        [[attribute]]
        ldap = "uid"
        template = "{userName}"
        transform = ["ascii", "lower"]
        replace = ["[+@].*$", ""]
        characters = { forbidden = "\"/\\[]:;|=,+*?<>@", not_at_end = "." }
        max_length = 8
        unique = { also = ["{name.givenName}"], suffixes = 12 }
        [[attribute]]
        ldap = "homeDirectory"
        template = "/home/{ldap:uid}"
    "#;

    #[test]
    fn candidates_in_order_within_the_limit() {
        let e = entity(SAM).unwrap();
        let res = json!({"userName": "Zoë.Müller+x@example.test", "name": {"givenName": "ZOE.MULLER"}});
        let res = res.as_object().unwrap();
        let mut values = e.values(res).unwrap();
        assert_eq!(values["uid"], ["zoe.mull"]);
        assert_eq!(values["homeDirectory"], ["/home/zoe.mull"]);
        let c = e.candidates(res, &values);
        assert_eq!(c.len(), 1);
        let v = &c[0].values;
        assert_eq!(&v[..4], ["zoe.mull", "zoe.mul1", "zoe.mul2", "zoe.mul3"], "also gave a duplicate");
        assert_eq!(v.last().unwrap(), "zoe.mu12");
        assert_eq!(v.len(), 13);
        assert!(v.iter().all(|s| s.chars().count() <= 8));
        // A cut that ends in a dot loses the dot before the suffix.
        let dotted = json!({"userName": "abcdef.hij@x"});
        let d = e.candidates(dotted.as_object().unwrap(), &e.values(dotted.as_object().unwrap()).unwrap());
        assert_eq!(&d[0].values[..3], ["abcdef.h", "abcdef1", "abcdef2"]);
        assert_eq!(d[0].values[10], "abcdef10");
        e.choose(res, &mut values, "uid", "zoe.mul1");
        assert_eq!(values["homeDirectory"], ["/home/zoe.mul1"], "templates naming it follow");
    }

    #[test]
    fn settled_values_stay_unless_regenerated() {
        let e = entity(SAM).unwrap();
        let entry = Entry::new("uid=sam1,ou=people,dc=x")
            .with("uid", vec!["sam1".into()])
            .with("userPrincipalName", vec!["sam@a.test".into()]);
        let before = json!({"userName": "sam@a.test"});
        let after = json!({"userName": "samuel@a.test"});
        let mut values = e.values(after.as_object().unwrap()).unwrap();
        let open = e.settle(&entry, before.as_object().unwrap(), after.as_object().unwrap(), &mut values);
        assert!(open.is_empty());
        assert_eq!((&values["uid"], &values["homeDirectory"]), (&vec!["sam1".into()], &vec!["/home/sam1".into()]));

        let e = entity(&SAM.replace("suffixes = 12 }", "suffixes = 12, on_change = \"regenerate\" }")).unwrap();
        let mut values = e.values(after.as_object().unwrap()).unwrap();
        let open = e.settle(&entry, before.as_object().unwrap(), after.as_object().unwrap(), &mut values);
        assert_eq!(open[0].values[0], "samuel");
        let mut same = e.values(before.as_object().unwrap()).unwrap();
        assert!(e.settle(&entry, before.as_object().unwrap(), before.as_object().unwrap(), &mut same).is_empty());
        assert_eq!(same["uid"], ["sam1"], "unchanged sources: the chosen value stays");
    }

    #[test]
    fn unique_rule_mistakes() {
        for (rule, why) in [
            ("unique = { suffixes = 100 }", "up to 99"),
            ("unique = { also = [\"{nope}\"] }", "not an attribute"),
            ("characters = { forbidden = \"@\", allowed = \"a-z\" }", "exactly one"),
            ("characters = { allowed = \"z-a\" }", "not a range"),
            ("characters = { allowed = \"a-z\", replacement = \"_\" }", "replacement"),
            ("max_length = 0", "max_length"),
        ] {
            let rules = format!("[[attribute]]\nscim = \"userName\"\nldap = \"uid\"\n[[attribute]]\nldap = \"x\"\ntemplate = \"{{userName}}\"\n{rule}");
            let e = entity(&rules).err().unwrap_or_default();
            assert!(e.contains(why), "{rule}: {e}");
        }
        let on_scim = "[[attribute]]\nscim = \"userName\"\nldap = \"uid\"\nunique = { suffixes = 9 }";
        assert!(entity(on_scim).err().unwrap_or_default().contains("template"));
        let later =
            "[[attribute]]\nscim = \"userName\"\nldap = \"uid\"\n[[attribute]]\nldap = \"x\"\ntemplate = \"{ldap:y}\"";
        assert!(entity(later).err().unwrap_or_default().contains("earlier rule"));
    }
}
