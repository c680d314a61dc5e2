//! The PostgreSQL store: [`Records`] over an application's own tables. Each call is one
//! statement or one transaction, so a write lands whole or not at all — a create with its
//! members, a PATCH of several operations, a group PUT. SQL is built by [`sql`] from the
//! configured names only; values are parameters.

mod error;
mod pool;
pub mod sql;
mod statements;

use std::time::Duration;

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::{tokio_postgres, GenericClient, Pool};
use serde_json::Value;

use self::error::{db_error, pool_error};
use self::sql::{ident, table, typed, Columns, Sql};
use self::statements::{insert_sql, member_sqls, page_sql, select_list, update_sql};
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
    /// What the ETag is made of (`xmin` by default).
    pub version: String,
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

/// Prepared statements a connection keeps. A statement is prepared once per connection: an
/// unprepared one costs PostgreSQL a parse and a plan, and the client one more round trip, on
/// every call. Texts come from the mapping and a filter's shape, never from a value, but
/// clients choose the shapes: past this many a connection starts afresh.
const STATEMENTS_KEPT: usize = 256;

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
    fn update_sqls(
        &self,
        kind: Kind,
        id: &str,
        version: Option<&str>,
        set: &Set,
        members: &MemberChange,
    ) -> Result<Vec<Sql>> {
        let mut out = vec![update_sql(self.table(kind)?, id, version, set)];
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
            if client.statement_cache.size() > STATEMENTS_KEPT {
                client.statement_cache.clear();
            }
            work(&mut client).await.map_err(db_error)
        };
        match tokio::time::timeout(self.deadline, run).await {
            Ok(done) => done,
            Err(_) => Err(DirectoryError::Unavailable("the database did not answer in time".into())),
        }
    }
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
        let row = self
            .with(async |c| c.query_opt(&c.prepare_cached(&sql.text).await?, &params(&sql)).await)
            .await
            .map_err(missing_when_invalid)?;
        row.map(|r| entry(t, &r)).ok_or(DirectoryError::NoSuchEntry)
    }

    async fn find(&self, kind: Kind, filter: &LdapFilter, max: usize) -> Result<Option<Vec<Entry>>> {
        let t = self.table(kind)?;
        let mut sql = Sql::default();
        let cond = t.text.condition("r", &sql::without_nul(filter), &mut sql);
        sql.text = format!("SELECT {} FROM {} r WHERE {cond} LIMIT {}", select_list(t), table(&t.name), max + 1);
        let rows = self.with(async |c| c.query(&c.prepare_cached(&sql.text).await?, &params(&sql)).await).await?;
        Ok((rows.len() <= max).then(|| rows.iter().map(|r| entry(t, r)).collect()))
    }

    async fn page(&self, kind: Kind, q: &PageQuery) -> Result<Page> {
        let t = self.table(kind)?;
        let (count, list) = page_sql(t, q);
        let n = t.columns.len();
        // The first page of a short list (Okta's lookup by userName, a filter matching a
        // few) is whole in one statement: fewer rows than asked for are all there are. A full
        // first page (an import's) reads again with its count, one more statement per import.
        let first = q.after.is_none() && q.offset == 0;
        let (total, rows) = self
            .with(async |c| {
                if first {
                    let rows = c.query(&c.prepare_cached(&list.text).await?, &params(&list)).await?;
                    if rows.len() < q.limit {
                        return Ok((rows.len() as i64, rows));
                    }
                }
                // One snapshot: the total and the rows agree.
                let tx = c
                    .build_transaction()
                    .read_only(true)
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .start()
                    .await?;
                let total: i64 = tx.query_one(&tx.prepare_cached(&count.text).await?, &params(&count)).await?.get(0);
                let rows = tx.query(&tx.prepare_cached(&list.text).await?, &params(&list)).await?;
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
            let created = entry(t, &tx.query_one(&tx.prepare_cached(&insert.text).await?, &params(&insert)).await?);
            if let Some(m) = membership {
                for s in member_sqls(m, &created.dn, &add) {
                    tx.execute(&tx.prepare_cached(&s.text).await?, &params(&s)).await?;
                }
            }
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    async fn update(
        &self,
        kind: Kind,
        id: &str,
        version: Option<&str>,
        set: &Set,
        members: &MemberChange,
    ) -> Result<Entry> {
        let t = self.table(kind)?;
        let update = update_sql(t, id, version, set);
        let changes = match self.membership_for(members.is_empty())? {
            Some(m) => member_sqls(m, id, members),
            None => Vec::new(),
        };
        let updated = self
            .with(async |c| {
                let tx = c.transaction().await?;
                let Some(row) = tx.query_opt(&tx.prepare_cached(&update.text).await?, &params(&update)).await? else {
                    return Ok(None);
                };
                for s in &changes {
                    tx.execute(&tx.prepare_cached(&s.text).await?, &params(s)).await?;
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
                    n = tx.execute(&tx.prepare_cached(&s.text).await?, &params(s)).await?;
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
        let rows = self
            .with(async |c| c.query(&c.prepare_cached(&sql.text).await?, &params(&sql)).await)
            .await
            .map_err(missing_when_invalid)?;
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
             WHERE m.{1} = ANY(ARRAY(SELECT x.{1} FROM json_populate_recordset(NULL::{3}, {p}::json) x)) ORDER BY r.{5}",
            select_list(g),
            ident(&m.user_column),
            table(&g.name),
            table(&m.table),
            ident(&m.group_column),
            ident(&g.id),
        );
        let n = g.columns.len();
        let rows = self.with(async |c| c.query(&c.prepare_cached(&sql.text).await?, &params(&sql)).await).await?;
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
            Write::Update { kind, id, version, set, members } => self.update_sqls(kind, id, version, set, members)?,
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
