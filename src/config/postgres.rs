//! `[directory] kind = "postgres"`: the settings only a SQL store has (connection, TLS mode,
//! tables), and the rule every configured name follows before it may become a SQL
//! identifier. Only names written in `gateway.toml` ever become identifiers; client data
//! travels as query parameters (see `crate::directory::postgres`).

use serde::Deserialize;
use toml::Spanned;

use super::{secret, DirectoryConfig, ResourceConfig, Secret};

/// Which kind of store a target's `[directory]` is.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// An LDAP directory (OpenLDAP, 389-ds, Active Directory): the default.
    #[default]
    Ldap,
    /// A PostgreSQL database with the application's own tables.
    Postgres,
}

/// `sslmode`, with libpq's names and meaning (no `prefer`: a gateway either encrypts or is
/// told not to). `${VAR}` is expanded, so one file serves a test and production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP: a database on the same host or a private link only.
    Disable,
    /// TLS, the server's certificate not checked (libpq's `require`).
    Require,
    /// TLS, the certificate checked against `ca_file` (or the system's CAs) and the host name.
    #[default]
    VerifyFull,
}

impl<'de> Deserialize<'de> for SslMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match super::Text::deserialize(d)?.as_str() {
            "disable" => Ok(SslMode::Disable),
            "require" => Ok(SslMode::Require),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => {
                Err(serde::de::Error::custom(format!("sslmode {other:?}: expected disable, require or verify-full")))
            }
        }
    }
}

/// How the gateway writes `password`: hashed by the gateway into a column, in the scheme the
/// application checks logins with. Without it, a request carrying a password is refused.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PasswordColumn {
    pub column: String,
    pub scheme: PasswordScheme,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PasswordScheme {
    /// Argon2id PHC string (`$argon2id$v=19$…`).
    Argon2,
    /// bcrypt (`$2b$12$…`), cost 12.
    Bcrypt,
}

/// `[groups] membership = { table = "…", group_column = "…", user_column = "…" }`: the
/// table with one row per (group, user), whose foreign keys delete a member's rows with it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MembershipTable {
    pub table: String,
    pub group_column: String,
    pub user_column: String,
}

/// Whether `name` may become a SQL identifier: lower-case ASCII letters, digits and `_`,
/// not starting with a digit, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1). Upper case is
/// refused rather than folded, so the name in gateway.toml is the name in the catalog.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A table name: an identifier, optionally qualified by a schema (`app.users`).
pub fn is_table_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = parts.next().is_some_and(is_identifier) && parts.next().is_none_or(is_identifier);
    ok && parts.next().is_none()
}

impl DirectoryConfig {
    pub fn is_postgres(&self) -> bool {
        self.kind == StoreKind::Postgres
    }

    /// The database password (`password` / `password_file`); none when the URL's user
    /// authenticates otherwise (trust, peer).
    pub fn database_password(&self) -> Result<Option<Secret>, String> {
        match (&self.password, &self.password_file) {
            (None, None) => Ok(None),
            (inline, file) => secret("password", inline, file).map(Some),
        }
    }

    /// What a PostgreSQL `[directory]` must and must not say; the URL's syntax is checked by
    /// the store when it is built.
    pub(super) fn check_postgres(&self) -> Result<(), String> {
        let urls = &self.url.get_ref().0;
        if urls.len() != 1 || !(urls[0].starts_with("postgres://") || urls[0].starts_with("postgresql://")) {
            return Err("url: one postgres://user@host:port/dbname URL".into());
        }
        if url_has_password(&urls[0]) {
            return Err("url: give the password as password = \"${ENV}\" or password_file, not in the URL".into());
        }
        let ldap_only = [
            ("bind_dn", !self.bind_dn.as_str().is_empty()),
            ("bind_password", self.has_bind_password()),
            ("starttls", self.starttls),
            ("client_cert_file", self.client_cert_file.is_some()),
            ("range_size", self.range_size.is_some()),
            ("dn_attribute", self.dn_attribute.is_some()),
        ];
        if let Some((key, _)) = ldap_only.iter().find(|(_, set)| *set) {
            return Err(format!("{key} is for LDAP directories, not kind = \"postgres\""));
        }
        self.database_password().map(|_| ())
    }
}

/// `postgres://user:secret@host/db`: a password between the user and the `@`.
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

