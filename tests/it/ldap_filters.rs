//! No filter injection. Every LDAP filter the gateway builds from a SCIM filter is a valid
//! RFC 4515 filter (checked by the small parser below, independent of the gateway's printer)
//! whose shape does not depend on the client's values, and each client value appears exactly
//! once, as an assertion value. Then the same hostile values through a running gateway.

use crate::common;

use common::filter_gen::{self, Template};
use common::gateway::{okta_user, TestGateway};
use common::{users_ldif, Slapd};
use proptest::prelude::*;
use scim_gateway::config::Loaded;
use scim_gateway::mapping::UserMapping;
use scim_gateway::scim::filter::parse_filter;

/// An RFC 4515 filter, with assertion values unescaped to bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ldap {
    And(Vec<Ldap>),
    Or(Vec<Ldap>),
    Not(Box<Ldap>),
    /// attribute, `=` / `>=` / `<=` / `~=`, value
    Item(String, &'static str, Vec<u8>),
    Present(String),
    /// attribute, initial, any, final
    Substring(String, Option<Vec<u8>>, Vec<Vec<u8>>, Option<Vec<u8>>),
}

/// `filter = LPAREN filtercomp RPAREN` (RFC 4515 §3), whole input.
fn parse_ldap(text: &str) -> Result<Ldap, String> {
    let mut p = Rfc4515 { s: text.as_bytes(), i: 0 };
    let f = p.filter()?;
    if p.i != p.s.len() {
        return Err(format!("trailing input at {}", p.i));
    }
    Ok(f)
}

struct Rfc4515<'a> {
    s: &'a [u8],
    i: usize,
}

