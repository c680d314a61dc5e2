//! Building DNs from client data, escaped per RFC 4514.

use ldap3::dn_escape;

/// `attr=value` with the value escaped; `attr` comes from the configuration, never from a client.
pub fn rdn(attr: &str, value: &str) -> String {
    format!("{attr}={}", dn_escape(value))
}

/// The DN of a child of `parent` named by an already-escaped `rdn`.
pub fn child(rdn: &str, parent: &str) -> String {
    format!("{rdn},{parent}")
}

/// Splits a DN into its first RDN and its parent's DN, honouring `\,` escapes.
pub fn split(dn: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => return (&dn[..i], dn[i + 1..].trim_start()),
            _ => {}
        }
    }
    (dn, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(rdn("uid", "a,b+c=d"), r"uid=a\2cb\2bc\3dd");
        assert_eq!(rdn("cn", " #lead"), r"cn=\20#lead");
        assert_eq!(rdn("cn", "trail "), r"cn=trail\20");
        assert_eq!(child(&rdn("uid", "x"), "ou=people,dc=example,dc=test"), "uid=x,ou=people,dc=example,dc=test");
        assert_eq!(split(r"uid=a\,b,ou=people,dc=x"), (r"uid=a\,b", "ou=people,dc=x"));
        assert_eq!(split("dc=x"), ("dc=x", ""));
    }
}
