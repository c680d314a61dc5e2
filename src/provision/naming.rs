//! Unique derived values (`unique = {…}` on a template: AD's sAMAccountName, a Unix uid):
//! the first candidate no entry holds, found with one search, and — when the directory itself
//! refuses the add because another gateway process took the value in between — the next one.
//! The directory's refusal is what makes this safe across processes; the search only makes
//! the retry rare. Also: what to say when a refusal cannot be retried, naming the attribute
//! and the value taken rather than a DN that does not exist.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::store::Store;
use super::{Error, Result};
use crate::directory::{DirectoryError, Entry, LdapFilter, Scope};
use crate::mapping::{Candidates, Values};
use crate::scim;

/// The unique attributes of one create or update, and the candidate each is at.
pub struct Naming<'a> {
    store: Store<'a>,
    res: &'a Map<String, Value>,
    open: Vec<(Candidates, usize)>,
}

/// Whether `e` is the directory refusing a value that must be unique (entryAlreadyExists
/// for a DN or AD's sAMAccountName, OpenLDAP's unique overlay, AD's "already in use").
pub fn refused(e: &DirectoryError) -> bool {
    matches!(e, DirectoryError::AlreadyExists | DirectoryError::NotUnique(_))
}

impl<'a> Naming<'a> {
    /// For a create from `res`: each unique attribute in `values` becomes its first free candidate.
    pub async fn create(store: Store<'a>, res: &'a Map<String, Value>, values: &mut Values) -> Result<Naming<'a>> {
        let open = store.entity.candidates(res, values).into_iter().map(|c| (c, 0)).collect();
        let mut naming = Naming { store, res, open };
        naming.pick(values, None).await?;
        Ok(naming)
    }

    /// For an update of `entry` (shown as `before`) to `res`: unique values stay as the entry
    /// holds them; where a rule regenerates because its sources changed, the first candidate
    /// no other entry holds is taken.
    pub async fn update(
        store: Store<'a>,
        entry: &Entry,
        before: &Map<String, Value>,
        res: &'a Map<String, Value>,
        values: &mut Values,
    ) -> Result<()> {
        let open = store.entity.settle(entry, before, res, values);
        if open.is_empty() {
            return Ok(());
        }
        let mut naming = Naming { store, res, open: open.into_iter().map(|c| (c, 0)).collect() };
        naming.pick(values, Some(&entry.dn)).await
    }

    /// Each attribute takes, from where it is, the first candidate that no entry but `own` holds.
    async fn pick(&mut self, values: &mut Values, own: Option<&str>) -> Result<()> {
        let held = self.held(own).await?;
        // A rule that gives no value has nothing to pick (and `rdn()` says so if it names the entry).
        for (c, at) in self.open.iter_mut().filter(|(c, _)| !c.values.is_empty()) {
            let taken = held.get(&c.ldap.to_ascii_lowercase());
            let free = |v: &String| !taken.is_some_and(|t| t.contains(&v.to_lowercase()));
            match c.values.iter().skip(*at).position(free) {
                Some(i) => *at += i,
                None => return Err(exhausted(c)),
            }
            self.store.entity.choose(self.res, values, &c.ldap, &c.values[*at]);
        }
        Ok(())
    }

    /// The candidates from where each attribute is that some entry (other than `own`) holds,
    /// lower-cased, by lower-cased attribute: one search per base, an OR of equality filters
    /// (escaped by the filter type).
    async fn held(&self, own: Option<&str>) -> Result<HashMap<String, HashSet<String>>> {
        let mut held: HashMap<String, HashSet<String>> = HashMap::new();
        let mut bases: Vec<&str> =
            self.open.iter().filter(|(c, _)| !c.values.is_empty()).map(|(c, _)| c.base.as_str()).collect();
        bases.sort_unstable();
        bases.dedup();
        for base in bases {
            let here = || self.open.iter().filter(move |(c, _)| c.base == base);
            let filter = LdapFilter::Or(
                here().flat_map(|(c, at)| c.values[*at..].iter().map(|v| LdapFilter::eq(&c.ldap, v))).collect(),
            );
            let attrs = here().map(|(c, _)| c.ldap.clone()).collect();
            for e in self.store.search(base, Scope::Subtree, filter, attrs).await? {
                if own.is_some_and(|o| o.eq_ignore_ascii_case(&e.dn)) {
                    continue;
                }
                for (c, _) in here() {
                    let values = e.values(&c.ldap).iter().map(|v| v.to_lowercase());
                    held.entry(c.ldap.to_ascii_lowercase()).or_default().extend(values);
                }
            }
        }
        Ok(held)
    }

    /// After the directory refused an add with `e`: the attributes whose value it refused
    /// move on to their next free candidate. Those are the ones an entry holds by now, the
    /// one the refusal names, and the naming attribute when the DN was taken. When none can
    /// move, the error says which value is taken.
    pub async fn retry(&mut self, e: DirectoryError, values: &mut Values) -> Result<()> {
        let held = self.held(None).await?;
        let text = e.to_string().to_ascii_lowercase();
        let rdn = &self.store.entity.rdn_attr;
        let mut moved = false;
        for (c, at) in self.open.iter_mut().filter(|(c, _)| !c.values.is_empty()) {
            let taken = held.get(&c.ldap.to_ascii_lowercase());
            let refused = taken.is_some_and(|t| t.contains(&c.values[*at].to_lowercase()))
                || (names(&text, &c.ldap) && names(&text, &c.values[*at]))
                || (matches!(e, DirectoryError::AlreadyExists) && c.ldap.eq_ignore_ascii_case(rdn));
            if !refused {
                continue;
            }
            tracing::info!(attribute = %c.ldap, value = %c.values[*at], "a candidate was taken meanwhile: trying the next");
            let free = |v: &String| !taken.is_some_and(|t| t.contains(&v.to_lowercase()));
            match c.values.iter().skip(*at + 1).position(free) {
                Some(i) => *at += 1 + i,
                None => return Err(exhausted(c)),
            }
            self.store.entity.choose(self.res, values, &c.ldap, &c.values[*at]);
            moved = true;
        }
        match moved {
            true => Ok(()),
            false => Err(self.taken(e, values).await),
        }
    }

    /// What the refusal `e` of an add holding `values` means, in the attribute's own terms:
    /// the naming value (entryAlreadyExists) or an attribute the directory's text names,
    /// when an entry holds it. Otherwise the directory's own words: a 400 when they refuse a
    /// value (Samba: a sAMAccountName that the userPrincipalName implies is held by another
    /// account), the DN's 409 for entryAlreadyExists.
    async fn taken(&self, e: DirectoryError, values: &Values) -> Error {
        let entity = self.store.entity;
        let text = e.to_string().to_ascii_lowercase();
        let suspects: Vec<(&String, &String)> = values
            .iter()
            .filter(|(a, _)| {
                (matches!(e, DirectoryError::AlreadyExists) && a.eq_ignore_ascii_case(&entity.rdn_attr))
                    || names(&text, a)
            })
            .filter_map(|(a, v)| Some((a, v.first()?)))
            .collect();
        let unexplained = |e: DirectoryError| match e {
            DirectoryError::NotUnique(text) => scim::Error::value(text).into(),
            e => Error::from(e),
        };
        if suspects.is_empty() {
            return unexplained(e);
        }
        let filter = LdapFilter::Or(suspects.iter().map(|(a, v)| LdapFilter::eq(a, v)).collect());
        let attrs = suspects.iter().map(|(a, _)| a.to_string()).collect();
        let found = match self.store.search(&entity.base_dn, Scope::Subtree, filter, attrs).await {
            Ok(found) => found,
            Err(other) => return other,
        };
        let holder =
            suspects.iter().find(|(a, v)| found.iter().any(|f| f.values(a).iter().any(|h| h.eq_ignore_ascii_case(v))));
        match holder {
            Some((a, v)) => scim::Error::value(format!("{a} {v:?} is already used by another account")).into(),
            None => unexplained(e),
        }
    }
}