impl ResourceConfig {
    /// What a `[users]` / `[groups]` table of a PostgreSQL target must say, every name an
    /// identifier. `groups`: whether this is the groups table (membership required).
    pub(super) fn check_table(&self, section: &str, groups: bool) -> Result<(), String> {
        let table = self.table.as_ref().ok_or_else(|| format!("[{section}] needs table = \"…\""))?;
        let bad = |what: &str, name: &str| {
            format!("[{section}] {what} {name:?} is not a SQL name: lower-case letters, digits and _ (at most 63)")
        };
        if !is_table_name(table.get_ref()) {
            return Err(bad("table", table.get_ref()));
        }
        let metas = [&self.id_attribute, &self.created_attribute, &self.modified_attribute, &self.version_attribute];
        for name in metas.into_iter().flatten() {
            if !is_identifier(name) {
                return Err(bad("column", name));
            }
        }
        for rule in &self.attributes {
            if !is_identifier(rule.ldap.get_ref()) {
                return Err(bad("column", rule.ldap.get_ref()));
            }
        }
        if let Some(p) = &self.password {
            if !is_identifier(&p.get_ref().column) {
                return Err(bad("password column", &p.get_ref().column));
            }
        }
        match (&self.membership, groups) {
            (Some(m), true) => {
                let m = m.get_ref();
                if !is_table_name(&m.table) {
                    return Err(bad("membership table", &m.table));
                }
                for c in [&m.group_column, &m.user_column] {
                    if !is_identifier(c) {
                        return Err(bad("membership column", c));
                    }
                }
            }
            (None, true) => {
                return Err(format!(
                    "[{section}] needs membership = {{ table = \"…\", group_column = \"…\", user_column = \"…\" }}"
                ))
            }
            (Some(_), false) => return Err(format!("[{section}] has no membership: that belongs in [groups]")),
            (None, false) => {}
        }
        let ldap_only = [
            ("members", self.members.is_some()),
            ("allocate", self.allocate.is_some()),
            ("object_classes", !self.object_classes.is_empty()),
            ("base_dn", !self.base_dn.as_str().is_empty()),
        ];
        match ldap_only.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("[{section}] {key} is for LDAP directories, not kind = \"postgres\"")),
            None => Ok(()),
        }
    }

    /// The keys only a SQL table has, refused on an LDAP target.
    pub(super) fn check_not_table(&self, section: &str) -> Result<(), String> {
        let sql_only = [
            ("table", self.table.is_some()),
            ("membership", self.membership.is_some()),
            ("password", self.password.is_some()),
        ];
        match sql_only.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("[{section}] {key} is for kind = \"postgres\" targets")),
            None => Ok(()),
        }
    }
}

/// The meta columns' defaults of a table: `id`, `created_at`, `updated_at`, and as the
/// version PostgreSQL's `xmin` (the transaction that last wrote the row), so an ETag changes
/// with every write, whoever makes it.
pub(super) const META_COLUMNS: [&str; 4] = ["id", "created_at", "updated_at", "xmin"];

/// A spanned empty string: the default of LDAP-only keys a table leaves out.
pub(super) fn empty() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_lower_case_names() {
        for good in ["users", "_x", "user_name2", &"a".repeat(63)] {
            assert!(is_identifier(good), "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["", "Users", "1a", "a b", "a\"b", "a;drop table x", "a-b", "ä", long.as_str(), "a.b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_table_name("app.users") && is_table_name("users"));
        assert!(!is_table_name("a.b.c") && !is_table_name(".users") && !is_table_name("app."));
    }

    fn preset() -> String {
        include_str!("../../presets/postgres.toml")
            .replace("${SCIM_GATEWAY_TOKEN}", "t")
            .replace("${SCIM_GATEWAY_PG_PASSWORD}", "p")
    }

    fn load(text: String) -> Result<crate::config::Loaded, String> {
        crate::config::Loaded::parse("gateway.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_preset_loads_and_compiles() {
        let loaded = load(preset()).unwrap();
        let site = loaded.config.sites().next().unwrap();
        assert!(site.directory.is_postgres());
        assert_eq!(site.directory.sslmode, SslMode::VerifyFull);
        assert_eq!(site.users.id_attribute.as_deref(), Some("id"));
        assert_eq!(site.users.version_attribute.as_deref(), Some("xmin"));
        let users = crate::mapping::UserMapping::compile(site.users).unwrap();
        assert_eq!(users.rule_for("userName").unwrap().ldap, "user_name");
        crate::mapping::GroupMapping::compile(site.groups.unwrap()).unwrap();
        let m = site.groups.unwrap().membership.as_ref().unwrap().get_ref();
        assert_eq!((m.table.as_str(), m.user_column.as_str()), ("memberships", "user_id"));
    }

    #[test]
    fn refuses_what_would_become_bad_sql_or_a_leak() {
        for (from, to, why) in [
            ("column = \"user_name\"", "column = \"user name\"", "not a SQL name"),
            ("table = \"users\"", "table = \"users; drop table x\"", "not a SQL name"),
            ("group_column = \"group_id\"", "group_column = \"Group\"", "not a SQL name"),
            ("postgres://scim_gateway@", "postgres://scim_gateway:pw@", "not in the URL"),
            ("membership = {", "# membership = {", "needs membership"),
            ("table = \"users\"", "base_dn = \"ou=x\"", "needs table"),
            ("kind = \"postgres\"", "kind = \"postgres\"\nbind_dn = \"cn=x\"", "for LDAP"),
            ("deactivation = {", "# deactivation = {", "needs deactivation"),
        ] {
            let text = preset().replacen(from, to, 1);
            assert_ne!(text, preset(), "{from}");
            let e = load(text).err().unwrap_or_else(|| panic!("{to} loaded"));
            assert!(e.contains(why), "{to}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_found() {
        assert!(url_has_password("postgres://app:secret@db/app"));
        assert!(!url_has_password("postgres://app@db:5432/app"));
        assert!(!url_has_password("postgres://db/app?user=a"));
    }
}
