//! Entries as read, made whole: binary values the dialect knows (objectGUID) decoded, and
//! multi-valued attributes that came in ranges (`member;range=0-1499`, AD's MaxValRange)
//! completed with further reads of the same entry.

use ldap3::{Ldap, LdapError, Scope, SearchEntry};

use crate::dialect::Dialect;
use crate::directory::Entry;

/// The attributes asked for in ranges when a range size is configured (AD only).
const RANGED: &[&str] = &["member"];

/// The attributes to ask for: with `step`, `member` becomes `member;range=0-(step-1)`.
pub fn request(attrs: &[String], step: Option<u32>) -> Vec<String> {
    attrs
        .iter()
        .map(|a| match step {
            Some(n) if RANGED.iter().any(|r| r.eq_ignore_ascii_case(a)) => format!("{a};range=0-{}", n.max(1) - 1),
            _ => a.clone(),
        })
        .collect()
}

/// `member;range=0-1499` → `("member", Some(1499))`; `member;range=1500-*` → `("member", None)`.
fn range_of(attr: &str) -> Option<(&str, Option<usize>)> {
    let (name, options) = attr.split_once(';')?;
    let range =
        options.split(';').find_map(|o| o.get(..6).filter(|p| p.eq_ignore_ascii_case("range=")).map(|_| &o[6..]))?;
    let (_, high) = range.split_once('-')?;
    Some((name, if high == "*" { None } else { Some(high.parse().ok()?) }))
}

/// An [`Entry`] from what the server sent, and the ranged attributes still to read (name,
/// first index not yet read).
pub fn entry(e: SearchEntry, dialect: Dialect) -> (Entry, Vec<(String, usize)>) {
    let mut entry = Entry::new(e.dn);
    let mut pending = Vec::new();
    for (k, v) in e.attrs {
        match range_of(&k) {
            Some((name, high)) => {
                entry.extend(name, v);
                pending.extend(high.map(|h| (name.to_owned(), h + 1)));
            }
            // A binary value that happens to be valid UTF-8 arrives here as text.
            None => match v.iter().map(|x| dialect.decode(&k, x.as_bytes())).collect::<Option<Vec<_>>>() {
                Some(decoded) if !decoded.is_empty() => entry.insert(&k, decoded),
                _ => entry.insert(&k, v),
            },
        }
    }
    for (k, v) in e.bin_attrs {
        let decoded: Option<Vec<String>> = v.iter().map(|x| dialect.decode(&k, x)).collect();
        // Binary attributes the dialect does not know stay bytes (jpegPhoto, certificates).
        match decoded {
            Some(decoded) => entry.insert(&k, decoded),
            None => entry.insert_binary(&k, v),
        }
    }
    (entry, pending)
}

/// Reads the rest of each ranged attribute of `entry`, `step` values at a time (or as many
/// as the server gives when unset), until the server answers with a range ending in `*`.
pub async fn follow(
    ldap: &mut Ldap,
    entry: &mut Entry,
    mut pending: Vec<(String, usize)>,
    step: Option<u32>,
) -> Result<(), LdapError> {
    while let Some((attr, from)) = pending.pop() {
        let wanted = match step {
            Some(n) => format!("{attr};range={from}-{}", from + n.max(1) as usize - 1),
            None => format!("{attr};range={from}-*"),
        };
        let (found, _) = ldap.search(&entry.dn, Scope::Base, "(objectClass=*)", vec![wanted]).await?.success()?;
        for raw in found {
            for (k, v) in SearchEntry::construct(raw).attrs {
                if let Some((name, high)) = range_of(&k).filter(|(n, _)| n.eq_ignore_ascii_case(&attr)) {
                    entry.extend(name, v);
                    pending.extend(high.map(|h| (attr.clone(), h + 1)));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range_of("member;range=0-1499"), Some(("member", Some(1499))));
        assert_eq!(range_of("member;Range=1500-*"), Some(("member", None)));
        assert_eq!(range_of("member"), None);
        assert_eq!(range_of("member;binary"), None);
        assert_eq!(range_of("member;range=0-x"), None);
        let attrs = vec!["cn".to_string(), "Member".to_string()];
        assert_eq!(request(&attrs, Some(100)), ["cn", "Member;range=0-99"]);
        assert_eq!(request(&attrs, None), attrs);
    }

    #[test]
    fn entries_merge_ranges_and_decode_guids() {
        let guid = vec![0x03, 0x32, 0xf7, 0x0e, 0x41, 0x7f, 0xd6, 0x40, 0xb7, 0xb5, 0x1f, 0xa0, 0xfb, 0x4c, 0xbe, 0x01];
        let e = SearchEntry {
            dn: "CN=g,DC=x".into(),
            attrs: [("member;range=0-1".to_string(), vec!["a".to_string(), "b".to_string()])].into(),
            bin_attrs: [("objectGUID".to_string(), vec![guid]), ("objectSid".to_string(), vec![vec![1, 5, 0xff]])]
                .into(),
        };
        let (entry, pending) = entry(e, Dialect::ActiveDirectory);
        assert_eq!(entry.values("member"), ["a", "b"]);
        assert_eq!(entry.first("objectGUID"), Some("0ef73203-7f41-40d6-b7b5-1fa0fb4cbe01"));
        assert!(entry.values("objectSid").is_empty());
        assert_eq!(pending, [("member".to_string(), 2)]);
    }
}
