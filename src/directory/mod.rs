//! The directory adapter: the handful of operations the gateway needs from a directory server.
//!
//! Everything above this module speaks in [`Entry`], [`Search`] and [`Change`]; only
//! [`ldap`] knows the wire protocol. Values cross this boundary as plain strings and are
//! escaped here ([`filter`], [`dn`]), never by the callers; binary values (a `jpegPhoto`, a
//! certificate) cross as bytes, in [`Entry::bytes`], [`Binary`] and [`Change::Binary`].

pub mod dn;
pub mod filter;
pub mod ldap;
pub mod ldif;
#[cfg(test)]
pub mod memory;
pub mod postgres;
pub mod records;
pub mod schema;

use std::collections::BTreeMap;

pub use filter::LdapFilter;

/// Why a directory operation failed, in the terms the layers above act on.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The server could not be reached, timed out, or is shutting down: worth retrying later.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("an entry with that name already exists")]
    AlreadyExists,
    /// A uniqueness constraint of the directory (OpenLDAP's `unique` overlay) refused a value:
    /// what a race of two creates past the gateway's own check ends in when their DNs differ.
    #[error("the directory refused a value that must be unique: {0}")]
    NotUnique(String),
    #[error("no such entry")]
    NoSuchEntry,
    /// The server refused the data itself (schema, syntax, constraint, policy). `code` is in
    /// LDAP's result-code terms (RFC 4511), which every store maps its refusals into, because
    /// provision acts on a few of them; `text` is what an operator reads, in the store's terms.
    #[error("the directory refused the change: {text}")]
    Rejected { code: u32, text: String },
    #[error(
        "the service account is not allowed to do this ({0}); grant it the rights on the users' and groups' \
         base DNs (Active Directory: delegate control of the OUs to create, delete and manage user accounts, \
         reset passwords and modify group membership)"
    )]
    AccessDenied(String),
    /// The directory's password policy (length, complexity, history) refused a password.
    #[error("the directory's password policy refused the password: {0}")]
    PasswordPolicy(String),
    /// The gateway's connection cannot carry this operation (e.g. AD passwords without TLS).
    #[error("{0}")]
    Unsupported(String),
    /// Never hidden as a short list: the operator must lift the limit for the service account.
    #[error("the directory's size limit cut the result short; grant the service account `limits ... size=unlimited`")]
    SizeLimit,
    #[error("directory error {code}: {text}")]
    Other { code: u32, text: String },
}

impl DirectoryError {
    /// A short fixed name, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DirectoryError::Unavailable(_) => "unavailable",
            DirectoryError::AlreadyExists => "already_exists",
            DirectoryError::NotUnique(_) => "not_unique",
            DirectoryError::NoSuchEntry => "no_such_entry",
            DirectoryError::Rejected { .. } => "rejected",
            DirectoryError::AccessDenied(_) => "access_denied",
            DirectoryError::PasswordPolicy(_) => "password_policy",
            DirectoryError::Unsupported(_) => "unsupported",
            DirectoryError::SizeLimit => "size_limit",
            DirectoryError::Other { .. } => "other",
        }
    }
}

pub type Result<T> = std::result::Result<T, DirectoryError>;

/// An entry as read back: DN plus attributes, keyed by lower-cased attribute name
/// because LDAP attribute names are case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    attrs: BTreeMap<String, Vec<String>>,
    /// Attributes with a value that is not UTF-8, as the server sent them.
    bin: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    pub fn new(dn: impl Into<String>) -> Self {
        Entry { dn: dn.into(), attrs: BTreeMap::new(), bin: BTreeMap::new() }
    }

    /// About the bytes the entry holds on the heap, for caches bounded by size: every
    /// string's length plus a fixed cost per string and per attribute.
    pub fn weight(&self) -> usize {
        const PER_STRING: usize = 32;
        let text = self.attrs.iter().map(|(k, v)| k.len() + v.iter().map(|s| s.len() + PER_STRING).sum::<usize>());
        let bin = self.bin.iter().map(|(k, v)| k.len() + v.iter().map(|b| b.len() + PER_STRING).sum::<usize>());
        let per_attr = (self.attrs.len() + self.bin.len()) * 2 * PER_STRING;
        self.dn.len() + text.chain(bin).sum::<usize>() + per_attr
    }

    pub fn with(mut self, attr: &str, values: Vec<String>) -> Self {
        self.insert(attr, values);
        self
    }

    pub fn insert(&mut self, attr: &str, values: Vec<String>) {
        if !values.is_empty() {
            self.attrs.insert(attr.to_ascii_lowercase(), values);
        }
    }

    /// Drops every value of `attr`.
    pub fn remove(&mut self, attr: &str) {
        self.attrs.remove(&attr.to_ascii_lowercase());
        self.bin.remove(&attr.to_ascii_lowercase());
    }

    pub fn insert_binary(&mut self, attr: &str, values: Vec<Vec<u8>>) {
        if !values.is_empty() {
            self.bin.insert(attr.to_ascii_lowercase(), values);
        }
    }

    /// All values of `attr` as bytes, whether or not they are text.
    pub fn bytes(&self, attr: &str) -> Vec<&[u8]> {
        match self.bin.get(&attr.to_ascii_lowercase()) {
            Some(bin) => bin.iter().map(Vec::as_slice).collect(),
            None => self.values(attr).iter().map(String::as_bytes).collect(),
        }
    }

    /// Adds `values` to those `attr` already has (values read in ranges).
    pub fn extend(&mut self, attr: &str, values: Vec<String>) {
        if !values.is_empty() {
            self.attrs.entry(attr.to_ascii_lowercase()).or_default().extend(values);
        }
    }

    /// All values of `attr` (empty when absent or not text).
    pub fn values(&self, attr: &str) -> &[String] {
        // Rendering one user looks up dozens of names: lower-case them on the stack, not in
        // a new String each (attribute names are short; a longer one takes the slow path).
        let mut buf = [0u8; 64];
        let key = match buf.get_mut(..attr.len()) {
            Some(b) => {
                b.copy_from_slice(attr.as_bytes());
                b.make_ascii_lowercase();
                std::str::from_utf8(b).ok()
            }
            None => None,
        };
        match key {
            Some(k) => self.attrs.get(k),
            None => self.attrs.get(&attr.to_ascii_lowercase()),
        }
        .map_or(&[], Vec::as_slice)
    }

    pub fn first(&self, attr: &str) -> Option<&str> {
        self.values(attr).first().map(String::as_str)
    }
}

