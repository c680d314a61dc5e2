//! LDAP search filters as a tree, printed with every assertion value escaped per RFC 4515.
//!
//! Attribute names come from the operator's configuration (validated at load); values may
//! come from clients and are only ever emitted through [`ldap3::ldap_escape`].

use std::fmt;

use ldap3::ldap_escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapFilter {
    And(Vec<LdapFilter>),
    Or(Vec<LdapFilter>),
    Not(Box<LdapFilter>),
    Equal(String, String),
    /// Equality with a binary value (AD's objectGUID), every byte escaped as `\xx`.
    EqualBytes(String, Vec<u8>),
    /// `attr=initial*any*…*final`; at least one part is present.
    Substring {
        attr: String,
        initial: Option<String>,
        any: Vec<String>,
        last: Option<String>,
    },
    GreaterOrEqual(String, String),
    LessOrEqual(String, String),
    Present(String),
    /// A filter written by the operator in gateway.toml (trusted, validated at load).
    Configured(String),
}

impl LdapFilter {
    pub fn eq(attr: &str, value: &str) -> Self {
        LdapFilter::Equal(attr.to_owned(), value.to_owned())
    }

    pub fn present(attr: &str) -> Self {
        LdapFilter::Present(attr.to_owned())
    }

    /// Matches nothing: the translation of a condition on something that cannot exist.
    pub fn none() -> Self {
        LdapFilter::Or(Vec::new())
    }

    /// `self AND other`, flattening nested ANDs.
    pub fn and(self, other: LdapFilter) -> Self {
        match (self, other) {
            (LdapFilter::And(mut a), LdapFilter::And(b)) => {
                a.extend(b);
                LdapFilter::And(a)
            }
            (LdapFilter::And(mut a), f) => {
                a.push(f);
                LdapFilter::And(a)
            }
            (f, LdapFilter::And(mut b)) => {
                b.insert(0, f);
                LdapFilter::And(b)
            }
            (a, b) => LdapFilter::And(vec![a, b]),
        }
    }
}

impl fmt::Display for LdapFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // An empty OR is "absolute false" (RFC 4526); print a form every server accepts.
            LdapFilter::Or(items) if items.is_empty() => f.write_str("(!(objectClass=*))"),
            LdapFilter::And(items) if items.is_empty() => f.write_str("(objectClass=*)"),
            LdapFilter::And(items) | LdapFilter::Or(items) => {
                f.write_str(if matches!(self, LdapFilter::And(_)) { "(&" } else { "(|" })?;
                items.iter().try_for_each(|i| i.fmt(f))?;
                f.write_str(")")
            }
            LdapFilter::Not(inner) => write!(f, "(!{inner})"),
            LdapFilter::Equal(a, v) => write!(f, "({a}={})", ldap_escape(v.as_str())),
            LdapFilter::EqualBytes(a, bytes) => {
                write!(f, "({a}=")?;
                bytes.iter().try_for_each(|b| write!(f, "\\{b:02x}"))?;
                f.write_str(")")
            }
            LdapFilter::GreaterOrEqual(a, v) => write!(f, "({a}>={})", ldap_escape(v.as_str())),
            LdapFilter::LessOrEqual(a, v) => write!(f, "({a}<={})", ldap_escape(v.as_str())),
            LdapFilter::Present(a) => write!(f, "({a}=*)"),
            LdapFilter::Substring { attr, initial, any, last } => {
                write!(f, "({attr}=")?;
                if let Some(i) = initial {
                    f.write_str(&ldap_escape(i.as_str()))?;
                }
                f.write_str("*")?;
                for a in any {
                    write!(f, "{}*", ldap_escape(a.as_str()))?;
                }
                if let Some(l) = last {
                    f.write_str(&ldap_escape(l.as_str()))?;
                }
                f.write_str(")")
            }
            LdapFilter::Configured(raw) if raw.starts_with('(') => f.write_str(raw),
            LdapFilter::Configured(raw) => write!(f, "({raw})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_values() {
        for hostile in ["*)(uid=*", "\0", ")(|(objectClass=*)", "a\\b", "(x)"] {
            let printed = LdapFilter::eq("uid", hostile).to_string();
            let body = &printed["(uid=".len()..printed.len() - 1];
            assert!(!body.contains(['*', '(', ')', '\0']), "{printed}");
            assert!(ldap3::parse_filter(&printed).is_ok(), "{printed}");
        }
    }

    #[test]
    fn prints_compound_filters() {
        let f = LdapFilter::Configured("objectClass=inetOrgPerson".into())
            .and(LdapFilter::Or(vec![LdapFilter::present("mail"), LdapFilter::none()]))
            .and(LdapFilter::Not(Box::new(LdapFilter::Substring {
                attr: "cn".into(),
                initial: Some("a*".into()),
                any: vec!["b".into()],
                last: None,
            })));
        assert_eq!(f.to_string(), r"(&(objectClass=inetOrgPerson)(|(mail=*)(!(objectClass=*)))(!(cn=a\2a*b*)))");
        assert!(ldap3::parse_filter(f.to_string()).is_ok());
    }
}
