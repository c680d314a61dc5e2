//! The PostgreSQL store: [`Records`] over an application's own tables. Each call is one
//! statement or one transaction, so a write lands whole or not at all — a create with its
//! members, a PATCH of several operations, a group PUT. SQL is built by [`sql`] from the
//! configured names only; values are parameters.

mod error;
mod pool;
pub mod sql;

use std::time::Duration;

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::{tokio_postgres, GenericClient, Pool};
use serde_json::{Map, Value};

use self::error::{db_error, pool_error};
use self::sql::{ident, table, typed, Columns, Sql};
use super::records::{Catalog, Column, Key, Kind, MemberChange, Page, PageQuery, Records, Set, Write};
use super::{DirectoryError, Entry, LdapFilter, Result};
use crate::config::{DirectoryConfig, MembershipTable};

/// One table as the store reads and writes it.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// The primary key the database generates: the SCIM id.
    pub id: String,
    /// Every column a read returns (id and meta included).
    pub columns: Vec<String>,
    /// Set to now() by every update, when configured.
    pub modified: Option<String>,
    /// Where a password's hash goes (users), for `check`.
    pub password: Option<String>,
    pub text: Columns,
}

/// The tables of one target.
#[derive(Debug, Clone)]
pub struct Tables {
    pub users: Table,
    pub groups: Option<Table>,
    pub membership: Option<MembershipTable>,
}

pub struct PgStore {
    pool: Pool,
    tables: Tables,
    /// A statement that gets no answer in this long (a partitioned network) is given up:
    /// the server's statement_timeout cannot fire when nothing reaches it.
    deadline: Duration,
}

impl PgStore {
    /// Prepares the pool; nothing connects until the first request (a database down at
    /// start is a 503 and `/readyz` failing, not a gateway that will not start).
    pub fn new(cfg: &DirectoryConfig, tables: Tables) -> std::result::Result<PgStore, String> {
        let deadline = cfg.operation_timeout() + cfg.connect_timeout() + Duration::from_secs(1);
        Ok(PgStore { pool: pool::pool(cfg)?, tables, deadline })
    }

    fn table(&self, kind: Kind) -> Result<&Table> {
        match kind {
            Kind::Users => Ok(&self.tables.users),
            Kind::Groups => self.tables.groups.as_ref().ok_or_else(|| unsupported("no [groups] table")),
        }
    }

    fn membership(&self) -> Result<(&Table, &MembershipTable)> {
        let groups = self.table(Kind::Groups)?;
        Ok((groups, self.tables.membership.as_ref().ok_or_else(|| unsupported("no membership table"))?))
    }

    /// The membership table, unless there is nothing to change in it.
    fn membership_for(&self, nothing: bool) -> Result<Option<&MembershipTable>> {
        match nothing {
            true => Ok(None),
            false => self.membership().map(|(_, m)| Some(m)),
        }
    }

    /// The statements of a delete, in order: the member rows (whether or not the schema
    /// cascades), then the row, whose count says whether it existed.
    fn delete_sqls(&self, kind: Kind, id: &str) -> Result<Vec<Sql>> {
        let t = self.table(kind)?;
        let mut out = Vec::new();
        if let Some(m) = &self.tables.membership {
            let column = if kind == Kind::Users { &m.user_column } else { &m.group_column };
            let mut s = Sql::default();
            let key = typed(&m.table, column, id, &mut s);
            s.text = format!("DELETE FROM {} WHERE {} = {key}", table(&m.table), ident(column));
            out.push(s);
        }
        let mut sql = Sql::default();
        let key = typed(&t.name, &t.id, id, &mut sql);
        sql.text = format!("DELETE FROM {} AS r WHERE r.{} = {key}", table(&t.name), ident(&t.id));
        out.push(sql);
        Ok(out)
    }

    /// The statements a create runs, in one transaction (`explain`): the INSERT, then the
    /// members of a group, whose id the database generates (`new_id` stands for it).
    fn create_sqls(&self, kind: Kind, values: &Set, members: &[String], new_id: &str) -> Result<Vec<Sql>> {
        let mut out = vec![insert_sql(self.table(kind)?, values)];
        if let Some(m) = self.membership_for(members.is_empty())? {
            out.extend(member_sqls(m, new_id, &MemberChange { add: members.to_vec(), ..MemberChange::default() }));
        }
        Ok(out)
    }