impl Rfc4515<'_> {
    fn eat(&mut self, b: u8) -> Result<(), String> {
        match self.s.get(self.i) {
            Some(&c) if c == b => {
                self.i += 1;
                Ok(())
            }
            other => Err(format!("expected {:?} at {}, found {other:?}", b as char, self.i)),
        }
    }

    fn filter(&mut self) -> Result<Ldap, String> {
        self.eat(b'(')?;
        let f = match self.s.get(self.i) {
            Some(b'&') => {
                self.i += 1;
                Ldap::And(self.list()?)
            }
            Some(b'|') => {
                self.i += 1;
                Ldap::Or(self.list()?)
            }
            Some(b'!') => {
                self.i += 1;
                Ldap::Not(Box::new(self.filter()?))
            }
            _ => self.item()?,
        };
        self.eat(b')')?;
        Ok(f)
    }

    /// `filterlist = 1*filter`
    fn list(&mut self) -> Result<Vec<Ldap>, String> {
        let mut items = vec![self.filter()?];
        while self.s.get(self.i) == Some(&b'(') {
            items.push(self.filter()?);
        }
        Ok(items)
    }

    /// `attr = descr / numericoid`, `descr = keystring = leadkeychar *keychar` (options aside).
    fn attr(&mut self) -> Result<String, String> {
        let start = self.i;
        match self.s.get(self.i) {
            Some(c) if c.is_ascii_alphabetic() => {}
            other => return Err(format!("attribute expected at {start}, found {other:?}")),
        }
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-') {
            self.i += 1;
        }
        Ok(String::from_utf8(self.s[start..self.i].to_vec()).unwrap())
    }

    fn item(&mut self) -> Result<Ldap, String> {
        let attr = self.attr()?;
        for (op, text) in [(">=", &b">="[..]), ("<=", b"<="), ("~=", b"~=")] {
            if self.s[self.i..].starts_with(text) {
                self.i += 2;
                return Ok(Ldap::Item(attr, op, self.value()?));
            }
        }
        self.eat(b'=')?;
        if self.s[self.i..].starts_with(b"*)") {
            self.i += 1;
            return Ok(Ldap::Present(attr));
        }
        let mut parts = vec![self.value()?];
        while self.s.get(self.i) == Some(&b'*') {
            self.i += 1;
            parts.push(self.value()?);
        }
        if parts.len() == 1 {
            return Ok(Ldap::Item(attr, "=", parts.remove(0)));
        }
        let last = parts.pop().filter(|p| !p.is_empty());
        let first = Some(parts.remove(0)).filter(|p| !p.is_empty());
        if parts.iter().any(Vec::is_empty) {
            return Err(format!("empty substring part before {}", self.i));
        }
        Ok(Ldap::Substring(attr, first, parts, last))
    }

    /// `valueencoding = 0*(normal / escaped)`: anything but NUL ( ) * \, or `\` HEX HEX.
    fn value(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None | Some(b'(' | b')' | b'*') => return Ok(out),
                Some(0) => return Err(format!("unescaped NUL at {}", self.i)),
                Some(b'\\') => {
                    let hex = self.s.get(self.i + 1..self.i + 3).ok_or("short escape")?;
                    let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                    out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape at {}", self.i))?);
                    self.i += 3;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// The tree with every assertion value replaced by a marker, and the values in order.
fn shape(f: &Ldap, values: &mut Vec<Vec<u8>>) -> Ldap {
    fn mark(values: &mut Vec<Vec<u8>>, v: &[u8]) -> Vec<u8> {
        values.push(v.to_vec());
        b"#".to_vec()
    }
    match f {
        Ldap::And(items) => Ldap::And(items.iter().map(|i| shape(i, values)).collect()),
        Ldap::Or(items) => Ldap::Or(items.iter().map(|i| shape(i, values)).collect()),
        Ldap::Not(i) => Ldap::Not(Box::new(shape(i, values))),
        Ldap::Item(a, op, v) => Ldap::Item(a.clone(), op, mark(values, v)),
        Ldap::Present(a) => Ldap::Present(a.clone()),
        Ldap::Substring(a, first, any, last) => Ldap::Substring(
            a.clone(),
            first.as_ref().map(|v| mark(values, v)),
            any.iter().map(|v| mark(values, v)).collect(),
            last.as_ref().map(|v| mark(values, v)),
        ),
    }
}

fn users() -> UserMapping {
    let loaded = Loaded::parse("gateway.toml", include_str!("../../gateway.toml").to_owned()).unwrap();
    UserMapping::compile(&loaded.config.users).unwrap()
}

/// Values an attacker would try, and bytes LDAP treats specially.
const HOSTILE: &[&str] = &[
    "*)(uid=*",
    "*",
    "\\00",
    "\0",
    ")(|(objectClass=*)",
    "*)(|(objectClass=*))(cn=",
    "\\2a",
    "\\",
    "((((",
    "))))",
    "a\u{0}b",
    "\u{fffd}\u{7f}\u{1}",
    "é\u{202e}ü",
    "x\\)(y",
];

/// Mapped paths of the shipped configuration, and how they compare.
const PATHS: &[&str] = &[
    "userName",
    "externalId",
    "name.givenName",
    "name.familyName",
    "displayName",
    "emails",
    "emails.value",
    "phoneNumbers.value",
    "title",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

fn template() -> impl Strategy<Value = Template> {
    filter_gen::template(PATHS.len(), OPS.len())
}

fn hostile_value() -> impl Strategy<Value = String> {
    filter_gen::hostile_value(HOSTILE)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn values_never_change_the_filter(t in template(), values in proptest::collection::vec(hostile_value(), 4)) {
        let mapping = users();
        let hostile_text = t.render(PATHS, OPS, &|k| values[k].clone());
        let benign_text = t.render(PATHS, OPS, &|k| format!("v{k}"));
        let hostile = mapping.ldap_filter(&parse_filter(&hostile_text).unwrap()).unwrap().filter.to_string();
        let benign = mapping.ldap_filter(&parse_filter(&benign_text).unwrap()).unwrap().filter.to_string();
        let parsed = parse_ldap(&hostile).map_err(|e| TestCaseError::fail(format!("{hostile}: {e}")))?;
        prop_assert!(ldap3::parse_filter(&hostile).is_ok(), "{}", hostile);
        let (mut got, mut slots) = (Vec::new(), Vec::new());
        let benign_tree = parse_ldap(&benign).unwrap();
        prop_assert_eq!(shape(&parsed, &mut got), shape(&benign_tree, &mut slots), "{} vs {}", hostile, benign);
        // Where the placeholder `vK` went, value K went, byte for byte; constants stay.
        for (value, slot) in got.iter().zip(&slots) {
            let slot = String::from_utf8(slot.clone()).unwrap();
            match slot.strip_prefix('v').and_then(|k| k.parse::<usize>().ok()) {
                Some(k) => prop_assert_eq!(value, values[k].as_bytes()),
                None => prop_assert_eq!(value, slot.as_bytes()),
            }
        }
    }
}

#[test]
fn the_parser_checks_what_it_should() {
    assert!(parse_ldap("(&(uid=a\\2a)(|(cn=*x*y*)(!(sn>=2))))").is_ok());
    for bad in ["uid=a", "(uid=a", "(uid=a*)(cn=b)", "(uid=a\0)", "(=a)", "(uid=\\zz)", "(&)", "(uid=a**b)"] {
        assert!(parse_ldap(bad).is_err(), "{bad:?}");
    }
}

/// Hostile values through the gateway: a search with them finds exactly what holds them.
#[tokio::test]
async fn hostile_filters_against_slapd() {
    let slapd = Slapd::start_seeded(&users_ldif(0..200));
    let gw = TestGateway::start(&slapd).await;
    let mut trap = okta_user("trap@example.com", None);
    trap["title"] = "*)(uid=*".into();
    assert_eq!(gw.post("/Users", &trap).await.status, 201);
    for value in HOSTILE {
        let json = serde_json::to_string(value).unwrap();
        for (filter, expected) in [
            (format!("userName eq {json}"), 0),
            (format!("title co {json}"), usize::from(*value == "*)(uid=*" || *value == "*")),
            (format!("userName gt {json} and userName eq \"user5\""), usize::from("user5" > *value)),
            (format!("not (externalId eq {json}) and userName sw \"user1\""), 111),
        ] {
            assert_eq!(gw.total(&filter).await as usize, expected, "{filter}");
        }
    }
    gw.stop().await;
}
