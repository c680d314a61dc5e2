//! A rule's values on both sides: the two-way conversions (generalized time, base64) and
//! split / join between one SCIM string and several LDAP values, or the reverse.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{time, Error, Result, Rule};
use crate::config::Convert;
use crate::directory::Entry;

impl Rule {
    /// SCIM values (as text) → the LDAP values to write: converted, joined or split, shaped
    /// by the transforms, the default when none is left. Binary values stay base64 here
    /// (see [`decode`]); duplicates, which LDAP refuses, are dropped.
    pub(super) fn to_ldap(&self, scim: Vec<String>) -> Result<Vec<String>> {
        let mut out = scim.into_iter().map(|v| self.convert_in(v)).collect::<Result<Vec<_>>>()?;
        if let Some(sep) = &self.join {
            out = if out.is_empty() { out } else { vec![out.join(sep)] };
        }
        if let Some(sep) = &self.split {
            out = out.iter().flat_map(|v| v.split(sep.as_str())).map(|v| v.trim().to_owned()).collect();
        }
        let mut out: Vec<String> = out.into_iter().map(|v| self.steps.shape(v)).filter(|v| !v.is_empty()).collect();
        if out.is_empty() {
            out.extend(self.steps.default.clone());
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|v| seen.insert(if self.binary() { v.clone() } else { v.to_lowercase() }));
        Ok(out)
    }

    /// The entry's LDAP values → SCIM values (as text). A rule that stores one value reads the
    /// first only: the others are the directory's, kept until that value changes.
    pub(super) fn to_scim(&self, entry: &Entry) -> Vec<String> {
        let mut out: Vec<String> = match self.binary() {
            true => entry.bytes(&self.ldap).into_iter().map(|b| STANDARD.encode(b)).collect(),
            false => entry.values(&self.ldap).to_vec(),
        };
        if !self.ldap_many() {
            out.truncate(1);
        }
        if let Some(sep) = &self.split {
            out = if out.is_empty() { out } else { vec![out.join(sep)] };
        }
        if let Some(sep) = &self.join {
            out = out.iter().flat_map(|v| v.split(sep.as_str())).filter(|v| !v.is_empty()).map(str::to_owned).collect();
        }
        if self.convert == Some(Convert::GeneralizedTime) {
            // A value that is not generalized time is shown as the directory holds it.
            out = out.into_iter().map(|v| time::to_rfc3339(&v).unwrap_or(v)).collect();
        }
        out
    }

    fn convert_in(&self, v: String) -> Result<String> {
        match self.convert {
            None => Ok(v),
            Some(Convert::GeneralizedTime) => time::to_generalized(&v).ok_or_else(|| {
                Error::value(format!("{} must be a dateTime such as 2026-11-22T22:05:30Z, not {v:?}", self.target))
            }),
            // Canonical base64, so that comparing with the directory's bytes is exact.
            Some(Convert::Base64) => decode(&v).map(|b| STANDARD.encode(b)).ok_or_else(|| {
                Error::value(format!("{} must be base64 (RFC 4648), as SCIM binary values are", self.target))
            }),
        }
    }
}

/// The bytes of a base64 value, tolerating the line breaks some clients put in long ones.
pub(super) fn decode(v: &str) -> Option<Vec<u8>> {
    let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::compile_rule;
    use crate::scim::USER_SCHEMA;

    fn rule(scim: &str, ldap: &str, edit: impl FnOnce(&mut Rule)) -> Rule {
        let mut r = compile_rule(scim, ldap, USER_SCHEMA).unwrap();
        edit(&mut r);
        r
    }

    fn entry(attr: &str, values: &[&str]) -> Entry {
        Entry::new("uid=a").with(attr, values.iter().map(|v| v.to_string()).collect())
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn split_one_scim_string_into_ldap_values() {
        let r = rule("title", "businessCategory", |r| r.split = Some(",".into()));
        assert_eq!(r.to_ldap(strings(&["sales, emea,,Sales"])).unwrap(), ["sales", "emea"]);
        assert_eq!(r.to_scim(&entry("businessCategory", &["sales", "emea"])), ["sales,emea"]);
        assert!(r.to_scim(&Entry::new("uid=a")).is_empty());
    }

    #[test]
    fn join_scim_values_into_one_ldap_value() {
        let r = rule("emails.value", "description", |r| r.join = Some(";".into()));
        assert!(!r.ldap_many());
        assert_eq!(r.to_ldap(strings(&["a@x", "b@x"])).unwrap(), ["a@x;b@x"]);
        assert!(r.to_ldap(vec![]).unwrap().is_empty());
        assert_eq!(r.to_scim(&entry("description", &["a@x;b@x", "ignored"])), ["a@x", "b@x"]);
    }

    #[test]
    fn generalized_time_both_ways() {
        let r = rule("title", "x-hired", |r| r.convert = Some(Convert::GeneralizedTime));
        assert_eq!(r.to_ldap(strings(&["2026-11-22T23:05:30+01:00"])).unwrap(), ["20261122220530Z"]);
        assert_eq!(r.to_scim(&entry("x-hired", &["20261122220530Z"])), ["2026-11-22T22:05:30Z"]);
        assert_eq!(r.to_scim(&entry("x-hired", &["soon"])), ["soon"], "not a time: shown as is");
        let e = r.to_ldap(strings(&["yesterday"])).unwrap_err().to_string();
        assert!(e.contains("dateTime"), "{e}");
    }

    #[test]
    fn base64_both_ways() {
        let r = rule("x509Certificates.value", "userCertificate;binary", |_| {});
        assert_eq!(r.to_ldap(strings(&["/9j/\n4A=="])).unwrap(), ["/9j/4A=="]);
        assert!(r.to_ldap(strings(&["not base64!"])).is_err());
        let mut e = Entry::new("uid=a");
        e.insert_binary("userCertificate;binary", vec![vec![0xff, 0xd8, 0xff, 0xe0], vec![0x30, 0x82]]);
        assert_eq!(r.to_scim(&e), ["/9j/4A==", "MII="]);
        assert_eq!(decode("MII="), Some(vec![0x30, 0x82]));
    }

    #[test]
    fn single_rules_read_the_first_value_and_defaults_fill_gaps() {
        let r = rule("title", "title", |r| r.steps.default = Some("Staff".into()));
        assert_eq!(r.to_scim(&entry("title", &["a", "b"])), ["a"]);
        assert_eq!(r.to_ldap(vec![]).unwrap(), ["Staff"]);
        let many = rule("emails.value", "mail", |_| {});
        assert_eq!(many.to_ldap(strings(&["a@x", "A@X", "b@x"])).unwrap(), ["a@x", "b@x"], "LDAP refuses duplicates");
        assert_eq!(many.to_scim(&entry("mail", &["a@x", "b@x"])), ["a@x", "b@x"]);
    }
}
