//! A [`Directory`] held in memory, for unit tests of the layers above: a DN tree whose entries
//! get an `entryUUID`, timestamps and an `entryCSN` on every write, with modify and modrdn
//! semantics and the answers provision reacts to — noSuchObject, entryAlreadyExists,
//! attributeOrValueExists (20) and noSuchAttribute (16) for values, objectClassViolation (65)
//! for a group left without the member its class requires, notAllowedOnNonLeaf (66), and the
//! unique overlay's refusal. Like the test slapd it runs memberOf (computed on read) and refint
//! (member values follow a renamed or deleted entry).
//!
//! Compiled for tests only: integration tests run against real servers, and nothing in the
//! product serves from memory, so outside tests it would be dead code.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{dn, Attributes, Binary, Change, Directory, DirectoryError, Entry, LdapFilter, Result, Scope, Search};
use crate::directory::schema::Subschema;

/// Attributes that hold DNs of other entries (refint follows them).
const MEMBER_ATTRS: &[&str] = &["member", "uniqueMember"];

#[derive(Default)]
pub struct Memory {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Entries by normalised DN.
    entries: BTreeMap<String, Entry>,
    /// (object class, attribute) pairs the schema requires.
    must: Vec<(String, String)>,
    /// Attributes no two entries may share a value of (the unique overlay).
    unique: Vec<String>,
    passwords: BTreeMap<String, String>,
    /// The next modify fails with this, once (a server refusing mid-sequence).
    fail_next_modify: Option<DirectoryError>,
    /// Added just before the next add: a concurrent create that passed the same checks.
    rival: Option<(String, Attributes)>,
    /// Every write, in order: `add DN`, `modify DN`, `modrdn DN`, `delete DN`, `password DN`.
    log: Vec<String>,
    csn: u64,
}

/// DNs compare case-insensitively and without the spaces after commas.
fn key(dn: &str) -> String {
    dn.split(',').map(str::trim).collect::<Vec<_>>().join(",").to_ascii_lowercase()
}

fn has_value(e: &Entry, attr: &str, value: &str) -> bool {
    e.values(attr).iter().any(|v| v.eq_ignore_ascii_case(value))
}

impl Memory {
    /// A tree with these (empty) containers, e.g. `ou=people,dc=example,dc=test`.
    pub fn with_bases(bases: &[&str]) -> Memory {
        let m = Memory::default();
        for b in bases {
            let entry = Entry::new(*b).with("objectClass", vec!["organizationalUnit".into()]);
            m.state().entries.insert(key(b), entry);
        }
        m
    }

    /// Entries of `class` must have `attr` (groupOfNames: member).
    pub fn must(self, class: &str, attr: &str) -> Self {
        self.state().must.push((class.into(), attr.into()));
        self
    }

    /// No two entries may share a value of `attr`.
    pub fn unique(self, attr: &str) -> Self {
        self.state().unique.push(attr.into());
        self
    }

    /// The next modify is refused with `e`.
    pub fn fail_next_modify(&self, e: DirectoryError) {
        self.state().fail_next_modify = Some(e);
    }

    /// The next add finds `dn` with `attrs` added just before it, as by a concurrent create
    /// that passed the same checks.
    pub fn rival_before_next_add(&self, dn: &str, attrs: Attributes) {
        self.state().rival = Some((dn.into(), attrs));
    }

    /// The entry at `dn` as stored, with its operational attributes.
    pub fn entry(&self, dn: &str) -> Option<Entry> {
        let s = self.state();
        s.entries.get(&key(dn)).map(|e| s.with_operational(e))
    }

    /// Every DN under `base`, sorted.
    pub fn dns(&self, base: &str) -> Vec<String> {
        let s = self.state();
        s.entries.values().filter(|e| s.within(e, base, Scope::OneLevel)).map(|e| e.dn.clone()).collect()
    }

    pub fn password(&self, dn: &str) -> Option<String> {
        self.state().passwords.get(&key(dn)).cloned()
    }

    /// The writes so far, one line each (`add DN`, `modify DN`, …).
    pub fn log(&self) -> Vec<String> {
        self.state().log.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("memory directory lock")
    }
}

impl State {
    fn get(&self, dn: &str) -> Result<&Entry> {
        self.entries.get(&key(dn)).ok_or(DirectoryError::NoSuchEntry)
    }

