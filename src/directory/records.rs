//! The narrower, resource-level store (docs/architecture.md, "A second store"): users and
//! groups as records with an id the store generates, each call one unit of work that the
//! store makes whole or refuses. PostgreSQL implements it; LDAP still serves through
//! [`super::Directory`] and the sequences in `provision`.
//!
//! Records cross this boundary as [`Entry`] (the id as `dn`, columns as attributes, read as
//! text), conditions as [`LdapFilter`] over column names: the neutral tree `mapping`
//! translates SCIM filters into, which each store renders in its own language.

use super::{Entry, LdapFilter, Result};

/// Which of the two record types a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

/// One page of a list: rows matching `filter`, in `order` (then by id), the first `limit`
/// after `after` when the previous page's last key is known, else after skipping `offset`.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub filter: LdapFilter,
    pub order: Option<Order>,
    pub after: Option<Key>,
    pub offset: usize,
    pub limit: usize,
}

/// Sort by a column's text, ignoring case (SCIM's string order), ascending or descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub column: String,
    pub descending: bool,
}

/// Where a page ended: the last row's order value (`None`: it had none, or no order) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub value: Option<String>,
    pub id: String,
}

/// A page and what the whole result counts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub total: usize,
    pub rows: Vec<Entry>,
    /// The last row's key, to continue from.
    pub last: Option<Key>,
}

/// A column's new value; `None` empties it (NULL).
pub type Set = Vec<(String, Option<String>)>;

/// What a write does to a group's members (user ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// Every member is replaced by `add` (a PUT, or PATCH replace of `members`).
    pub replace: bool,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl MemberChange {
    pub fn is_empty(&self) -> bool {
        !self.replace && self.add.is_empty() && self.remove.is_empty()
    }
}

/// A column as the database's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    /// A default, an identity or a generated column: an insert may leave it out.
    pub has_default: bool,
}

/// One table's columns, for `check`. `kind` is `None` for the membership table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub kind: Option<Kind>,
    pub table: String,
    /// Empty when the table does not exist (or the gateway's user may not see it).
    pub columns: Vec<Column>,
    /// Columns the store itself writes besides the mapping's (the password column, the
    /// membership table's two).
    pub extra: Vec<String>,
}

/// A write as [`Records::describe`] shows it (`explain`).
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Create { kind: Kind, values: &'a Set, members: &'a [String] },
    Update { kind: Kind, id: &'a str, version: Option<&'a str>, set: &'a Set, members: &'a MemberChange },
    Delete { kind: Kind, id: &'a str },
}

/// Users and groups kept as records. Implementations are shared across requests.
#[async_trait::async_trait]
pub trait Records: Send + Sync {
    /// The record with `id`; [`super::DirectoryError::NoSuchEntry`] when there is none (also
    /// for an id that cannot be one).
    async fn get(&self, kind: Kind, id: &str) -> Result<Entry>;
    /// At most `max` records matching `filter`, in no order; `None` when more match.
    async fn find(&self, kind: Kind, filter: &LdapFilter, max: usize) -> Result<Option<Vec<Entry>>>;
    async fn page(&self, kind: Kind, query: &PageQuery) -> Result<Page>;
    /// Inserts a record (and, for a group, its members) in one transaction; returns it as stored.
    async fn create(&self, kind: Kind, values: &Set, members: &[String]) -> Result<Entry>;
    /// Sets columns and changes members in one transaction; returns the record as stored.
    /// With `version`, only while the record still has that version (If-Match, decided in
    /// the same statement): otherwise nothing is written and the answer is
    /// [`super::DirectoryError::NoSuchEntry`], which the caller tells apart by reading again.
    async fn update(
        &self,
        kind: Kind,
        id: &str,
        version: Option<&str>,
        set: &Set,
        members: &MemberChange,
    ) -> Result<Entry>;
    async fn delete(&self, kind: Kind, id: &str) -> Result<()>;
    /// The users in a group, as records (at most `max`).
    async fn members(&self, group_id: &str, max: usize) -> Result<Vec<Entry>>;
    /// The groups each of `user_ids` is in: (user id, group record).
    async fn groups_of(&self, user_ids: &[String]) -> Result<Vec<(String, Entry)>>;
    /// Proves the store answers.
    async fn ping(&self) -> Result<()>;
    /// What the database's catalog says about every table the store uses.
    async fn catalog(&self) -> Result<Vec<Catalog>>;
    /// The statements `write` would run and their parameters, as text, without running
    /// them; a password's value is never shown.
    fn describe(&self, write: &Write<'_>) -> Result<String>;
}
