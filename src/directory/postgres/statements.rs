//! The statements of the PostgreSQL store, built without I/O from a [`Table`] and the
//! request's values: what the store runs and what `explain` prints are the same text.

use serde_json::{Map, Value};

use super::sql::{self, ident, table, typed, Sql};
use super::Table;
use crate::config::MembershipTable;
use crate::directory::records::{MemberChange, PageQuery, Set};

/// `SELECT` list of `t`'s columns as text, in `t.columns` order, rows aliased `r`.
pub fn select_list(t: &Table) -> String {
    t.columns.iter().map(|c| t.text.text("r", c)).collect::<Vec<_>>().join(", ")
}

/// `{"column": "value", …}` for json_populate_record: the server reads each value with the
/// column's own type.
fn record(set: &Set) -> String {
    let map: Map<String, Value> =
        set.iter().map(|(c, v)| (c.clone(), v.as_ref().map_or(Value::Null, |v| Value::String(v.clone())))).collect();
    Value::Object(map).to_string()
}

/// The count and the page statement of `q` on `t`.
pub fn page_sql(t: &Table, q: &PageQuery) -> (Sql, Sql) {
    let mut list = Sql::default();
    let cond = t.text.condition("r", &sql::without_nul(&q.filter), &mut list);
    let count =
        Sql { text: format!("SELECT count(*) FROM {} r WHERE {cond}", table(&t.name)), params: list.params.clone() };
    let id = format!("r.{}", ident(&t.id));
    // Code point order, whatever the database's collation: the same as the gateway's own
    // sort, and the same on every server a page may be read from.
    let order =
        q.order.as_ref().map(|o| (format!("(lower({}) COLLATE \"C\")", t.text.text("r", &o.column)), o.descending));
    let mut conds = vec![cond];
    if let Some(after) = &q.after {
        let key = typed(&t.name, &t.id, &after.id, &mut list);
        conds.push(match &order {
            Some((expr, desc)) => sql::after(expr, *desc, after.value.as_deref(), &id, &key, &mut list),
            None => format!("{id} > {key}"),
        });
    }
    let (key_col, order_by) = match &order {
        Some((expr, false)) => (expr.clone(), format!("{expr} ASC NULLS LAST, {id} ASC")),
        Some((expr, true)) => (expr.clone(), format!("{expr} DESC NULLS FIRST, {id} DESC")),
        None => ("NULL::text".to_owned(), id.clone()),
    };
    let skip = if q.after.is_some() { 0 } else { q.offset };
    list.text = format!(
        "SELECT {}, {key_col} FROM {} r WHERE {} ORDER BY {order_by} LIMIT {} OFFSET {skip}",
        select_list(t),
        table(&t.name),
        conds.join(" AND "),
        q.limit
    );
    (count, list)
}

/// `[{"group": g, "user": u}, …]` for json_populate_recordset over the membership table.
fn pairs(m: &MembershipTable, group: &str, users: &[String]) -> String {
    let rows: Vec<Value> =
        users.iter().map(|u| serde_json::json!({ m.group_column.clone(): group, m.user_column.clone(): u })).collect();
    Value::Array(rows).to_string()
}

/// `INSERT … RETURNING` the row, the values read by the server with each column's type.
pub fn insert_sql(t: &Table, values: &Set) -> Sql {
    let mut sql = Sql::default();
    sql.text = match values.is_empty() {
        true => format!("INSERT INTO {} AS r DEFAULT VALUES RETURNING {}", table(&t.name), select_list(t)),
        false => {
            let cols: Vec<String> = values.iter().map(|(c, _)| ident(c)).collect();
            let from: Vec<String> = values.iter().map(|(c, _)| format!("x.{}", ident(c))).collect();
            let p = sql.param(&record(values));
            format!(
                "INSERT INTO {0} AS r ({1}) SELECT {2} FROM json_populate_record(NULL::{0}, {p}::json) x RETURNING {3}",
                table(&t.name),
                cols.join(", "),
                from.join(", "),
                select_list(t)
            )
        }
    };
    sql
}

/// `UPDATE … RETURNING` the row: the columns in `set`, the modified column to now(); the
/// row's other columns as they are (the JSON is applied over the row itself).
pub fn update_sql(t: &Table, id: &str, version: Option<&str>, set: &Set) -> Sql {
    let mut sql = Sql::default();
    let mut key = typed(&t.name, &t.id, id, &mut sql);
    if let Some(v) = version {
        let p = sql.param(v);
        key = format!("{key} AND {} = {p}", t.text.text("r", &t.version));
    }
    let mut cols: Vec<String> = set.iter().map(|(c, _)| ident(c)).collect();
    let mut from: Vec<String> = set.iter().map(|(c, _)| format!("x.{}", ident(c))).collect();
    if let Some(m) = t.modified.as_ref().filter(|m| !set.iter().any(|(c, _)| c == *m)) {
        cols.push(ident(m));
        from.push("now()".into());
    }
    if cols.is_empty() {
        // Nothing but members: the row is still written, so its version moves.
        cols.push(ident(&t.id));
        from.push(format!("x.{}", ident(&t.id)));
    }
    let p = sql.param(&record(set));
    sql.text = format!(
        "UPDATE {0} AS r SET ({1}) = (SELECT {2} FROM json_populate_record(r, {p}::json) x) WHERE r.{3} = {key} RETURNING {4}",
        table(&t.name),
        cols.join(", "),
        from.join(", "),
        ident(&t.id),
        select_list(t)
    );
    sql
}