    fn within(&self, e: &Entry, base: &str, scope: Scope) -> bool {
        let (own, parent) = (key(&e.dn), key(dn::split(&e.dn).1));
        let base = key(base);
        match scope {
            Scope::Base => own == base,
            Scope::OneLevel => parent == base,
            Scope::Subtree => own == base || own.ends_with(&format!(",{base}")),
        }
    }

    /// `e` with `entryDN` and `memberOf`, which the server computes.
    fn with_operational(&self, e: &Entry) -> Entry {
        let mut e = e.clone();
        e.insert("entryDN", vec![e.dn.clone()]);
        let of: Vec<String> = self
            .entries
            .values()
            .filter(|g| MEMBER_ATTRS.iter().any(|a| has_value(g, a, &e.dn)))
            .map(|g| g.dn.clone())
            .collect();
        e.insert("memberOf", of);
        e
    }

    /// Stamps a write on `e`: a new modifyTimestamp and entryCSN.
    fn stamp(&mut self, e: &mut Entry) {
        self.csn += 1;
        e.insert("modifyTimestamp", vec![format!("20260101{:06}Z", self.csn)]);
        e.insert("entryCSN", vec![format!("{:020}#000000#000#000000", self.csn)]);
    }

    /// The schema's and the unique overlay's verdict on `e` as it would be stored.
    fn admit(&self, e: &Entry) -> Result<()> {
        for (class, attr) in &self.must {
            if has_value(e, "objectClass", class) && e.values(attr).is_empty() {
                return Err(DirectoryError::Rejected {
                    code: 65,
                    text: format!("object class '{class}' requires attribute '{attr}'"),
                });
            }
        }
        for attr in &self.unique {
            let others = self.entries.values().filter(|o| key(&o.dn) != key(&e.dn));
            for o in others {
                if e.values(attr).iter().any(|v| has_value(o, attr, v)) {
                    return Err(DirectoryError::NotUnique(format!("some attributes not unique ({attr})")));
                }
            }
        }
        Ok(())
    }

    /// refint: DN values naming `old` now name `new`, or go when `new` is `None`.
    fn follow(&mut self, old: &str, new: Option<&str>) {
        for e in self.entries.values_mut() {
            for attr in MEMBER_ATTRS {
                let values = e.values(attr).to_vec();
                if values.iter().any(|v| key(v) == key(old)) {
                    let kept = values.into_iter().filter(|v| key(v) != key(old)).chain(new.map(str::to_owned));
                    e.attrs.remove(&attr.to_ascii_lowercase());
                    e.insert(attr, kept.collect());
                }
            }
        }
    }
}

/// `e` with `change` applied, or the server's refusal.
fn apply(e: &mut Entry, change: &Change) -> Result<()> {
    let lower = |a: &str| a.to_ascii_lowercase();
    let missing = |a: &str| DirectoryError::Rejected { code: 16, text: format!("modify/delete: {a}: no such value") };
    match change {
        Change::Replace(a, v) => {
            e.attrs.remove(&lower(a));
            e.insert(a, v.clone());
        }
        Change::Binary(a, v) => {
            e.attrs.remove(&lower(a));
            e.bin.remove(&lower(a));
            e.insert_binary(a, v.clone());
        }
        Change::Add(a, v) => {
            if let Some(dup) = v.iter().find(|x| has_value(e, a, x)) {
                return Err(DirectoryError::Rejected {
                    code: 20,
                    text: format!("modify/add: {a}: value #0 already exists ({dup})"),
                });
            }
            e.extend(a, v.clone());
        }
        Change::Delete(a, v) if v.is_empty() => {
            e.attrs.remove(&lower(a)).ok_or_else(|| missing(a))?;
        }
        Change::Delete(a, v) => {
            if v.iter().any(|x| !has_value(e, a, x)) {
                return Err(missing(a));
            }
            let kept: Vec<String> =
                e.values(a).iter().filter(|x| !v.iter().any(|d| d.eq_ignore_ascii_case(x))).cloned().collect();
            e.attrs.remove(&lower(a));
            e.insert(a, kept);
        }
        Change::Swap(a, old, new) => {
            apply(e, &Change::Delete(a.clone(), vec![old.clone()]))?;
            apply(e, &Change::Add(a.clone(), vec![new.clone()]))?;
        }
    }
    Ok(())
}

#[async_trait]
impl Directory for Memory {
    async fn search(&self, search: &Search) -> Result<Vec<Entry>> {
        let s = self.state();
        // As the LDAP adapter answers a missing base (noSuchObject, 32): nothing matches.
        if s.get(&search.base).is_err() {
            return Ok(Vec::new());
        }
        Ok(s.entries
            .values()
            .filter(|e| s.within(e, &search.base, search.scope))
            .map(|e| s.with_operational(e))
            .filter(|e| matches(&search.filter, e))
            .collect())
    }

