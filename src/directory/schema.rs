//! The directory's subschema (RFC 4512 §4.1): which attribute types and object classes exist,
//! and what each class requires. Read by `scim-gateway check` to test the mapping against
//! the real directory before any IdP request.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectClass {
    pub sup: Vec<String>,
    pub must: Vec<String>,
}

/// Names are kept lower-cased: LDAP descriptors are case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct Subschema {
    attributes: HashMap<String, ()>,
    classes: HashMap<String, ObjectClass>,
}

impl Subschema {
    /// From the values of `attributeTypes` and `objectClasses`.
    pub fn parse(attribute_types: &[String], object_classes: &[String]) -> Subschema {
        let mut s = Subschema::default();
        for def in attribute_types {
            let d = Description::parse(def);
            for name in d.names() {
                s.attributes.insert(name, ());
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

    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes.contains_key(&name.to_ascii_lowercase())
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
    }
}
