//! The SCIM attribute definitions the gateway knows (RFC 7643 §4.1, §4.3) and the
//! discovery documents built from them. Only what the mapping covers is advertised.

use serde_json::{json, Value};

/// An attribute's data type, spelled as in RFC 7643 §2.3 (also in gateway.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    #[default]
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
    /// Base64 text in SCIM (RFC 7643 §2.3.6), bytes in the directory.
    Binary,
    Integer,
    Decimal,
}

/// RFC 7643 §7 `mutability`, spelled as there (also in gateway.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    /// Set once (on create, or when it has no value yet), never changed.
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`: `request` (only when asked for) is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
}

/// One attribute definition.
#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub mutability: Mutability,
    pub case_exact: bool,
    pub required: bool,
    pub sub: &'static [AttrDef],
    /// What a reference points to (RFC 7643 §7 `referenceTypes`): resource types, `external`, `uri`.
    pub refs: &'static [&'static str],
}

const fn attr(name: &'static str) -> AttrDef {
    AttrDef {
        name,
        kind: Kind::String,
        multi: false,
        mutability: Mutability::ReadWrite,
        case_exact: false,
        required: false,
        sub: &[],
        refs: &[],
    }
}

const fn reference(name: &'static str, refs: &'static [&'static str]) -> AttrDef {
    AttrDef { kind: Kind::Reference, refs, ..attr(name) }
}

const fn complex(name: &'static str, multi: bool, sub: &'static [AttrDef]) -> AttrDef {
    AttrDef { kind: Kind::Complex, multi, sub, ..attr(name) }
}

const fn boolean(name: &'static str) -> AttrDef {
    AttrDef { kind: Kind::Boolean, ..attr(name) }
}

/// A plain read-write string: the type of custom extension attributes.
pub const STRING: AttrDef = attr("");

const MULTI_SUB: &[AttrDef] = &[attr("value"), attr("display"), attr("type"), boolean("primary")];

const BINARY_SUB: &[AttrDef] = &[
    AttrDef { kind: Kind::Binary, case_exact: true, ..attr("value") },
    attr("display"),
    attr("type"),
    boolean("primary"),
];

/// Core User attributes (RFC 7643 §4.1), without the common `id`, `externalId`, `meta`.
pub const USER: &[AttrDef] = &[
    AttrDef { required: true, ..attr("userName") },
    complex(
        "name",
        false,
        &[
            attr("formatted"),
            attr("familyName"),
            attr("givenName"),
            attr("middleName"),
            attr("honorificPrefix"),
            attr("honorificSuffix"),
        ],
    ),
    attr("displayName"),
    attr("nickName"),
    reference("profileUrl", &["external"]),
    attr("title"),
    attr("userType"),
    attr("preferredLanguage"),
    attr("locale"),
    attr("timezone"),
    boolean("active"),
    AttrDef { mutability: Mutability::WriteOnly, case_exact: true, ..attr("password") },
    complex("emails", true, MULTI_SUB),
    complex("phoneNumbers", true, MULTI_SUB),
    complex("ims", true, MULTI_SUB),
    complex("photos", true, MULTI_SUB),
    complex(
        "addresses",
        true,
        &[
            attr("formatted"),
            attr("streetAddress"),
            attr("locality"),
            attr("region"),
            attr("postalCode"),
            attr("country"),
            attr("type"),
            boolean("primary"),
        ],
    ),
    AttrDef { mutability: Mutability::ReadOnly, ..complex("groups", true, MULTI_SUB) },
    complex("entitlements", true, MULTI_SUB),
    complex("roles", true, MULTI_SUB),
    complex("x509Certificates", true, BINARY_SUB),
];

/// Attributes common to every resource (RFC 7643 §3.1).
pub const COMMON: &[AttrDef] = &[
    AttrDef { mutability: Mutability::ReadOnly, case_exact: true, ..attr("id") },
    AttrDef { case_exact: true, ..attr("externalId") },
    AttrDef {
        mutability: Mutability::ReadOnly,
        ..complex(
            "meta",
            false,
            &[
                attr("resourceType"),
                AttrDef { kind: Kind::DateTime, ..attr("created") },
                AttrDef { kind: Kind::DateTime, ..attr("lastModified") },
                reference("location", &["uri"]),
                attr("version"),
            ],
        )
    },
];

/// Core Group attributes (RFC 7643 §4.2).
pub const GROUP: &[AttrDef] = &[
    AttrDef { required: true, ..attr("displayName") },
    complex(
        "members",
        true,
        &[
            attr("value"),
            reference("$ref", &["User", "Group"]),
            AttrDef { mutability: Mutability::ReadOnly, ..attr("display") },
            attr("type"),
        ],
    ),
];

/// Enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER: &[AttrDef] = &[
    attr("employeeNumber"),
    attr("costCenter"),
    attr("organization"),
    attr("division"),
    attr("department"),
    complex("manager", false, &[attr("value"), reference("$ref", &["User"]), attr("displayName")]),
];

/// The definitions of a schema URN the gateway knows.
pub fn definitions(urn: &str) -> Option<&'static [AttrDef]> {
    if urn.eq_ignore_ascii_case(super::USER_SCHEMA) {
        Some(USER)
    } else if urn.eq_ignore_ascii_case(super::GROUP_SCHEMA) {
        Some(GROUP)
    } else if urn.eq_ignore_ascii_case(super::ENTERPRISE_USER_SCHEMA) {
        Some(ENTERPRISE_USER)
    } else {
        None
    }
}

/// Finds `name` (case-insensitively) among `defs`.
pub fn find<'a>(defs: &'a [AttrDef], name: &str) -> Option<&'a AttrDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// A core User attribute or a common one.
pub fn user_attr(name: &str) -> Option<&'static AttrDef> {
    find(USER, name).or_else(|| find(COMMON, name))
}

impl AttrDef {
    /// The RFC 7643 §7 representation, keeping only the sub-attributes `keep` accepts.
    pub fn to_json(&self, keep: &dyn Fn(&AttrDef) -> bool) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": match self.kind {
                Kind::String => "string",
                Kind::Boolean => "boolean",
                Kind::DateTime => "dateTime",
                Kind::Reference => "reference",
                Kind::Complex => "complex",
                Kind::Binary => "binary",
                Kind::Integer => "integer",
                Kind::Decimal => "decimal",
            },
            "multiValued": self.multi,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
                Mutability::WriteOnly => "writeOnly",
            },
            "returned": match (self.mutability, self.name) {
                (Mutability::WriteOnly, _) => "never",
                (_, "id") => "always",
                _ => "default",
            },
            "uniqueness": if matches!(self.name, "userName" | "id") { "server" } else { "none" },
        });
        if self.kind == Kind::Reference {
            v["referenceTypes"] = json!(self.refs);
        }
        if !self.sub.is_empty() {
            let subs: Vec<Value> = self.sub.iter().filter(|s| keep(s)).map(|s| s.to_json(&|_| true)).collect();
            v["subAttributes"] = Value::Array(subs);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(user_attr("USERNAME").unwrap().name, "userName");
        assert_eq!(user_attr("id").unwrap().mutability, Mutability::ReadOnly);
        assert!(definitions("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER").is_some());
        let name = user_attr("name").unwrap().to_json(&|d| d.name == "givenName");
        assert_eq!(name["subAttributes"].as_array().unwrap().len(), 1);
        assert_eq!(user_attr("password").unwrap().to_json(&|_| true)["returned"], "never");
    }
}