    /// The statements an update runs, in one transaction (`explain`).
    fn update_sqls(&self, kind: Kind, id: &str, set: &Set, members: &MemberChange) -> Result<Vec<Sql>> {
        let mut out = vec![update_sql(self.table(kind)?, id, set)];
        if let Some(m) = self.membership_for(members.is_empty())? {
            out.extend(member_sqls(m, id, members));
        }
        Ok(out)
    }

    /// A parameter as `explain` prints it: a row's JSON with the password column's value
    /// (a hash of the password) replaced.
    fn shown(&self, param: &str) -> String {
        let Some(column) = self.tables.users.password.as_deref() else { return format!("{param:?}") };
        match serde_json::from_str::<Value>(param) {
            Ok(Value::Object(mut row)) if row.contains_key(column) => {
                row.insert(column.to_owned(), Value::String("(a password hash, not shown)".into()));
                Value::Object(row).to_string()
            }
            _ => format!("{param:?}"),
        }
    }

    /// Runs `work` on a pooled connection within the deadline.
    async fn with<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> std::result::Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        let run = async {
            let mut client = self.pool.get().await.map_err(pool_error)?;
            work(&mut client).await.map_err(db_error)
        };
        match tokio::time::timeout(self.deadline, run).await {
            Ok(done) => done,
            Err(_) => Err(DirectoryError::Unavailable("the database did not answer in time".into())),
        }
    }
}

/// `SELECT` list of `t`'s columns as text, in `t.columns` order, rows aliased `r`.
fn select_list(t: &Table) -> String {
    t.columns.iter().map(|c| t.text.text("r", c)).collect::<Vec<_>>().join(", ")
}

/// The row as an [`Entry`] named by its id (the first `t.columns.len()` fields).
fn entry(t: &Table, row: &tokio_postgres::Row) -> Entry {
    let mut e = Entry::default();
    for (i, c) in t.columns.iter().enumerate() {
        if let Some(v) = row.get::<_, Option<String>>(i) {
            if c == &t.id {
                e.dn = v.clone();
            }
            e.insert(c, vec![v]);
        }
    }
    e
}

