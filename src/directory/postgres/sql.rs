//! SQL text and its parameters, built without I/O. Identifiers come only from the
//! configuration (checked at load, quoted again here); every value a client sends becomes a
//! `$n::text` parameter, never part of the text. Filters arrive as the gateway's neutral
//! condition tree ([`LdapFilter`] over column names, as `mapping` translates SCIM filters)
//! and keep its meaning: equality and substrings ignore case, a missing value never matches,
//! `not` of a missing value does.

use crate::config::MembershipTable;
use crate::directory::LdapFilter;

/// The name a group's member condition uses in a [`LdapFilter`] (`mapping` writes member
/// conditions on the member attribute): not a SQL identifier, so no column can be taken for it.
pub const MEMBERS: &str = "@members";

/// A statement's text and its parameters, in order (`$1` is `params[0]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<String>,
}

impl Sql {
    /// Adds a parameter and returns its placeholder, typed text.
    pub fn param(&mut self, value: &str) -> String {
        self.params.push(value.to_owned());
        format!("${}::text", self.params.len())
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
}

/// `"name"`: a configured identifier, quoted (a `"` doubled, though load refuses one).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"` or `"table"`.
pub fn table(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// How a table's columns read as text: timestamps as LDAP generalized time (what the mapping
/// reads `meta` from and compares timestamps in), everything else as PostgreSQL prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// The timestamp columns (created, modified).
    pub times: Vec<String>,
    /// Groups: the membership table and the groups' id column, for conditions on members.
    pub members: Option<(MembershipTable, String)>,
}

impl Columns {
    /// The text of `column` of the row aliased `row`.
    pub fn text(&self, row: &str, column: &str) -> String {
        let c = format!("{row}.{}", ident(column));
        match self.times.iter().any(|t| t == column) {
            true => format!("to_char({c} AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS\"Z\"')"),
            false => format!("{c}::text"),
        }
    }

