//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` (RFC 7644 §4, RFC 7643 §5–7),
//! built from what the mapping covers: an attribute the gateway cannot store is not offered.

use serde_json::{json, Value};

use super::list::{list_response, MAX_COUNT};
use super::schema::{self, AttrDef};
use super::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// One attribute (or sub-attribute) the gateway stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertised {
    /// Extension URN, `None` for the core schema.
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
    /// Its rule demands a value (`required = true`).
    pub required: bool,
    /// A value it takes (advertised as one of `canonicalValues`): the `type` a rule's
    /// selector picks, `emails[type eq "work"]`, since values of other types are not stored.
    pub canonical: Option<String>,
    /// The definition of a declared extension attribute (RFC 7643 §7), as `/Schemas` shows it.
    pub doc: Option<Value>,
}

/// A resource type the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// `User`, `Group`.
    pub name: &'static str,
    /// `/Users`, `/Groups`.
    pub endpoint: &'static str,
    pub schema: &'static str,
}

pub const USER: ResourceType = ResourceType { name: "User", endpoint: "/Users", schema: USER_SCHEMA };
pub const GROUP: ResourceType = ResourceType { name: "Group", endpoint: "/Groups", schema: GROUP_SCHEMA };

/// The three documents.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub service_provider_config: Value,
    pub resource_types: Vec<Value>,
    pub schemas: Vec<Value>,
}

impl Discovery {
    /// `base` is the absolute URL of the SCIM root; `served` what each resource type maps.
    /// `bearer`, `basic` and `oauth` say which authentication schemes are configured.
    pub fn new(base: &str, served: &[(ResourceType, Vec<Advertised>)], bearer: bool, basic: bool, oauth: bool) -> Self {
        let mut schemes = Vec::new();
        if oauth {
            schemes.push(json!({"type": "oauth2", "name": "OAuth 2.0",
                "description": "Access tokens (JWT) from the gateway's authorization server or a configured issuer (Authorization: Bearer)",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6749", "primary": !bearer}));
        }
        if bearer {
            schemes.push(json!({"type": "oauthbearertoken", "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token (Authorization: Bearer)", "primary": true}));
        }
        if basic {
            schemes.push(json!({"type": "httpbasic", "name": "HTTP Basic",
                "description": "Authentication with a username and password", "primary": !bearer && !oauth}));
        }
        let service_provider_config = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_COUNT},
            "changePassword": {"supported": served.iter().any(|(t, m)| *t == USER && m.iter().any(|a| a.attr == "password"))},
            // Sorted by the gateway, on at most [query] max_candidates entries (docs/query.md).
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": schemes,
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
        });
        let mut resource_types = Vec::new();
        let mut schemas = Vec::new();
        for (t, mapped) in served {
            let mut extensions: Vec<&str> = mapped.iter().filter_map(|a| a.schema.as_deref()).collect();
            extensions.sort();
            extensions.dedup();
            resource_types.push(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": t.name, "name": t.name, "endpoint": t.endpoint, "description": format!("{} resources", t.name),
                "schema": t.schema,
                "schemaExtensions": extensions.iter().map(|u| json!({"schema": u, "required": false})).collect::<Vec<_>>(),
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", t.name)},
            }));
            schemas.push(schema_doc(base, t.schema, t.name, mapped));
            schemas.extend(extensions.iter().map(|u| {
                let name =
                    if *u == ENTERPRISE_USER_SCHEMA { "EnterpriseUser" } else { u.rsplit(':').next().unwrap_or(u) };
                schema_doc(base, u, name, mapped)
            }));
        }
        Discovery { service_provider_config, resource_types, schemas }
    }

    pub fn resource_types_list(&self) -> Value {
        list_response(self.resource_types.clone(), self.resource_types.len(), 1)
    }

    pub fn schemas_list(&self) -> Value {
        list_response(self.schemas.clone(), self.schemas.len(), 1)
    }

    pub fn resource_type(&self, id: &str) -> Option<&Value> {
        self.resource_types.iter().find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
    }

    pub fn schema(&self, id: &str) -> Option<&Value> {
        self.schemas.iter().find(|s| s["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
    }
}

fn schema_doc(base: &str, urn: &str, name: &str, mapped: &[Advertised]) -> Value {
    let core = schema::definitions(urn).is_some_and(|_| urn != ENTERPRISE_USER_SCHEMA);
    let schema = (!core).then_some(urn);
    let mine: Vec<&Advertised> = mapped.iter().filter(|a| a.schema.as_deref() == schema).collect();
    let attributes: Vec<Value> = match schema::definitions(urn) {
        Some(defs) => defs
            .iter()
            .chain(if schema.is_none() { schema::COMMON } else { &[] })
            .filter(|d| mine.iter().any(|a| a.attr == d.name))
            .map(|d| {
                let mut v =
                    d.to_json(&|s: &AttrDef| mine.iter().any(|a| a.attr == d.name && a.sub.as_deref() == Some(s.name)));
                annotate(&mut v, &mine);
                v
            })
            .collect(),
        // A custom extension: as declared, or the strings the rules store.
        None => mine
            .iter()
            .filter(|a| a.sub.is_none())
            .map(|a| {
                a.doc.clone().unwrap_or_else(|| {
                    let mut v = schema::STRING.to_json(&|_| true);
                    v["name"] = a.attr.clone().into();
                    v["required"] = a.required.into();
                    v
                })
            })
            .collect(),
    };
    let mut doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": urn, "name": name, "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{urn}")},
    });
    if let Some(d) = description(urn) {
        doc["description"] = d.into();
    }
    doc
}

