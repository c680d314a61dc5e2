//! Generated SCIM filters whose values are slots, for the property tests that prove client
//! values never change the query a store runs (tests/ldap_filters.rs for LDAP filters,
//! tests/it/postgres/filters.rs for SQL). The paths and operators are the caller's: each store
//! maps its own.

use proptest::prelude::*;

/// A SCIM filter whose values are slots `{k}`, filled with hostile text or placeholders.
/// `Compare(path, op, slot)` and `Present(path)` index the caller's paths and operators.
#[derive(Debug, Clone)]
pub enum Template {
    Compare(usize, usize, usize),
    Present(usize),
    WorkEmail(usize, usize),
    And(Box<Template>, Box<Template>),
    Or(Box<Template>, Box<Template>),
    Not(Box<Template>),
}

impl Template {
    /// The filter text, with `paths` and `ops` for the indexes and `value(k)` in slot k (as a
    /// JSON string, SCIM's string literal).
    pub fn render(&self, paths: &[&str], ops: &[&str], value: &dyn Fn(usize) -> String) -> String {
        let json = |k| serde_json::to_string(&value(k)).unwrap();
        match self {
            Template::Compare(p, o, k) => format!("{} {} {}", paths[*p], ops[*o], json(*k)),
            Template::Present(p) => format!("{} pr", paths[*p]),
            Template::WorkEmail(o, k) => format!("emails[type eq \"work\" and value {} {}]", ops[*o], json(*k)),
            Template::And(a, b) => format!("({}) and ({})", a.render(paths, ops, value), b.render(paths, ops, value)),
            Template::Or(a, b) => format!("({}) or ({})", a.render(paths, ops, value), b.render(paths, ops, value)),
            Template::Not(a) => format!("not ({})", a.render(paths, ops, value)),
        }
    }
}

/// Templates over `paths` paths and `ops` operators, four slots, nested up to four deep.
pub fn template(paths: usize, ops: usize) -> impl Strategy<Value = Template> {
    let leaf = prop_oneof![
        (0..paths, 0..ops, 0..4usize).prop_map(|(p, o, k)| Template::Compare(p, o, k)),
        (0..paths).prop_map(Template::Present),
        (0..ops, 0..4usize).prop_map(|(o, k)| Template::WorkEmail(o, k)),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Template::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Template::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Template::Not(Box::new(a))),
        ]
    })
}

/// One of `hostile`, any text (NUL and control characters included), or a short run of the
/// characters filter languages treat specially; never empty (`co ""` is `pr`).
pub fn hostile_value(hostile: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(hostile).prop_map(str::to_owned),
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        "[()*\\\\\\x00a-z=|&!'%_;\"-]{1,12}",
    ]
}