    /// The condition `f` on rows aliased `row`, its values added to `sql` as parameters.
    /// Never NULL: a comparison with a missing value is false (`… AND column IS NOT NULL`,
    /// not COALESCE, which would hide `lower(column)` from an index on it).
    pub fn condition(&self, row: &str, f: &LdapFilter, sql: &mut Sql) -> String {
        let join = |items: &[LdapFilter], op: &str, empty: &str, sql: &mut Sql| match items {
            [] => empty.to_owned(),
            items => {
                let parts: Vec<String> = items.iter().map(|i| self.condition(row, i, sql)).collect();
                format!("({})", parts.join(op))
            }
        };
        let lower = |c: &str| format!("lower({})", self.text(row, c));
        let held = |c: &str| format!("{row}.{} IS NOT NULL", ident(c));
        match f {
            LdapFilter::Present(c) | LdapFilter::Equal(c, _) if c == MEMBERS => self.member(row, f, sql),
            LdapFilter::And(items) => join(items, " AND ", "TRUE", sql),
            LdapFilter::Or(items) => join(items, " OR ", "FALSE", sql),
            LdapFilter::Not(inner) => format!("(NOT {})", self.condition(row, inner, sql)),
            LdapFilter::Present(c) => format!("({} IS NOT NULL)", self.text(row, c)),
            LdapFilter::Equal(c, v) => format!("({} = lower({}) AND {})", lower(c), sql.param(v), held(c)),
            LdapFilter::GreaterOrEqual(c, v) => format!("({} >= {} AND {})", self.text(row, c), sql.param(v), held(c)),
            LdapFilter::LessOrEqual(c, v) => format!("({} <= {} AND {})", self.text(row, c), sql.param(v), held(c)),
            LdapFilter::Substring { attr, initial, any, last } => {
                let mut pattern = initial.as_deref().map(like_escape).unwrap_or_default();
                pattern.push('%');
                for part in any {
                    pattern.push_str(&like_escape(part));
                    pattern.push('%');
                }
                if let Some(last) = last {
                    pattern.push_str(&like_escape(last));
                }
                let p = sql.param(&pattern);
                format!("({} LIKE lower({p}) ESCAPE '\\' AND {})", lower(attr), held(attr))
            }
            // Binary values and operator-written LDAP filters have no column form: nothing
            // in a table's mapping produces them, and matching nothing is the safe answer.
            LdapFilter::EqualBytes(..) | LdapFilter::Configured(_) => "FALSE".to_owned(),
        }
    }
}

impl Columns {
    /// `members pr` / `members eq "id"`: a row in the membership table, found through its
    /// primary key's group column; the user id compared as text, so an id that cannot be one
    /// matches nothing instead of failing.
    fn member(&self, row: &str, f: &LdapFilter, sql: &mut Sql) -> String {
        let Some((m, id)) = &self.members else { return "FALSE".into() };
        let (g, u) = (ident(&m.group_column), ident(&m.user_column));
        let user = match f {
            LdapFilter::Equal(_, v) => format!(" AND lower(m.{u}::text) = lower({})", sql.param(v)),
            _ => String::new(),
        };
        format!("EXISTS (SELECT 1 FROM {} m WHERE m.{g} = {row}.{}{user})", table(&m.table), ident(id))
    }
}

/// `f` with every comparison whose value holds NUL made false: PostgreSQL text cannot hold
/// NUL, so no row can match it, and sending it would be refused as an encoding error.
pub fn without_nul(f: &LdapFilter) -> LdapFilter {
    let nul = |v: &str| v.contains('\0');
    match f {
        LdapFilter::And(items) => LdapFilter::And(items.iter().map(without_nul).collect()),
        LdapFilter::Or(items) => LdapFilter::Or(items.iter().map(without_nul).collect()),
        LdapFilter::Not(inner) => LdapFilter::Not(Box::new(without_nul(inner))),
        LdapFilter::Equal(_, v) | LdapFilter::GreaterOrEqual(_, v) | LdapFilter::LessOrEqual(_, v) if nul(v) => {
            LdapFilter::none()
        }
        LdapFilter::Substring { initial, any, last, .. } if initial.iter().chain(any).chain(last).any(|v| nul(v)) => {
            LdapFilter::none()
        }
        f => f.clone(),
    }
}

/// `value` as a LIKE pattern matching itself: `\`, `%` and `_` escaped with `\`.
pub fn like_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `value` typed as `table_name`'s `column` is, without knowing the type: the server reads
/// the text with the column's own input function (uuid, integer, text…). A value that cannot
/// be one (`abc` for a uuid) is a data exception (SQLSTATE 22…), which callers looking a row
/// up by id take as "no such row".
pub fn typed(table_name: &str, column: &str, value: &str, sql: &mut Sql) -> String {
    let (k, v) = (sql.param(column), sql.param(value));
    format!("(json_populate_record(NULL::{}, json_build_object({k}, {v}))).{}", table(table_name), ident(column))
}

/// Where a page continues after the row whose order value was `value` and id `id`
/// (`order` the order expression, ascending with NULLs last or descending with NULLs first,
/// then the id): the rows strictly after it in that order.
pub fn after(order: &str, descending: bool, value: Option<&str>, id_col: &str, id: &str, sql: &mut Sql) -> String {
    let (cmp, id_cmp) = if descending { ("<", "<") } else { (">", ">") };
    let id_after = format!("{id_col} {id_cmp} {id}");
    match (value, descending) {
        (Some(v), false) => {
            let p = sql.param(v);
            format!("({order} {cmp} {p} OR ({order} = {p} AND {id_after}) OR {order} IS NULL)")
        }
        (Some(v), true) => {
            let p = sql.param(v);
            format!("({order} {cmp} {p} OR ({order} = {p} AND {id_after}))")
        }
        // Within the NULLs at the end (ascending) or past those at the start (descending).
        (None, false) => format!("({order} IS NULL AND {id_after})"),
        (None, true) => format!("({order} IS NOT NULL OR {id_after})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Columns {
        Columns { times: vec!["created_at".into()], members: None }
    }

    #[test]
    fn nul_matches_nothing_and_is_never_sent() {
        let f = LdapFilter::Or(vec![LdapFilter::eq("a", "x\0"), LdapFilter::Not(Box::new(LdapFilter::eq("b", "\0")))]);
        let s = render(&without_nul(&f));
        assert_eq!(s.text, "(FALSE OR (NOT FALSE))");
        assert!(s.params.is_empty());
    }

    #[test]
    fn member_conditions_read_the_membership_table() {
        let m = MembershipTable {
            table: "memberships".into(),
            group_column: "group_id".into(),
            user_column: "user_id".into(),
        };
        let cols = Columns { times: vec![], members: Some((m, "id".into())) };
        let mut sql = Sql::default();
        let text = cols.condition("r", &LdapFilter::eq(MEMBERS, "u1' OR 1=1"), &mut sql);
        assert_eq!(text, "EXISTS (SELECT 1 FROM \"memberships\" m WHERE m.\"group_id\" = r.\"id\" AND lower(m.\"user_id\"::text) = lower($1::text))");
        assert_eq!(sql.params, ["u1' OR 1=1"]);
    }

    fn render(f: &LdapFilter) -> Sql {
        let mut sql = Sql::default();
        let text = cols().condition("t", f, &mut sql);
        sql.text = text;
        sql
    }

    #[test]
    fn comparisons_ignore_case_and_bind_values() {
        let s = render(&LdapFilter::eq("user_name", "Bob"));
        assert_eq!(s.text, "(lower(t.\"user_name\"::text) = lower($1::text) AND t.\"user_name\" IS NOT NULL)");
        assert_eq!(s.params, ["Bob"]);
        let s = render(&LdapFilter::And(vec![LdapFilter::present("email"), LdapFilter::eq("a", "1")]));
        assert_eq!(
            s.text,
            "((t.\"email\"::text IS NOT NULL) AND (lower(t.\"a\"::text) = lower($1::text) AND t.\"a\" IS NOT NULL))"
        );
        assert_eq!(render(&LdapFilter::none()).text, "FALSE");
        assert_eq!(render(&LdapFilter::And(vec![])).text, "TRUE");
    }

    #[test]
    fn substrings_escape_like_wildcards() {
        let f = LdapFilter::Substring {
            attr: "email".into(),
            initial: Some("a%_\\".into()),
            any: vec!["x".into()],
            last: Some("_z".into()),
        };
        let s = render(&f);
        assert_eq!(s.params, ["a\\%\\_\\\\%x%\\_z"]);
        assert!(s.text.contains("LIKE lower($1::text) ESCAPE '\\'"), "{}", s.text);
    }

    #[test]
    fn timestamps_compare_as_generalized_time() {
        let s = render(&LdapFilter::GreaterOrEqual("created_at".into(), "20260101000000Z".into()));
        assert!(s.text.starts_with("(to_char(t.\"created_at\" AT TIME ZONE 'UTC'"), "{}", s.text);
    }

    #[test]
    fn hostile_values_never_reach_the_text() {
        for hostile in ["'; DROP TABLE users; --", "\" OR 1=1 --", "$1", "\\'", "%", "\0", "é'\u{202e}"] {
            let f = LdapFilter::Or(vec![
                LdapFilter::eq("user_name", hostile),
                LdapFilter::Not(Box::new(LdapFilter::Substring {
                    attr: "email".into(),
                    initial: Some(hostile.into()),
                    any: vec![hostile.into()],
                    last: None,
                })),
            ]);
            let s = render(&f);
            let shape = render(&LdapFilter::Or(vec![
                LdapFilter::eq("user_name", "x"),
                LdapFilter::Not(Box::new(LdapFilter::Substring {
                    attr: "email".into(),
                    initial: Some("x".into()),
                    any: vec!["x".into()],
                    last: None,
                })),
            ]));
            assert_eq!(s.text, shape.text, "{hostile:?} changed the statement");
            assert_eq!(s.params[0], hostile);
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(table("app.users"), "\"app\".\"users\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