fn params(sql: &Sql) -> Vec<&(dyn ToSql + Sync)> {
    sql.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// `{"column": "value", …}` for json_populate_record: the server reads each value with the
/// column's own type.
fn record(set: &Set) -> String {
    let map: Map<String, Value> =
        set.iter().map(|(c, v)| (c.clone(), v.as_ref().map_or(Value::Null, |v| Value::String(v.clone())))).collect();
    Value::Object(map).to_string()
}

fn unsupported(what: &str) -> DirectoryError {
    DirectoryError::Unsupported(format!("this target has {what}"))
}

/// Not-found for a lookup whose id the column cannot hold (SQLSTATE 22…, e.g. `abc` as uuid).
fn missing_when_invalid(e: DirectoryError) -> DirectoryError {
    match e {
        DirectoryError::Rejected { code: error::INVALID_SYNTAX, .. } => DirectoryError::NoSuchEntry,
        e => e,
    }
}

#[async_trait::async_trait]
impl Records for PgStore {
    async fn get(&self, kind: Kind, id: &str) -> Result<Entry> {
        let t = self.table(kind)?;
        let mut sql = Sql::default();
        let key = typed(&t.name, &t.id, id, &mut sql);
        sql.text = format!("SELECT {} FROM {} r WHERE r.{} = {key}", select_list(t), table(&t.name), ident(&t.id));
        let row =
            self.with(async |c| c.query_opt(&sql.text, &params(&sql)).await).await.map_err(missing_when_invalid)?;
        row.map(|r| entry(t, &r)).ok_or(DirectoryError::NoSuchEntry)
    }

    async fn find(&self, kind: Kind, filter: &LdapFilter, max: usize) -> Result<Option<Vec<Entry>>> {
        let t = self.table(kind)?;
        let mut sql = Sql::default();
        let cond = t.text.condition("r", &sql::without_nul(filter), &mut sql);
        sql.text = format!("SELECT {} FROM {} r WHERE {cond} LIMIT {}", select_list(t), table(&t.name), max + 1);
        let rows = self.with(async |c| c.query(&sql.text, &params(&sql)).await).await?;
        Ok((rows.len() <= max).then(|| rows.iter().map(|r| entry(t, r)).collect()))
    }

    async fn page(&self, kind: Kind, q: &PageQuery) -> Result<Page> {
        let t = self.table(kind)?;
        let (count, list) = page_sql(t, q);
        let n = t.columns.len();
        let (total, rows) = self
            .with(async |c| {
                // One snapshot: the total and the rows agree.
                let tx = c
                    .build_transaction()
                    .read_only(true)
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .start()
                    .await?;
                let total: i64 = tx.query_one(&count.text, &params(&count)).await?.get(0);
                let rows = tx.query(&list.text, &params(&list)).await?;
                tx.commit().await?;
                Ok((total, rows))
            })
            .await?;
        let last = rows.last().map(|r| Key {
            value: r.get::<_, Option<String>>(n),
            id: r.get::<_, Option<String>>(t.columns.iter().position(|c| c == &t.id).unwrap_or(0)).unwrap_or_default(),
        });
        Ok(Page { total: usize::try_from(total).unwrap_or(0), rows: rows.iter().map(|r| entry(t, r)).collect(), last })
    }

    async fn create(&self, kind: Kind, values: &Set, members: &[String]) -> Result<Entry> {
        let t = self.table(kind)?;
        let insert = insert_sql(t, values);
        let membership = self.membership_for(members.is_empty())?;
        let add = MemberChange { add: members.to_vec(), ..MemberChange::default() };
        self.with(async |c| {
            let tx = c.transaction().await?;
            let created = entry(t, &tx.query_one(&insert.text, &params(&insert)).await?);
            if let Some(m) = membership {
                for s in member_sqls(m, &created.dn, &add) {
                    tx.execute(&s.text, &params(&s)).await?;
                }
            }
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    async fn update(&self, kind: Kind, id: &str, set: &Set, members: &MemberChange) -> Result<Entry> {
        let t = self.table(kind)?;
        let update = update_sql(t, id, set);
        let changes = match self.membership_for(members.is_empty())? {
            Some(m) => member_sqls(m, id, members),
            None => Vec::new(),
        };
        let updated = self
            .with(async |c| {
                let tx = c.transaction().await?;
                let Some(row) = tx.query_opt(&update.text, &params(&update)).await? else { return Ok(None) };
                for s in &changes {
                    tx.execute(&s.text, &params(s)).await?;
                }
                tx.commit().await?;
                Ok(Some(entry(t, &row)))
            })
            .await
            .map_err(missing_when_invalid)?;
        updated.ok_or(DirectoryError::NoSuchEntry)
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        let statements = self.delete_sqls(kind, id)?;
        let deleted = self
            .with(async |c| {
                let tx = c.transaction().await?;
                let mut n = 0;
                for s in &statements {
                    n = tx.execute(&s.text, &params(s)).await?;
                }
                tx.commit().await?;
                Ok(n)
            })
            .await
            .map_err(missing_when_invalid)?;
        match deleted {
            0 => Err(DirectoryError::NoSuchEntry),
            _ => Ok(()),
        }
    }

    async fn members(&self, group_id: &str, max: usize) -> Result<Vec<Entry>> {
        let (_, m) = self.membership()?;
        let u = &self.tables.users;
        let mut sql = Sql::default();
        let key = typed(&m.table, &m.group_column, group_id, &mut sql);
        sql.text = format!(
            "SELECT {} FROM {} r JOIN {} m ON m.{} = r.{} WHERE m.{} = {key} ORDER BY r.{} LIMIT {max}",
            select_list(u),
            table(&u.name),
            table(&m.table),
            ident(&m.user_column),
            ident(&u.id),
            ident(&m.group_column),
            ident(&u.id),
        );
        let rows = self.with(async |c| c.query(&sql.text, &params(&sql)).await).await.map_err(missing_when_invalid)?;
        Ok(rows.iter().map(|r| entry(u, r)).collect())
    }

    async fn groups_of(&self, user_ids: &[String]) -> Result<Vec<(String, Entry)>> {
        let (g, m) = self.membership()?;
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        let ids: Vec<Value> = user_ids.iter().map(|id| serde_json::json!({ m.user_column.clone(): id })).collect();
        let p = sql.param(&Value::Array(ids).to_string());
        sql.text = format!(
            "SELECT {0}, m.{1}::text FROM {2} r JOIN {3} m ON m.{4} = r.{5} \
             WHERE m.{1} IN (SELECT x.{1} FROM json_populate_recordset(NULL::{3}, {p}::json) x) ORDER BY r.{5}",
            select_list(g),
            ident(&m.user_column),
            table(&g.name),
            table(&m.table),
            ident(&m.group_column),
            ident(&g.id),
        );
        let n = g.columns.len();
        let rows = self.with(async |c| c.query(&sql.text, &params(&sql)).await).await?;
        Ok(rows.iter().map(|r| (r.get::<_, Option<String>>(n).unwrap_or_default(), entry(g, r))).collect())
    }

    async fn ping(&self) -> Result<()> {
        self.with(async |c| c.simple_query("SELECT 1").await.map(|_| ())).await
    }

    fn describe(&self, write: &Write<'_>) -> Result<String> {
        let statements = match *write {
            Write::Create { kind, values, members } => {
                self.create_sqls(kind, values, members, "(the id the database generates)")?
            }
            Write::Update { kind, id, set, members } => self.update_sqls(kind, id, set, members)?,
            Write::Delete { kind, id } => self.delete_sqls(kind, id)?,
        };
        let mut out = String::from("BEGIN;\n");
        for s in statements {
            out.push_str(&s.text);
            out.push_str(";\n");
            for (i, p) in s.params.iter().enumerate() {
                out.push_str(&format!("--   ${} = {}\n", i + 1, self.shown(p)));
            }
        }
        out.push_str("COMMIT;\n");
        Ok(out)
    }

    async fn catalog(&self) -> Result<Vec<Catalog>> {
        let mut wanted = vec![(
            Some(Kind::Users),
            self.tables.users.name.clone(),
            self.tables.users.password.iter().cloned().collect(),
        )];
        if let Some(g) = &self.tables.groups {
            wanted.push((Some(Kind::Groups), g.name.clone(), Vec::new()));
        }
        if let Some(m) = &self.tables.membership {
            wanted.push((None, m.table.clone(), vec![m.group_column.clone(), m.user_column.clone()]));
        }
        let mut found = Vec::new();
        for (kind, table, extra) in wanted {
            let (schema, name) = table.split_once('.').unwrap_or(("", &table));
            let rows = self
                .with(async |c| {
                    c.query(
                        "SELECT column_name::text, data_type::text, is_nullable = 'YES', \
                         column_default IS NOT NULL OR is_identity = 'YES' OR is_generated <> 'NEVER' \
                         FROM information_schema.columns \
                         WHERE table_schema = COALESCE(NULLIF($1::text, ''), current_schema()) AND table_name = $2::text \
                         ORDER BY ordinal_position",
                        &[&schema, &name],
                    )
                    .await
                })
                .await?;
            let columns = rows
                .iter()
                .map(|r| Column { name: r.get(0), data_type: r.get(1), nullable: r.get(2), has_default: r.get(3) })
                .collect();
            found.push(Catalog { kind, table: table.clone(), columns, extra });
        }
        Ok(found)
    }
}

/// The count and the page statement of `q` on `t`.
fn page_sql(t: &Table, q: &PageQuery) -> (Sql, Sql) {
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
fn insert_sql(t: &Table, values: &Set) -> Sql {
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
fn update_sql(t: &Table, id: &str, set: &Set) -> Sql {
    let mut sql = Sql::default();
    let key = typed(&t.name, &t.id, id, &mut sql);
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
fn member_sqls(m: &MembershipTable, group: &str, change: &MemberChange) -> Vec<Sql> {
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
    use crate::directory::records::Order;

    fn users() -> Table {
        Table {
            name: "users".into(),
            id: "id".into(),
            columns: vec!["id".into(), "user_name".into(), "created_at".into(), "xmin".into()],
            modified: Some("updated_at".into()),
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
        assert!(count.text.starts_with("SELECT count(*) FROM \"users\" r WHERE COALESCE("), "{}", count.text);
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