/// The statements that change a group's member rows, in order: all out (a replacement),
/// the removed out, the added in (a member already there stays, once).
pub fn member_sqls(m: &MembershipTable, group: &str, change: &MemberChange) -> Vec<Sql> {
    let (g, u) = (ident(&m.group_column), ident(&m.user_column));
    let mut out = Vec::new();
    if change.replace {
        let mut s = Sql::default();
        let key = typed(&m.table, &m.group_column, group, &mut s);
        s.text = format!("DELETE FROM {} WHERE {g} = {key}", table(&m.table));
        out.push(s);
    }
    let mut rows = |text: String, users: &[String]| {
        if !users.is_empty() {
            out.push(Sql { text, params: vec![pairs(m, group, users)] });
        }
    };
    rows(
        format!(
            "DELETE FROM {0} d USING json_populate_recordset(NULL::{0}, $1::text::json) x WHERE d.{g} = x.{g} AND d.{u} = x.{u}",
            table(&m.table)
        ),
        &change.remove,
    );
    rows(
        format!(
            "INSERT INTO {0} ({g}, {u}) SELECT DISTINCT x.{g}, x.{u} FROM json_populate_recordset(NULL::{0}, $1::text::json) x ON CONFLICT DO NOTHING",
            table(&m.table)
        ),
        &change.add,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::postgres::sql::Columns;
    use crate::directory::records::{Key, Order};
    use crate::directory::LdapFilter;

    fn users() -> Table {
        Table {
            name: "users".into(),
            id: "id".into(),
            columns: vec!["id".into(), "user_name".into(), "created_at".into(), "xmin".into()],
            modified: Some("updated_at".into()),
            version: "xmin".into(),
            password: None,
            text: Columns { times: vec!["created_at".into()], members: None },
        }
    }

    #[test]
    fn a_late_page_continues_from_its_key() {
        let q = PageQuery {
            filter: LdapFilter::eq("user_name", "x"),
            order: Some(Order { column: "user_name".into(), descending: false }),
            after: Some(Key { value: Some("bob".into()), id: "0c5b…".into() }),
            offset: 5000,
            limit: 100,
        };
        let (count, list) = page_sql(&users(), &q);
        assert_eq!(count.params, ["x"]);
        assert!(count.text.starts_with("SELECT count(*) FROM \"users\" r WHERE (lower("), "{}", count.text);
        assert!(list.text.ends_with("LIMIT 100 OFFSET 0"), "keyset, not OFFSET: {}", list.text);
        assert!(
            list.text.contains("ORDER BY (lower(r.\"user_name\"::text) COLLATE \"C\") ASC NULLS LAST, r.\"id\" ASC"),
            "{}",
            list.text
        );
        assert_eq!(list.params, ["x", "id", "0c5b…", "bob"]);
        let first = PageQuery { after: None, offset: 200, ..q };
        assert!(page_sql(&users(), &first).1.text.ends_with("LIMIT 100 OFFSET 200"));
    }

    #[test]
    fn if_match_is_decided_in_the_update_itself() {
        let set = vec![("user_name".to_owned(), Some("x'; --".to_owned()))];
        let s = update_sql(&users(), "id1", Some("1234"), &set);
        assert!(s.text.contains("AND r.\"xmin\"::text = $3::text"), "{}", s.text);
        assert!(s.text.contains("\"updated_at\") = (SELECT x.\"user_name\", now()"), "{}", s.text);
        assert_eq!(s.params, ["id", "id1", "1234", r#"{"user_name":"x'; --"}"#]);
        assert!(!update_sql(&users(), "id1", None, &set).text.contains("xmin\"::text ="));
    }

    #[test]
    fn members_travel_as_one_json_parameter() {
        let m = MembershipTable {
            table: "memberships".into(),
            group_column: "group_id".into(),
            user_column: "user_id".into(),
        };
        let json = pairs(&m, "g1", &["u1\"'); drop".into()]);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["user_id"], "u1\"'); drop");
        assert_eq!(record(&vec![("a".into(), None), ("b".into(), Some("1".into()))]), r#"{"a":null,"b":"1"}"#);
    }
}
