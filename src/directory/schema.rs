//! The directory's subschema (RFC 4512 §4.1): which attribute types and object classes exist,
//! and what each class requires. Read by `scim-gateway check` to test the mapping against
//! the real directory before any IdP request.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectClass {
    pub sup: Vec<String>,
    pub must: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeType {
    pub sup: Option<String>,
    /// The syntax OID (without a length bound); inherited from `sup` when absent.
    pub syntax: Option<String>,
    pub single_value: bool,
}

/// Syntaxes whose values are bytes, not text: Binary, Certificate, Certificate List,
/// Certificate Pair, JPEG, Octet String (RFC 4517, RFC 4523, RFC 2798).
const BINARY_SYNTAXES: &[&str] = &[
    "1.3.6.1.4.1.1466.115.121.1.5",
    "1.3.6.1.4.1.1466.115.121.1.8",
    "1.3.6.1.4.1.1466.115.121.1.9",
    "1.3.6.1.4.1.1466.115.121.1.10",
    "1.3.6.1.4.1.1466.115.121.1.28",
    "1.3.6.1.4.1.1466.115.121.1.40",
];

/// Names are kept lower-cased: LDAP descriptors are case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct Subschema {
    attributes: HashMap<String, AttributeType>,
    classes: HashMap<String, ObjectClass>,
}

impl Subschema {
    /// From the values of `attributeTypes` and `objectClasses`.
    pub fn parse(attribute_types: &[String], object_classes: &[String]) -> Subschema {
        let mut s = Subschema::default();
        for def in attribute_types {
            let d = Description::parse(def);
            let syntax = d.list("SYNTAX").pop().map(|o| o.split('{').next().unwrap_or_default().to_owned());
            let single_value = d.0.iter().any(|(k, _)| k == "SINGLE-VALUE");
            let t = AttributeType { sup: d.list("SUP").pop(), syntax, single_value };
            for name in d.names() {
                s.attributes.insert(name, t.clone());
            }
        }
        for def in object_classes {
            let d = Description::parse(def);
            let class = ObjectClass { sup: d.list("SUP"), must: d.list("MUST") };
            for name in d.names() {
                s.classes.insert(name, class.clone());
            }
        }
        s
    }

    /// Whether the attribute type exists; options (`userCertificate;binary`) are ignored.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeType> {
        let base = name.split(';').next().unwrap_or_default();
        self.attributes.get(&base.to_ascii_lowercase())
    }

    /// Whether the attribute's values are bytes (its syntax, or its supertype's, is binary).
    pub fn is_binary(&self, name: &str) -> bool {
        let mut current = self.attribute(name);
        for _ in 0..8 {
            match current {
                Some(AttributeType { syntax: Some(s), .. }) => return BINARY_SYNTAXES.contains(&s.as_str()),
                Some(AttributeType { sup: Some(sup), .. }) => current = self.attribute(sup),
                _ => return false,
            }
        }
        false
    }

    pub fn has_class(&self, name: &str) -> bool {
        self.classes.contains_key(&name.to_ascii_lowercase())
    }

    /// Every attribute `class` and its superclasses require.
    pub fn must(&self, class: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![class.to_ascii_lowercase()];
        let mut seen = Vec::new();
        while let Some(c) = todo.pop() {
            if seen.contains(&c) {
                continue;
            }
            if let Some(oc) = self.classes.get(&c) {
                out.extend(oc.must.iter().cloned());
                todo.extend(oc.sup.iter().map(|s| s.to_ascii_lowercase()));
            }
            seen.push(c);
        }
        out.sort_by_key(|a| a.to_ascii_lowercase());
        out.dedup_by_key(|a| a.to_ascii_lowercase());
        out
    }
}

/// One `( oid NAME … SUP … MUST … )` description, as keyword → tokens.
struct Description(Vec<(String, Vec<String>)>);

impl Description {
    fn parse(text: &str) -> Description {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                '(' | ')' | '$' => {
                    tokens.push(c.to_string());
                    chars.next();
                }
                '\'' => {
                    chars.next();
                    tokens.push(chars.by_ref().take_while(|&c| c != '\'').collect());
                }
                c if c.is_whitespace() => {
                    chars.next();
                }
                _ => {
                    let mut word = String::new();
                    while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace() && !"()$'".contains(**c)) {
                        word.push(c);
                        chars.next();
                    }
                    tokens.push(word);
                }
            }
        }
        // Skip the outer "(" and the OID, then group values under their upper-case keywords.
        let mut fields: Vec<(String, Vec<String>)> = Vec::new();
        let mut depth = 0;
        for t in tokens.into_iter().skip(2) {
            match t.as_str() {
                "(" => depth += 1,
                ")" => depth -= 1,
                "$" => {}
                k if depth == 0
                    && k.chars().all(|c| c.is_ascii_uppercase() || c == '-' || c == '_')
                    && !k.is_empty() =>
                {
                    fields.push((k.to_owned(), Vec::new()))
                }
                v => {
                    if let Some((_, values)) = fields.last_mut() {
                        values.push(v.to_owned());
                    }
                }
            }
        }
        Description(fields)
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).flat_map(|(_, v)| v.iter().cloned()).collect()
    }

    fn names(&self) -> Vec<String> {
        self.list("NAME").into_iter().map(|n| n.to_ascii_lowercase()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_4512_descriptions() {
        let attrs = [
            "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name )".to_string(),
            "( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )".to_string(),
            "( 1.3.6.1.1.16.4 NAME 'entryUUID' EQUALITY UUIDMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )".to_string(),
        ];
        let classes = [
            "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )".to_string(),
            "( 2.5.6.6 NAME 'person' DESC 'RFC2256: a person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber ) )".to_string(),
            "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL )".to_string(),
            "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY title )".to_string(),
        ];
        let s = Subschema::parse(&attrs, &classes);
        assert!(s.has_attribute("CommonName") && s.has_attribute("entryuuid") && !s.has_attribute("name"));
        assert!(s.has_class("InetOrgPerson") && !s.has_class("posixAccount"));
        assert_eq!(s.must("inetOrgPerson"), ["cn", "objectClass", "sn"]);
        assert!(s.must("unknown").is_empty());
        assert!(s.attribute("entryUUID").unwrap().single_value && !s.attribute("cn").unwrap().single_value);
        let photo = Subschema::parse(
            &[
                "( 0.9.2342.19200300.100.1.60 NAME 'jpegPhoto' SYNTAX 1.3.6.1.4.1.1466.115.121.1.28 )".into(),
                "( 2.5.4.41 NAME 'name' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )".into(),
                "( 2.5.4.3 NAME 'cn' SUP name )".into(),
                "( 2.5.4.36 NAME 'userCertificate' SYNTAX 1.3.6.1.4.1.1466.115.121.1.8 )".into(),
            ],
            &[],
        );
        assert!(photo.is_binary("jpegPhoto") && photo.is_binary("userCertificate;binary"));
        assert!(!photo.is_binary("cn") && !photo.is_binary("nope"));
    }
}