    async fn add(&self, dn: &str, attrs: &Attributes, binary: &Binary, password: Option<&str>) -> Result<()> {
        let rival = self.state().rival.take();
        if let Some((dn, attrs)) = rival {
            self.add(&dn, &attrs, &vec![], None).await?;
        }
        let mut s = self.state();
        if s.entries.contains_key(&key(dn)) {
            return Err(DirectoryError::AlreadyExists);
        }
        s.get(dn::split(dn).1)?;
        let mut e = Entry::new(dn);
        for (a, v) in attrs {
            e.extend(a, v.clone());
        }
        for (a, v) in binary {
            e.insert_binary(a, v.clone());
        }
        e.insert("entryUUID", vec![uuid::Uuid::new_v4().to_string()]);
        s.stamp(&mut e);
        e.insert("createTimestamp", e.values("modifyTimestamp").to_vec());
        s.admit(&e)?;
        if let Some(p) = password {
            s.passwords.insert(key(dn), p.into());
        }
        s.log.push(format!("add {dn}"));
        s.entries.insert(key(dn), e);
        Ok(())
    }

    async fn modify(&self, dn: &str, changes: &[Change]) -> Result<()> {
        let mut s = self.state();
        let mut e = s.get(dn)?.clone();
        if let Some(fail) = s.fail_next_modify.take() {
            return Err(fail);
        }
        for c in changes {
            apply(&mut e, c)?;
        }
        s.admit(&e)?;
        s.stamp(&mut e);
        s.log.push(format!("modify {dn}"));
        s.entries.insert(key(dn), e);
        Ok(())
    }

    async fn compare(&self, dn: &str, attr: &str, value: &str) -> Result<bool> {
        Ok(has_value(self.state().get(dn)?, attr, value))
    }

    async fn rename(&self, dn: &str, new_rdn: &str) -> Result<()> {
        let mut s = self.state();
        let mut e = s.get(dn)?.clone();
        let (old_rdn, parent) = dn::split(dn);
        let new_dn = dn::child(new_rdn, parent);
        if key(&new_dn) != key(dn) && s.entries.contains_key(&key(&new_dn)) {
            return Err(DirectoryError::AlreadyExists);
        }
        let pair = |rdn: &str| rdn.split_once('=').map(|(a, v)| (a.trim().to_owned(), unescape(v)));
        let (Some((old_attr, old_value)), Some((new_attr, new_value))) = (pair(old_rdn), pair(new_rdn)) else {
            return Err(DirectoryError::Rejected { code: 34, text: "invalid DN".into() });
        };
        let _ = apply(&mut e, &Change::Delete(old_attr, vec![old_value]));
        if !has_value(&e, &new_attr, &new_value) {
            apply(&mut e, &Change::Add(new_attr, vec![new_value]))?;
        }
        e.dn = new_dn.clone();
        s.admit(&e)?;
        s.stamp(&mut e);
        s.entries.remove(&key(dn));
        s.entries.insert(key(&new_dn), e);
        s.follow(dn, Some(&new_dn));
        s.log.push(format!("modrdn {dn} -> {new_rdn}"));
        Ok(())
    }

    async fn delete(&self, dn: &str) -> Result<()> {
        let mut s = self.state();
        s.get(dn)?;
        let child = format!(",{}", key(dn));
        if s.entries.keys().any(|k| k.ends_with(&child)) {
            return Err(DirectoryError::Rejected {
                code: 66,
                text: "subordinate objects must be deleted first".into(),
            });
        }
        s.entries.remove(&key(dn));
        s.passwords.remove(&key(dn));
        s.follow(dn, None);
        s.log.push(format!("delete {dn}"));
        Ok(())
    }

    async fn set_password(&self, dn: &str, password: &str) -> Result<()> {
        let mut s = self.state();
        s.get(dn)?;
        s.passwords.insert(key(dn), password.into());
        s.log.push(format!("password {dn}"));
        Ok(())
    }

