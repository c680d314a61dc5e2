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

/// Whether two DNs name the same entry, as far as the text tells: attribute names and values
/// compared ignoring case and spaces around separators, escapes (`\,` and `\2c`) decoded.
pub fn same(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

fn normalise(dn: &str) -> Vec<(String, String)> {
    let mut rdns = Vec::new();
    let mut rest = dn.trim();
    while !rest.is_empty() {
        let (first, parent) = split(rest);
        let (attr, value) = first.split_once('=').unwrap_or((first, ""));
        rdns.push((attr.trim().to_lowercase(), unescape(value.trim()).to_lowercase()));
        rest = parent;
    }
    rdns
}

fn unescape(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len());
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'\\', Some(h)) => (out.push(h), i += 3),
            (b'\\', None) if i + 1 < bytes.len() => (out.push(bytes[i + 1]), i += 2),
            (b, _) => (out.push(b), i += 1),
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_dn_written_differently() {
        assert!(same(r"cn=a\,b, OU=Groups,dc=x", r"CN=A\2cB,ou=groups, dc=x"));
        assert!(same("cn=placeholder,dc=x", " cn = Placeholder , dc=x"));
        assert!(!same("cn=a,dc=x", "cn=a,dc=y"));
        assert!(!same("cn=a,dc=x", "cn=a"));
    }

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