/// The core schemas' descriptions, as RFC 7643 §8.7.1 gives them.
fn description(urn: &str) -> Option<&'static str> {
    [
        (super::USER_SCHEMA, "User Account"),
        (super::GROUP_SCHEMA, "Group"),
        (super::ENTERPRISE_USER_SCHEMA, "Enterprise User"),
    ]
    .into_iter()
    .find(|(u, _)| u.eq_ignore_ascii_case(urn))
    .map(|(_, d)| d)
}

/// Marks `attr` (and its sub-attributes) required where a rule demands a value (a complex
/// attribute with a required sub-attribute is required too, as a value of it must come along),
/// and lists the canonical values of its sub-attributes.
fn annotate(attr: &mut Value, mine: &[&Advertised]) {
    let name = attr["name"].as_str().unwrap_or_default().to_owned();
    let of = |sub: Option<String>| {
        let name = name.clone();
        mine.iter().filter(move |a| a.attr == name && a.sub == sub)
    };
    let mut any_sub = false;
    for s in attr.get_mut("subAttributes").and_then(Value::as_array_mut).into_iter().flatten() {
        let sub = s["name"].as_str().map(str::to_owned);
        if of(sub.clone()).any(|a| a.required) {
            s["required"] = true.into();
            any_sub = true;
        }
        let canonical: Vec<&String> = of(sub).filter_map(|a| a.canonical.as_ref()).collect();
        if !canonical.is_empty() {
            s["canonicalValues"] = json!(canonical);
        }
    }
    if any_sub || of(None).any(|a| a.required) {
        attr["required"] = true.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(schema: Option<&str>, attr: &str, sub: Option<&str>) -> Advertised {
        Advertised { schema: schema.map(Into::into), attr: attr.into(), sub: sub.map(Into::into), ..Default::default() }
    }

    #[test]
    fn advertises_only_what_is_mapped() {
        let mapped = [
            adv(None, "userName", None),
            adv(None, "name", Some("givenName")),
            adv(None, "id", None),
            adv(Some("urn:example:acme:2.0:User"), "costCenter", None),
        ];
        let d = Discovery::new("http://h/scim/v2", &[(USER, mapped.to_vec())], true, false, false);
        let user = d.schema(USER_SCHEMA).unwrap();
        let names: Vec<&str> =
            user["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["userName", "name", "id"]);
        assert_eq!(user["attributes"][1]["subAttributes"].as_array().unwrap().len(), 1);
        let acme = d.schema("urn:example:acme:2.0:User").unwrap();
        assert_eq!(acme["attributes"][0]["name"], "costCenter");
        // RFC 7643 §8.7.1: the core schemas' descriptions; a custom one has none of ours.
        assert_eq!(user["description"], "User Account");
        assert!(acme.get("description").is_none());
        assert_eq!(d.resource_type("user").unwrap()["schemaExtensions"][0]["schema"], "urn:example:acme:2.0:User");
        assert_eq!(d.service_provider_config["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(d.schemas_list()["totalResults"], 2);
    }
}