    async fn subschema(&self) -> Result<Subschema> {
        Ok(Subschema::default())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// An RFC 4514 / RFC 4515 escaped value (`\2c` or `\,`) as text.
fn unescape(v: &str) -> String {
    let mut out = Vec::new();
    let bytes = v.trim().as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let hex =
                    bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                match hex {
                    Some(b) => (out.push(b), i += 3),
                    None => (out.extend(bytes.get(i + 1)), i += 2),
                };
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `e` matches `f`. Comparisons ignore case (the usual equality rules for names and
/// mail); ordering is numeric when both sides are numbers.
fn matches(f: &LdapFilter, e: &Entry) -> bool {
    let order = |a: &str, v: &str| match (e.first(a).map(|x| x.parse::<i64>()), v.parse::<i64>()) {
        (Some(Ok(x)), Ok(y)) => Some(x.cmp(&y)),
        _ => e.first(a).map(|x| x.to_ascii_lowercase().cmp(&v.to_ascii_lowercase())),
    };
    match f {
        LdapFilter::And(items) => items.iter().all(|i| matches(i, e)),
        LdapFilter::Or(items) => items.iter().any(|i| matches(i, e)),
        LdapFilter::Not(inner) => !matches(inner, e),
        LdapFilter::Equal(a, v) => has_value(e, a, v),
        LdapFilter::EqualBytes(a, v) => e.bytes(a).contains(&v.as_slice()),
        LdapFilter::Present(a) => !e.bytes(a).is_empty(),
        LdapFilter::GreaterOrEqual(a, v) => order(a, v).is_some_and(|o| o.is_ge()),
        LdapFilter::LessOrEqual(a, v) => order(a, v).is_some_and(|o| o.is_le()),
        LdapFilter::Substring { attr, initial, any, last } => e.values(attr).iter().any(|x| {
            let x = x.to_ascii_lowercase();
            let mut rest = x.as_str();
            if let Some(i) = initial {
                match rest.strip_prefix(&i.to_ascii_lowercase()) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            for a in any {
                match rest.find(&a.to_ascii_lowercase()) {
                    Some(at) => rest = &rest[at + a.len()..],
                    None => return false,
                }
            }
            last.as_ref().is_none_or(|l| rest.ends_with(&l.to_ascii_lowercase()))
        }),
        LdapFilter::Configured(raw) => match raw.split_once(":1.2.840.113556.1.4.803:=") {
            // LDAP_MATCHING_RULE_BIT_AND (AD's userAccountControl bits).
            Some((attr, bits)) if !raw.starts_with('(') => {
                let (value, bits) = (e.first(attr).and_then(|v| v.parse::<i64>().ok()), bits.parse::<i64>().ok());
                value.zip(bits).is_some_and(|(v, b)| v & b == b)
            }
            _ => {
                let raw = if raw.starts_with('(') { raw.clone() } else { format!("({raw})") };
                parse(&raw).is_some_and(|(f, rest)| rest.is_empty() && matches(&f, e))
            }
        },
    }
}

/// Filters one after another up to the closing parenthesis of their `&` or `|`.
fn list(mut rest: &str) -> Option<(Vec<LdapFilter>, &str)> {
    let mut items = Vec::new();
    while rest.starts_with('(') {
        let (f, r) = parse(rest)?;
        items.push(f);
        rest = r;
    }
    Some((items, rest.strip_prefix(')')?))
}

/// An operator's filter text as a tree (the forms configurations use: `&`, `|`, `!`, `=`,
/// `=*`, substrings, `>=`, `<=`, and AD's bit-and matching rule); `None` when unreadable.
fn parse(s: &str) -> Option<(LdapFilter, &str)> {
    let s = s.strip_prefix('(')?;
    if let Some(rest) = s.strip_prefix('&') {
        return list(rest).map(|(i, r)| (LdapFilter::And(i), r));
    }
    if let Some(rest) = s.strip_prefix('|') {
        return list(rest).map(|(i, r)| (LdapFilter::Or(i), r));
    }
    if let Some(rest) = s.strip_prefix('!') {
        let (f, r) = parse(rest)?;
        return Some((LdapFilter::Not(Box::new(f)), r.strip_prefix(')')?));
    }
    let end = s.find(')')?;
    let (item, rest) = (&s[..end], &s[end + 1..]);
    let f = if let Some((a, v)) = item.split_once(">=") {
        LdapFilter::GreaterOrEqual(a.into(), unescape(v))
    } else if let Some((a, v)) = item.split_once("<=") {
        LdapFilter::LessOrEqual(a.into(), unescape(v))
    } else if item.contains(":=") {
        // An extensible match, evaluated by `matches`.
        LdapFilter::Configured(item.into())
    } else {
        let (a, v) = item.split_once('=')?;
        match v.split('*').collect::<Vec<_>>().as_slice() {
            [one] => LdapFilter::Equal(a.into(), unescape(one)),
            ["", ""] => LdapFilter::Present(a.into()),
            [first, middle @ .., end] => LdapFilter::Substring {
                attr: a.into(),
                initial: (!first.is_empty()).then(|| unescape(first)),
                any: middle.iter().filter(|m| !m.is_empty()).map(|m| unescape(m)).collect(),
                last: (!end.is_empty()).then(|| unescape(end)),
            },
            [] => return None,
        }
    };
    Some((f, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEOPLE: &str = "ou=people,dc=x";

    #[tokio::test]
    async fn behaves_as_a_directory() {
        let m = Memory::with_bases(&[PEOPLE]).must("groupOfNames", "member").unique("uid");
        let attrs = |uid: &str| vec![("objectClass".into(), vec!["person".into()]), ("uid".into(), vec![uid.into()])];
        let ann = format!("uid=ann,{PEOPLE}");
        m.add(&ann, &attrs("ann"), &vec![], None).await.unwrap();
        assert!(matches!(m.add(&ann, &attrs("ann"), &vec![], None).await, Err(DirectoryError::AlreadyExists)));
        assert!(matches!(
            m.add("uid=a,ou=nowhere", &attrs("a"), &vec![], None).await,
            Err(DirectoryError::NoSuchEntry)
        ));
        assert!(matches!(
            m.add(&format!("cn=x,{PEOPLE}"), &attrs("ANN"), &vec![], None).await,
            Err(DirectoryError::NotUnique(_))
        ));
        let id = m.entry(&ann).unwrap().first("entryUUID").unwrap().to_owned();

        let g = format!("cn=g,{PEOPLE}");
        let group = vec![("objectClass".into(), vec!["groupOfNames".into()])];
        let e = m.add(&g, &group, &vec![], None).await.unwrap_err();
        assert!(matches!(e, DirectoryError::Rejected { code: 65, .. }), "{e}");
        let group = [group, vec![("member".into(), vec![ann.clone()])]].concat();
        m.add(&g, &group, &vec![], None).await.unwrap();
        let add = m.modify(&g, &[Change::Add("member".into(), vec![ann.to_uppercase()])]).await.unwrap_err();
        assert!(matches!(add, DirectoryError::Rejected { code: 20, .. }), "{add}");
        let del = m.modify(&g, &[Change::Delete("member".into(), vec!["uid=zed".into()])]).await.unwrap_err();
        assert!(matches!(del, DirectoryError::Rejected { code: 16, .. }), "{del}");
        let empty = m.modify(&g, &[Change::Delete("member".into(), vec![ann.clone()])]).await.unwrap_err();
        assert!(matches!(empty, DirectoryError::Rejected { code: 65, .. }), "{empty}");

        // modrdn keeps the id, replaces the naming value, and refint follows it.
        m.rename(&ann, "uid=anna").await.unwrap();
        let anna = m.entry(&format!("uid=anna,{PEOPLE}")).unwrap();
        assert_eq!((anna.first("entryUUID"), anna.values("uid")), (Some(id.as_str()), &["anna".to_string()][..]));
        assert_eq!(anna.values("memberOf"), [g.as_str()]);
        assert_eq!(m.entry(&g).unwrap().values("member"), [anna.dn.as_str()]);

        let search = |filter: &str, scope| Search {
            base: PEOPLE.into(),
            scope,
            filter: LdapFilter::Configured(filter.into()),
            attrs: vec![],
        };
        assert_eq!(m.search(&search("(&(objectClass=person)(uid=AN*))", Scope::Subtree)).await.unwrap().len(), 1);
        assert_eq!(m.search(&search("(|(member=*)(!(objectClass=*)))", Scope::OneLevel)).await.unwrap().len(), 1);
        assert_eq!(m.search(&search("objectClass=*", Scope::Base)).await.unwrap().len(), 1);
        let missing = Search { base: format!("cn=none,{PEOPLE}"), ..search("objectClass=*", Scope::Base) };
        assert!(m.search(&missing).await.unwrap().is_empty(), "a missing base: nothing matches, as over LDAP");
        let uac = |v: &str| Entry::new("cn=a").with("userAccountControl", vec![v.into()]);
        let disabled = LdapFilter::Configured(crate::dialect::uac::disabled_filter());
        assert!(matches(&disabled, &uac("514")) && !matches(&disabled, &uac("512")));
        assert!(matches!(m.delete(PEOPLE).await, Err(DirectoryError::Rejected { code: 66, .. })));
    }
}