/// The attributes of a new entry: name and values.
pub type Attributes = Vec<(String, Vec<String>)>;

/// The binary attributes of a new entry: name and values.
pub type Binary = Vec<(String, Vec<Vec<u8>>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

#[derive(Debug, Clone)]
pub struct Search {
    pub base: String,
    pub scope: Scope,
    pub filter: LdapFilter,
    /// Attributes to return; operational ones must be named explicitly.
    pub attrs: Vec<String>,
}

/// One modification of a modify operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Replace all values (an empty list deletes the attribute).
    Replace(String, Vec<String>),
    Add(String, Vec<String>),
    /// Delete these values (an empty list deletes the attribute).
    Delete(String, Vec<String>),
    /// Replace all values with these bytes (an empty list deletes the attribute).
    Binary(String, Vec<Vec<u8>>),
    /// Replace the value `old` by `new` (delete, then add, in one operation): fails instead
    /// of overwriting when the value changed since it was read.
    Swap(String, String, String),
}

impl Change {
    pub fn attr(&self) -> &str {
        match self {
            Change::Replace(a, _)
            | Change::Add(a, _)
            | Change::Delete(a, _)
            | Change::Binary(a, _)
            | Change::Swap(a, ..) => a,
        }
    }
}

/// What the gateway needs from a directory. Implementations must be cheap to share
/// across requests: every call may run concurrently with others.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    /// All matching entries; paged underneath so the server's page size never truncates.
    async fn search(&self, search: &Search) -> Result<Vec<Entry>>;
    /// As [`Directory::search`], but `None` once more than `max` entries match, so a result
    /// too large to handle is not read whole.
    async fn search_at_most(&self, search: &Search, max: usize) -> Result<Option<Vec<Entry>>> {
        let found = self.search(search).await?;
        Ok((found.len() <= max).then_some(found))
    }
    /// Adds an entry with text and `binary` attributes; with `password`, sets it too (as
    /// [`Directory::set_password`] does), or leaves no entry behind.
    async fn add(&self, dn: &str, attrs: &Attributes, binary: &Binary, password: Option<&str>) -> Result<()>;
    /// Applies `changes` in one operation.
    async fn modify(&self, dn: &str, changes: &[Change]) -> Result<()>;
    /// Whether `dn`'s `attr` holds `value` (LDAP compare: one value, not the whole attribute).
    async fn compare(&self, dn: &str, attr: &str, value: &str) -> Result<bool>;
    /// Changes the RDN in place (modrdn, deleting the old RDN value), keeping the entry's identity.
    async fn rename(&self, dn: &str, new_rdn: &str) -> Result<()>;
    async fn delete(&self, dn: &str) -> Result<()>;
    /// Sets a password so that the server hashes it (RFC 3062 Password Modify; AD: `unicodePwd`).
    async fn set_password(&self, dn: &str, password: &str) -> Result<()>;
    /// The directory's subschema (attribute types and object classes).
    async fn subschema(&self) -> Result<schema::Subschema>;
    /// Proves the directory answers with the service account's credentials.
    async fn ping(&self) -> Result<()>;
    /// Whether `password` is `dn`'s: a simple bind as `dn` on a connection of its own, never
    /// a pooled one (a pooled connection must stay bound as the service account). An empty
    /// password is `false` without asking: LDAP would take it as an anonymous bind.
    async fn authenticate(&self, dn: &str, password: &str) -> Result<bool> {
        let _ = (dn, password);
        Err(DirectoryError::Unsupported("this directory cannot check a person's password".into()))
    }
}