/// Whether the lower-cased `text` names `word` (an attribute or a value) as a whole word:
/// `uid=sam` names sam, `'sam1'` does not.
fn names(text: &str, word: &str) -> bool {
    let word = word.to_lowercase();
    let part = |c: char| c.is_alphanumeric() || "._-".contains(c);
    !word.is_empty()
        && text.match_indices(&word).any(|(at, _)| {
            !text[..at].chars().next_back().is_some_and(part)
                && !text[at + word.len()..].chars().next().is_some_and(part)
        })
}

/// Every candidate of `c` is held: the operator widens the rule.
fn exhausted(c: &Candidates) -> Error {
    let (first, last) = (c.values.first().map_or("", String::as_str), c.values.last().map_or("", String::as_str));
    scim::Error::value(format!(
        "{} {first:?} is already used by another account, and so are the other {} candidates (up to {last:?}): \
         add templates to its unique.also or raise unique.suffixes",
        c.ldap,
        c.values.len().saturating_sub(1)
    ))
    .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_whole_words() {
        let samba = "00002071: samldb: samaccountname 'sam' is already in use (implied by userprincipalname)";
        assert!(super::names(samba, "sAMAccountName") && super::names(samba, "sam"));
        assert!(!super::names(samba, "sam1") && !super::names(samba, "cn") && !super::names(samba, "in-use"));
        assert!(super::names("non-unique attributes found with (|(uid=zoë))", "Zoë"));
        assert!(!super::names("anything", ""));
    }
}
