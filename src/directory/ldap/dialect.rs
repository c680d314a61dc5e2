//! How the LDAP adapter speaks each [`Dialect`]: what the dialect knows (see
//! [`crate::dialect`]) turned into what goes on the wire.

use crate::dialect::{guid, Dialect, OBJECT_GUID};
use crate::directory::LdapFilter;

/// `filter` as this server needs it: AD compares objectGUID with its 16 bytes, escaped.
pub fn filter(dialect: Dialect, filter: &LdapFilter) -> LdapFilter {
    if dialect != Dialect::ActiveDirectory {
        return filter.clone();
    }
    let each = |items: &[LdapFilter]| items.iter().map(|f| self::filter(dialect, f)).collect();
    match filter {
        LdapFilter::Equal(a, v) if a.eq_ignore_ascii_case(OBJECT_GUID) => match guid::to_bytes(v) {
            Some(bytes) => LdapFilter::EqualBytes(a.clone(), bytes.to_vec()),
            None => LdapFilter::none(),
        },
        LdapFilter::And(items) => LdapFilter::And(each(items)),
        LdapFilter::Or(items) => LdapFilter::Or(each(items)),
        LdapFilter::Not(inner) => LdapFilter::Not(Box::new(self::filter(dialect, inner))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_compared_as_bytes() {
        let s = "0ef73203-7f41-40d6-b7b5-1fa0fb4cbe01";
        let f = filter(Dialect::ActiveDirectory, &LdapFilter::eq("objectGUID", s).and(LdapFilter::eq("cn", "x")));
        assert_eq!(f.to_string(), r"(&(objectGUID=\03\32\f7\0e\41\7f\d6\40\b7\b5\1f\a0\fb\4c\be\01)(cn=x))");
        assert!(ldap3::parse_filter(f.to_string()).is_ok());
        let bad = filter(Dialect::ActiveDirectory, &LdapFilter::eq("objectGUID", "*)(cn=*"));
        assert_eq!(bad, LdapFilter::none(), "what is not a GUID matches nothing");
        assert_eq!(filter(Dialect::OpenLdap, &LdapFilter::eq("objectGUID", s)), LdapFilter::eq("objectGUID", s));
    }
}
