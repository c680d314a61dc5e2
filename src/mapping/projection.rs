//! Which directory attributes a read needs for the resource a projection keeps.

use super::Entity;
use crate::scim::list::Projection;

impl Entity {
    /// The attributes to request so that the resource shows what `projection` keeps: the
    /// rules of the wanted attributes, plus `id`, `meta` and the gateway's own (such as the
    /// deactivation attribute). Template-written attributes are read only by writes.
    pub fn read_attrs_for(&self, projection: &Projection) -> Vec<String> {
        if projection.is_empty() {
            return self.read_attrs.clone();
        }
        let computed = |a: &str| self.computed.iter().any(|c| c.ldap.eq_ignore_ascii_case(a));
        let wanted = |a: &&String| match self.rules.iter().find(|r| r.ldap.eq_ignore_ascii_case(a)) {
            Some(rule) => {
                rule.direction.reads() && projection.wants_in(rule.target.schema.as_deref(), &rule.target.attr)
            }
            None => !computed(a),
        };
        self.read_attrs.iter().filter(wanted).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::mapping::tests::example;
    use crate::scim::list::Query;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<String> {
        let q = Query::from_pairs(pairs.iter().copied()).unwrap();
        let mut a = example().read_attrs_for(&q.projection);
        a.sort();
        a
    }

    #[test]
    fn only_what_the_answer_shows() {
        let always = ["createTimestamp", "entryCSN", "entryUUID", "modifyTimestamp", "pwdAccountLockedTime"];
        let with = |extra: &[&str]| {
            let mut v: Vec<String> = always.iter().chain(extra).map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(attrs(&[("attributes", "userName")]), with(&["uid"]));
        assert_eq!(attrs(&[("attributes", "name.givenName,emails")]), with(&["givenName", "mail", "sn"]));
        let all = attrs(&[]);
        let excluded = attrs(&[("excludedAttributes", "title")]);
        assert!(all.contains(&"title".to_string()) && !excluded.contains(&"title".to_string()));
        assert_eq!(excluded.len(), all.len() - 1 - 1, "title, and the template-written cn");
    }
}
