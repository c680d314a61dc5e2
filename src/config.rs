//! `gateway.toml`: what operators edit. Parsing, `${VAR}` expansion and secrets live here;
//! rules are compiled (and checked) by [`crate::mapping`], whose errors point back into the
//! file through [`Loaded::error_at`].

use std::{fmt, ops::Range, path::PathBuf, sync::Arc, time::Duration};

use serde::{Deserialize, Deserializer};

use toml::Spanned;

mod oauth;
mod postgres;
pub use oauth::{Grant, JwtIssuer, LoginLimit, OAuthClient, OAuthConfig};
pub use postgres::{is_identifier, is_table_name, MembershipTable, PasswordColumn, PasswordScheme, SslMode, StoreKind};

use crate::dialect::Dialect;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    At { path: String, line: usize, column: usize, message: String },
}

/// A configuration file as read, kept with its text so later checks can name a line.
pub struct Loaded {
    pub path: String,
    pub text: String,
    pub config: Config,
}

impl Loaded {
    pub fn read(path: &str) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.into(), message: e.to_string() })?;
        Self::parse(path, text)
    }

    pub fn parse(path: &str, text: String) -> Result<Loaded, ConfigError> {
        let config: Config = match toml::from_str(&text) {
            Ok(c) => c,
            // Our own formatting, not toml's snippet: the offending line may hold an inline secret.
            Err(e) => {
                let message = e.message().trim().to_owned();
                return Err(match e.span() {
                    Some(span) => error_at(path, &text, span, message),
                    None => ConfigError::File { path: path.into(), message },
                });
            }
        };
        let mut config = config;
        for site in config.sites_mut() {
            let message = |e| format!("{}{e}", site.within);
            complete(site.directory, site.users, site.groups)
                .map_err(|e| ConfigError::File { path: path.into(), message: message(e) })?;
        }
        let loaded = Loaded { path: path.into(), text, config };
        loaded.check()?;
        Ok(loaded)
    }

    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        error_at(&self.path, &self.text, span, message.into())
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.config.server.metrics_token().map_err(|e| self.file_error(&format!("[server] {e}")))?;
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for site in self.config.sites() {
            let (name, base) = (site.name, site.base_path.get_ref().as_str());
            if let Some(span) = site.name_span.clone() {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(self.error_at(span, "a target's name is letters, digits, - and _"));
                }
                if let Some((other, _)) = seen.iter().find(|(n, b)| n.eq_ignore_ascii_case(name) || *b == base) {
                    return Err(self.error_at(span, format!("target {name} repeats the name or base_path of {other}")));
                }
            }
            seen.push((name, base));
            self.check_site(&site)?;
        }
        Ok(())
    }

    /// The checks of one target's credentials, directory and base path.
    fn check_site(&self, site: &Site) -> Result<(), ConfigError> {
        let (within, auth, directory, base) = (&site.within, site.auth, site.directory, site.base_path);
        if auth.bearer.is_empty() && auth.basic.is_empty() && auth.oauth.is_none() && auth.jwt.is_empty() {
            return Err(self.file_error(&format!(
                "{within}[auth] needs at least one [[auth.bearer]], [[auth.basic]], [auth.oauth] or [[auth.jwt]]"
            )));
        }
        match directory.is_postgres() {
            true => self.check_postgres_site(site)?,
            false => self.check_ldap_site(site)?,
        }
        let secrets =
            auth.bearer.iter().map(|b| b.secret().map_err(|e| format!("{within}[[auth.bearer]] {}: {e}", b.name)));
        let secrets = secrets
            .chain(auth.basic.iter().map(|b| b.secret().map_err(|e| format!("{within}[[auth.basic]] {}: {e}", b.name))))
            .map(|s| s.map(|_| ()))
            .chain(std::iter::once(
                match directory.is_postgres() {
                    true => directory.database_password().map(|_| ()),
                    false => directory.bind_password().map(|_| ()),
                }
                .map_err(|e| format!("{within}[directory] {e}")),
            ));
        for s in secrets {
            s.map(|_| ()).map_err(|e| self.file_error(&e))?;
        }
        if !base.get_ref().starts_with('/') || base.get_ref().ends_with('/') {
            return Err(self.error_at(base.span(), "base_path must start with '/' and not end with one"));
        }
        Ok(())
    }

    /// The checks of an LDAP target's directory and entries.
    fn check_ldap_site(&self, site: &Site) -> Result<(), ConfigError> {
        let (within, directory) = (&site.within, site.directory);
        for (section, r) in std::iter::once(("users", site.users)).chain(site.groups.map(|g| ("groups", g))) {
            r.check_not_table(section).map_err(|e| self.file_error(&format!("{within}{e}")))?;
        }
        if directory.bind_dn.as_str().is_empty() {
            return Err(self.file_error(&format!("{within}[directory] needs bind_dn")));
        }
        let urls = &directory.url;
        if urls.get_ref().0.is_empty()
            || !urls.get_ref().0.iter().all(|u| u.starts_with("ldap://") || u.starts_with("ldaps://"))
        {
            return Err(self.error_at(urls.span(), "directory.url: each URL must start with ldap:// or ldaps://"));
        }
        if directory.client_cert_file.is_some() != directory.client_key_file.is_some() {
            return Err(self.file_error(&format!(
                "{within}[directory] give both client_cert_file and client_key_file, or neither"
            )));
        }
        Ok(())
    }

    /// The checks of a `kind = "postgres"` target: its connection and its tables.
    fn check_postgres_site(&self, site: &Site) -> Result<(), ConfigError> {
        let fail = |e: String| self.file_error(&format!("{}{e}", site.within));
        site.directory.check_postgres().map_err(|e| fail(format!("[directory] {e}")))?;
        site.users.check_table("users", false).map_err(fail)?;
        if let Some(g) = site.groups {
            g.check_table("groups", true).map_err(fail)?;
            if g.password.is_some() {
                return Err(fail("[groups] has no password".into()));
            }
        }
        Ok(())
    }

    fn file_error(&self, message: &str) -> ConfigError {
        ConfigError::File { path: self.path.clone(), message: message.into() }
    }
}

fn error_at(path: &str, text: &str, span: Range<usize>, message: String) -> ConfigError {
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    ConfigError::At { path: path.into(), line, column, message }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub directory: DirectoryConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub query: QueryConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    pub users: ResourceConfig,
    /// Groups are served only when configured.
    pub groups: Option<ResourceConfig>,
    /// More directories behind the same gateway, each at its own base path (`[[targets]]`).
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
}

/// One target whole: the default one (the top-level sections) or a `[[targets]]` table, so
/// that whatever is done per target (completing defaults, checks, assembly, `check`,
/// `explain --target`) is written once.
pub struct Site<'a> {
    /// `default`, or the `[[targets]]` name.
    pub name: &'a str,
    /// Where the name is written (`[[targets]]` only), for errors.
    pub name_span: Option<Range<usize>>,
    /// How messages about this target begin: empty for the default one.
    pub within: String,
    pub base_path: &'a Spanned<String>,
    pub auth: &'a AuthConfig,
    pub directory: &'a DirectoryConfig,
    pub cache: &'a CacheConfig,
    pub users: &'a ResourceConfig,
    pub groups: Option<&'a ResourceConfig>,
}

/// The part of a [`Site`] that completing the defaults changes.
struct SiteMut<'a> {
    within: String,
    directory: &'a DirectoryConfig,
    users: &'a mut ResourceConfig,
    groups: Option<&'a mut ResourceConfig>,
}

/// The name of the target the top-level sections make.
pub const DEFAULT_TARGET: &str = "default";

impl Config {
    /// Every target, the default one first.
    pub fn sites(&self) -> impl Iterator<Item = Site<'_>> {
        let default = Site {
            name: DEFAULT_TARGET,
            name_span: None,
            within: String::new(),
            base_path: &self.server.base_path,
            auth: &self.auth,
            directory: &self.directory,
            cache: &self.cache,
            users: &self.users,
            groups: self.groups.as_ref(),
        };
        std::iter::once(default).chain(self.targets.iter().map(|t| Site {
            name: t.name.get_ref(),
            name_span: Some(t.name.span()),
            within: format!("[[targets]] {}: ", t.name.get_ref()),
            base_path: &t.base_path,
            auth: &t.auth,
            directory: &t.directory,
            cache: &t.cache,
            users: &t.users,
            groups: t.groups.as_ref(),
        }))
    }

    /// The target called `name`.
    pub fn site(&self, name: &str) -> Option<Site<'_>> {
        self.sites().find(|s| s.name == name)
    }

    fn sites_mut(&mut self) -> impl Iterator<Item = SiteMut<'_>> {
        let default = SiteMut {
            within: String::new(),
            directory: &self.directory,
            users: &mut self.users,
            groups: self.groups.as_mut(),
        };
        std::iter::once(default).chain(self.targets.iter_mut().map(|t| SiteMut {
            within: format!("[[targets]] {}: ", t.name.get_ref()),
            directory: &t.directory,
            users: &mut t.users,
            groups: t.groups.as_mut(),
        }))
    }
}

/// One more target: an app or OU with its own base path, callers, directory and mapping.
/// The top-level sections are the default target; `[server]` and `[query]` are shared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Shown in logs, audit lines and metrics.
    pub name: Spanned<String>,
    pub base_path: Spanned<String>,
    pub auth: AuthConfig,
    pub directory: DirectoryConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    pub users: ResourceConfig,
    pub groups: Option<ResourceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: Text,
    pub base_path: Spanned<String>,
    /// Absolute URL prefix for `meta.location` and `Location`. Unset: the Host header when it
    /// names the address the connection arrived on, else that address itself.
    pub public_url: Option<Text>,
    pub max_body_bytes: usize,
    /// Time a new connection has to send its first request, headers complete, and the time
    /// a request's headers may take on a kept-alive connection.
    pub header_read_timeout_secs: u64,
    /// Time a request body may take to arrive; a slower one gets 408 and the connection closes.
    pub body_read_timeout_secs: u64,
    /// A connection (HTTP/1 keep-alive or HTTP/2) with no request for this long is closed.
    pub idle_timeout_secs: u64,
    pub request_timeout_secs: u64,
    /// Requests served at once; more get 429 with Retry-After instead of queueing.
    pub max_in_flight: usize,
    /// Open client connections. At the cap a new one takes the place of the oldest idle one;
    /// with none idle it is closed at once.
    pub max_connections: usize,
    /// Serve `/healthz`, `/readyz` and `/metrics` on this address only (not on `listen`).
    pub probe_listen: Option<Text>,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`.
    metrics_token: Option<Text>,
    metrics_token_file: Option<Text>,
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Text("127.0.0.1:8080".into()),
            base_path: Spanned::new(0..0, "/scim/v2".into()),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            request_timeout_secs: 30,
            max_in_flight: 256,
            max_connections: 1024,
            probe_listen: None,
            metrics_token: None,
            metrics_token_file: None,
            tls: None,
        }
    }
}

impl ServerConfig {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// The token `/metrics` asks for, if any.
    pub fn metrics_token(&self) -> Result<Option<Secret>, String> {
        match (&self.metrics_token, &self.metrics_token_file) {
            (None, None) => Ok(None),
            (inline, file) => secret("metrics_token", inline, file).map(Some),
        }
    }
}

/// `[limits]`: how much one request may ask of the gateway. Each is checked before any work
/// is done, and answered with a 400 naming the limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Operations in one PATCH.
    pub max_operations: usize,
    /// Values of one multi-valued attribute (any JSON array in a body but `members`), also
    /// after a PATCH has added to it.
    pub max_values: usize,
    /// Values of `members` in one body.
    pub max_members: usize,
    /// Bytes of one string value in a body.
    pub max_value_bytes: usize,
    /// Bytes of a `filter` (query string or `.search` body).
    pub max_filter_bytes: usize,
}

impl LimitsConfig {
    /// The limits as the request layers apply them (a zero is taken as one).
    pub fn limits(&self) -> crate::scim::limits::Limits {
        crate::scim::limits::Limits {
            max_operations: self.max_operations.max(1),
            max_values: self.max_values.max(1),
            max_members: self.max_members.max(1),
            max_value_bytes: self.max_value_bytes.max(1),
            max_filter_bytes: self.max_filter_bytes.max(1),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_operations: 1000,
            max_values: 1000,
            max_members: 20_000,
            max_value_bytes: 65_536,
            max_filter_bytes: 4096,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: Text,
    pub key_file: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub bearer: Vec<BearerToken>,
    #[serde(default)]
    pub basic: Vec<BasicCredential>,
    /// The gateway as an OAuth 2.0 authorization server (`[auth.oauth]`).
    pub oauth: Option<OAuthConfig>,
    /// Outside authorization servers whose JWTs are accepted (`[[auth.jwt]]`).
    #[serde(default)]
    pub jwt: Vec<JwtIssuer>,
}

/// A bearer token; `name` identifies the caller in logs, the value never appears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerToken {
    pub name: String,
    token: Option<Text>,
    token_file: Option<Text>,
}

impl BearerToken {
    pub fn secret(&self) -> Result<Secret, String> {
        secret("token", &self.token, &self.token_file)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    pub name: String,
    pub username: Text,
    password: Option<Text>,
    password_file: Option<Text>,
}

impl BasicCredential {
    pub fn secret(&self) -> Result<Secret, String> {
        secret("password", &self.password, &self.password_file)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap` (the default) or `postgres`.
    #[serde(default)]
    pub kind: StoreKind,
    /// Tried in order when connecting: the first that answers serves the connection.
    /// PostgreSQL: one `postgres://user@host:port/dbname` (no password in it).
    pub url: Spanned<Urls>,
    #[serde(default)]
    pub bind_dn: Text,
    bind_password: Option<Text>,
    bind_password_file: Option<Text>,
    /// PostgreSQL: the database user's password.
    password: Option<Text>,
    password_file: Option<Text>,
    /// PostgreSQL: `disable`, `require` or `verify-full` (the default; `ca_file` or the
    /// system's CAs).
    #[serde(default)]
    pub sslmode: SslMode,
    /// Upgrade `ldap://` with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// PEM bundle of the CAs that sign the directory's certificate; default: the system's.
    pub ca_file: Option<Text>,
    /// PEM certificate and key presented to directories that require client certificates.
    pub client_cert_file: Option<Text>,
    pub client_key_file: Option<Text>,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "defaults::operation_timeout")]
    pub operation_timeout_secs: u64,
    /// A connection unused for this long is checked with a root DSE read before it is used.
    #[serde(default = "defaults::idle_check")]
    pub idle_check_secs: u64,
    /// The attribute that holds an entry's own DN, to look up many entries by DN in one
    /// search: `entryDN` (OpenLDAP), `distinguishedName` (Active Directory), `entrydn` (389-ds).
    /// Default: the dialect's.
    pub dn_attribute: Option<String>,
    /// The kind of server: `openldap` (also for 389-ds and other RFC directories) or
    /// `active_directory` (Windows AD, Samba AD). See [`Dialect`].
    #[serde(default)]
    pub dialect: Dialect,
    /// Active Directory: ask for `member` in ranges of this many values (`member;range=0-N`)
    /// instead of all at once. Unset: all at once, following the ranges the server imposes
    /// (Windows: MaxValRange, 1500).
    pub range_size: Option<u32>,
    /// Paged-results page size; keep it at or below the server's size limit.
    #[serde(default = "defaults::page_size")]
    pub page_size: i32,
}

impl DirectoryConfig {
    pub fn bind_password(&self) -> Result<Secret, String> {
        secret("bind_password", &self.bind_password, &self.bind_password_file)
    }
    fn has_bind_password(&self) -> bool {
        self.bind_password.is_some() || self.bind_password_file.is_some()
    }
    /// The DN attribute: as configured, or the dialect's.
    pub fn dn_attribute(&self) -> String {
        self.dn_attribute.clone().unwrap_or_else(|| self.dialect.dn_attribute().into())
    }
    /// Whether every connection is encrypted (LDAPS, or StartTLS before the bind).
    pub fn encrypted(&self) -> bool {
        self.starttls || self.url.get_ref().0.iter().all(|u| u.starts_with("ldaps://"))
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs)
    }
    pub fn idle_check(&self) -> Duration {
        Duration::from_secs(self.idle_check_secs)
    }
}

/// `url = "ldap://a"` or `url = ["ldap://a", "ldap://b"]`, `${VAR}` expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls(pub Vec<String>);

impl<'de> Deserialize<'de> for Urls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrMany;
        impl<'de> serde::de::Visitor<'de> for OneOrMany {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL or a list of URLs")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(vec![expand(s, |name| std::env::var(name).ok()).map_err(E::custom)?])
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut urls = Vec::new();
                while let Some(Text(url)) = seq.next_element()? {
                    urls.push(url);
                }
                Ok(urls)
            }
        }
        d.deserialize_any(OneOrMany).map(Urls)
    }
}

/// `[cache]`: what the gateway remembers between requests; the promise is in the README.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    /// The longest a change made outside this gateway stays unseen.
    pub ttl_secs: u64,
    /// Bytes held by the three caches together (users, userNames, groups), keys included;
    /// the least used go first.
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, ttl_secs: 60, max_bytes: 64 * 1024 * 1024 }
    }
}

/// `[query]`: the bounds of list requests (see docs/query.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// The most entries the gateway reads to check a filter the directory cannot decide
    /// exactly, or to sort; beyond it the request is refused (400 tooMany).
    pub max_candidates: usize,
    /// How long the ordered ids of a result stay for its later pages.
    pub snapshot_ttl_secs: u64,
    /// Bytes held in all snapshots together (ids and keys); the least used go first.
    pub snapshot_max_bytes: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig { max_candidates: 20_000, snapshot_ttl_secs: 300, snapshot_max_bytes: 64 * 1024 * 1024 }
    }
}

mod defaults {
    pub fn pool_size() -> usize {
        4
    }
    pub fn connect_timeout() -> u64 {
        5
    }
    pub fn operation_timeout() -> u64 {
        10
    }
    pub fn idle_check() -> u64 {
        30
    }
    pub fn page_size() -> i32 {
        500
    }
    pub fn member_uid_attribute() -> String {
        "uid".into()
    }
}

/// `[users]` or `[groups]`: where the entries live and how they map.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// PostgreSQL: the table of this resource type (`users`, `app.users`). LDAP targets
    /// leave it out and give the next four instead.
    pub table: Option<Spanned<String>>,
    /// Where new entries are created, and the search base for existing ones.
    #[serde(default)]
    pub base_dn: Text,
    /// Which entries under `base_dn` are of this resource type (operator-written LDAP filter).
    #[serde(default = "postgres::empty")]
    pub filter: Spanned<String>,
    /// The RDN attribute of new entries; its value comes from the attribute rules.
    #[serde(default = "postgres::empty")]
    pub rdn_attribute: Spanned<String>,
    #[serde(default)]
    pub object_classes: Vec<String>,
    /// Source of the SCIM `id`: must be stable across renames. This and the next three
    /// default to the dialect's (`entryUUID`, `createTimestamp`, `modifyTimestamp`,
    /// `entryCSN`; AD: `objectGUID`, `whenCreated`, `whenChanged`, `uSNChanged`).
    /// PostgreSQL: `id_column` (generated by the database), `created_column`,
    /// `modified_column`, `version_column`: `id`, `created_at`, `updated_at`, `updated_at`.
    #[serde(alias = "id_column")]
    pub id_attribute: Option<String>,
    #[serde(alias = "created_column")]
    pub created_attribute: Option<String>,
    #[serde(alias = "modified_column")]
    pub modified_attribute: Option<String>,
    #[serde(alias = "version_column")]
    pub version_attribute: Option<String>,
    /// PostgreSQL groups: the membership table.
    pub membership: Option<Spanned<MembershipTable>>,
    /// PostgreSQL users: where and how the gateway stores a password's hash; without it a
    /// password is refused.
    pub password: Option<Spanned<PasswordColumn>>,
    /// Users only.
    pub deactivation: Option<Spanned<Deactivation>>,
    /// Groups only.
    pub members: Option<Spanned<MembersConfig>>,
    /// A number attribute new entries get, allocated from a range (uidNumber, gidNumber).
    pub allocate: Option<Allocate>,
    /// Refuse requests that carry attributes no rule stores, instead of ignoring them.
    #[serde(default)]
    pub strict: bool,
    /// Extension schemas with typed attributes (Okta custom attributes).
    #[serde(default)]
    pub schema: Vec<ExtensionSchema>,
    #[serde(rename = "attribute")]
    pub attributes: Vec<AttributeRule>,
}

impl ResourceConfig {
    /// The id, created, modified and version attributes: as configured, or `dialect`'s.
    pub fn meta_attributes(&self, dialect: Dialect) -> [String; 4] {
        let meta = dialect.meta();
        let pick = |set: &Option<String>, default: &str| set.clone().unwrap_or_else(|| default.into());
        [
            pick(&self.id_attribute, meta.id),
            pick(&self.created_attribute, meta.created),
            pick(&self.modified_attribute, meta.modified),
            pick(&self.version_attribute, meta.version),
        ]
    }
}

/// Fills in what the file leaves to the dialect, and refuses what the server cannot do.
fn complete(
    directory: &DirectoryConfig,
    users: &mut ResourceConfig,
    groups: Option<&mut ResourceConfig>,
) -> Result<(), String> {
    if directory.is_postgres() {
        for r in std::iter::once(&mut *users).chain(groups) {
            let [id, created, modified, version] = postgres::META_COLUMNS.map(String::from);
            r.id_attribute.get_or_insert(id);
            r.created_attribute.get_or_insert(created);
            r.modified_attribute.get_or_insert(modified);
            r.version_attribute.get_or_insert(version);
        }
        if users.deactivation.is_none() {
            return Err("[users] needs deactivation = { strategy = \"column\", column = \"active\", inactive_value = \"false\", active_value = \"true\" }".into());
        }
        return Ok(());
    }
    let (dialect, range_size) = (directory.dialect, directory.range_size);
    for r in std::iter::once(&mut *users).chain(groups) {
        let [id, created, modified, version] = r.meta_attributes(dialect);
        (r.id_attribute, r.created_attribute) = (Some(id), Some(created));
        (r.modified_attribute, r.version_attribute) = (Some(modified), Some(version));
    }
    if dialect != Dialect::ActiveDirectory && range_size.is_some() {
        return Err("[directory] range_size is for dialect = \"active_directory\"".into());
    }
    if users.deactivation.is_none() {
        // Each dialect's own way to stop an account: ppolicy's lock on OpenLDAP, the
        // ACCOUNTDISABLE bit on AD.
        let default = match dialect {
            Dialect::OpenLdap => Deactivation::Ppolicy,
            Dialect::ActiveDirectory => Deactivation::AccountControl,
        };
        users.deactivation = Some(toml::Spanned::new(0..0, default));
    }
    if dialect == Dialect::ActiveDirectory
        && users.deactivation.as_ref().is_some_and(|d| *d.get_ref() == Deactivation::Ppolicy)
    {
        return Err("Active Directory has no ppolicy: use deactivation = { strategy = \"account_control\" }".into());
    }
    Ok(())
}

/// How a group stores its members.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersConfig {
    pub flavour: Flavour,
    /// groupOfNames / groupOfUniqueNames must have a member: this DN stands in while a
    /// group has none, and is never shown to the IdP.
    pub empty_member: Option<String>,
    /// posixGroup: the user attribute whose value `memberUid` holds.
    #[serde(default = "defaults::member_uid_attribute")]
    pub member_uid_attribute: String,
    /// How a user's `groups` are found.
    #[serde(default)]
    pub user_groups: UserGroups,
    /// Active Directory (`flavour = "group"`): the `groupType` of new groups.
    #[serde(default)]
    pub group_type: GroupType,
    /// Remove a deleted user from its groups explicitly, for directories without the
    /// refint overlay (and for posixGroup, whose memberUid refint does not follow).
    #[serde(default)]
    pub remove_deleted_users: bool,
}

/// `allocate = { attribute = "uidNumber", range = [10000, 59999] }`: each new entry gets the
/// next number from a counter entry (created on first use), which no two writers can take
/// alike, whichever gateway process they run in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocate {
    pub attribute: String,
    pub range: [u32; 2],
    /// The counter entry's DN; default `cn=scim-gateway-<attribute>,<base_dn>`.
    pub counter: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Flavour {
    #[serde(rename = "groupOfNames")]
    GroupOfNames,
    #[serde(rename = "groupOfUniqueNames")]
    GroupOfUniqueNames,
    #[serde(rename = "posixGroup")]
    PosixGroup,
    /// Active Directory's `group`: `member` DNs, may be empty, `groupType` set on create.
    #[serde(rename = "group")]
    Group,
}

/// Active Directory's `groupType` of new groups: scope and kind (MS-ADTS 2.2.12).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupType {
    #[default]
    GlobalSecurity,
    UniversalSecurity,
    DomainLocalSecurity,
    GlobalDistribution,
    UniversalDistribution,
    DomainLocalDistribution,
}

impl GroupType {
    /// The signed 32-bit value AD stores: scope bit, plus 0x80000000 for security groups.
    pub fn value(self) -> i32 {
        use GroupType::*;
        let scope: u32 = match self {
            GlobalSecurity | GlobalDistribution => 0x2,
            DomainLocalSecurity | DomainLocalDistribution => 0x4,
            UniversalSecurity | UniversalDistribution => 0x8,
        };
        let security = matches!(self, GlobalSecurity | UniversalSecurity | DomainLocalSecurity);
        (scope | if security { 0x8000_0000 } else { 0 }) as i32
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UserGroups {
    /// Read the users' `memberOf` (OpenLDAP memberof overlay, Active Directory).
    #[default]
    MemberOf,
    /// Search the groups for the user.
    Search,
}

/// How `active: false` is written to the directory.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Deactivation {
    /// Set `attribute` to `inactive_value`; active means any other value (or none). On
    /// reactivation the attribute is set to `active_value`, or removed when there is none.
    /// PostgreSQL: `strategy = "column"`, `column = "active"` (a boolean: `"false"`/`"true"`,
    /// or a status column: `"disabled"`/`"active"`).
    #[serde(alias = "column")]
    Attribute {
        #[serde(alias = "column")]
        attribute: String,
        inactive_value: String,
        active_value: Option<String>,
    },
    /// OpenLDAP ppolicy: a permanent `pwdAccountLockedTime` blocks binds.
    Ppolicy,
    /// Active Directory: bit 0x2 (ACCOUNTDISABLE) of `userAccountControl`, other bits kept.
    AccountControl,
}

/// One mapping rule: the LDAP attribute and where its value comes from — a SCIM path
/// (`scim`), a `template` of SCIM values, or a `constant` — plus how it is written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// The LDAP attribute, or on a PostgreSQL target the column (`column = "…"`).
    #[serde(alias = "column")]
    pub ldap: Spanned<String>,
    pub scim: Option<Spanned<String>>,
    /// Written from other SCIM values, e.g. `"{name.givenName} {name.familyName}"`.
    pub template: Option<Spanned<String>>,
    /// Written as this value on every create and update.
    pub constant: Option<String>,
    #[serde(default)]
    pub direction: Direction,
    /// Written when the resource has no value.
    pub default: Option<String>,
    /// Applied on write, in order: `lower`, `upper`, `trim`.
    #[serde(default)]
    pub transform: Vec<Spanned<String>>,
    /// A regex replacement applied on write, after `transform`: `[pattern, replacement]`.
    pub replace: Option<Spanned<[String; 2]>>,
    /// A boolean SCIM attribute stored as these strings: `[true, false]`, e.g. `["Y", "N"]`.
    pub boolean: Option<[String; 2]>,
    /// Creates and replacements must carry a value (advertised as `required` in /Schemas).
    #[serde(default)]
    pub required: bool,
    /// One SCIM string ⇄ several LDAP values, cut at (and joined with) this separator.
    pub split: Option<Spanned<String>>,
    /// Several SCIM values ⇄ one LDAP value, joined with (and cut at) this separator.
    pub join: Option<Spanned<String>>,
    /// A two-way conversion of the value's representation.
    pub convert: Option<Spanned<Convert>>,
    /// `"user"`: the SCIM value is a user's id, the directory holds that user's DN
    /// (enterprise `manager.value` ⇄ `manager`).
    pub reference: Option<Spanned<Reference>>,
    /// Characters the attribute cannot hold, dropped or replaced on write.
    pub characters: Option<Spanned<CharacterRule>>,
    /// At most this many characters (Unicode scalar values) are written; longer values are cut.
    pub max_length: Option<Spanned<usize>>,
    /// A derived value no other entry may hold: the candidates to try, in order.
    pub unique: Option<Spanned<UniqueRule>>,
}

/// `characters = { forbidden = "…" }` or `{ allowed = "a-z0-9._-" }`: what a value may hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharacterRule {
    /// These characters (and control characters) are replaced.
    pub forbidden: Option<String>,
    /// Only these characters are kept; `a-z` is a range, a `-` first or last is itself.
    pub allowed: Option<String>,
    /// What a refused character becomes; by default it is dropped.
    #[serde(default)]
    pub replacement: String,
    /// Characters a value may not end with (Active Directory: `.`), removed from its end.
    #[serde(default)]
    pub not_at_end: String,
}

/// `unique = { also = ["{name.givenName}.{name.familyName}"], suffixes = 99 }` on a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueRule {
    /// More templates, tried in order after the rule's own.
    #[serde(default)]
    pub also: Vec<String>,
    /// Then the rule's own value followed by 1, 2 … up to this number, cut to make room.
    #[serde(default)]
    pub suffixes: u32,
    /// What an update does when the values the template is made of change.
    #[serde(default)]
    pub on_change: OnChange,
    /// Where holders of a candidate are searched for: by default the entries' base_dn. Active
    /// Directory keeps sAMAccountName unique in the whole domain: give the domain's DN.
    pub base: Option<String>,
}

/// What happens to a unique derived value when its sources change.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// The value chosen on create stays (a logon name people know).
    #[default]
    Keep,
    /// A new free candidate is chosen (an RDN that follows the userName).
    Regenerate,
}

/// What a reference rule's SCIM value names.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    User,
}

/// An extension schema declared for Okta custom attributes (`[[users.schema]]`): the
/// attributes rules may map under its URN, with their SCIM types and behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionSchema {
    pub urn: Spanned<String>,
    #[serde(default, rename = "attribute")]
    pub attributes: Vec<ExtensionAttribute>,
}

/// One attribute of an [`ExtensionSchema`], described as RFC 7643 §7 describes attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionAttribute {
    pub name: Spanned<String>,
    #[serde(default, rename = "type")]
    pub kind: crate::scim::schema::Kind,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub mutability: crate::scim::schema::Mutability,
    #[serde(default)]
    pub returned: crate::scim::schema::Returned,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    pub description: Option<String>,
}

/// How a value is represented on each side, converted both ways.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Convert {
    /// SCIM dateTime (RFC 3339) ⇄ LDAP generalized time (`20261122220530Z`).
    GeneralizedTime,
    /// SCIM base64 text ⇄ LDAP bytes (`jpegPhoto`, `userCertificate;binary`).
    Base64,
}

/// Whether a `scim` rule is read from the directory, written to it, or both.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    Read,
    Write,
}

impl Direction {
    pub fn reads(self) -> bool {
        self != Direction::Write
    }
    pub fn writes(self) -> bool {
        self != Direction::Read
    }
}

/// Reads a secret given inline (`key`, `${ENV}` allowed) or as a file (`key_file`).
fn secret(key: &str, inline: &Option<Text>, file: &Option<Text>) -> Result<Secret, String> {
    let value = match (inline, file) {
        (Some(v), None) => v.0.clone(),
        (None, Some(path)) => std::fs::read_to_string(&path.0)
            .map_err(|e| format!("cannot read {key}_file {}: {e}", path.0))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        _ => return Err(format!("give exactly one of `{key}` and `{key}_file`")),
    };
    if value.is_empty() {
        return Err(format!("`{key}` is empty"));
    }
    Ok(Secret(value.into()))
}

/// A credential. Its `Debug` never shows the value; only [`Secret::expose`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A string with `${VAR}` and `${VAR:-default}` replaced from the environment when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Text> for PathBuf {
    fn from(t: Text) -> PathBuf {
        t.0.into()
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand(&raw, |name| std::env::var(name).ok()).map(Text).map_err(serde::de::Error::custom)
    }
}

fn expand(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unterminated `${{` in {raw:?}"))?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (&after[..end], None),
        };
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".into())
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("a${SET}b", env).unwrap(), "avalueb");
        assert_eq!(expand("${UNSET:-8080}", env).unwrap(), "8080");
        assert_eq!(expand("${SET:-x}", env).unwrap(), "value");
        assert_eq!(expand("plain $ text", env).unwrap(), "plain $ text");
        assert!(expand("${UNSET}", env).unwrap_err().contains("UNSET is not set"));
        assert!(expand("${OPEN", env).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn one_url_or_several() {
        let urls =
            |v: &str| toml::from_str::<toml::Table>(&format!("u = {v}")).unwrap()["u"].clone().try_into::<Urls>();
        assert_eq!(urls("\"ldap://a\"").unwrap().0, ["ldap://a"]);
        assert_eq!(urls("[\"ldap://a\", \"ldaps://b\"]").unwrap().0, ["ldap://a", "ldaps://b"]);
        assert!(urls("3").unwrap_err().to_string().contains("a URL or a list of URLs"));
    }

    #[test]
    fn group_types() {
        assert_eq!(GroupType::GlobalSecurity.value(), -2147483646);
        assert_eq!(GroupType::UniversalSecurity.value(), -2147483640);
        assert_eq!(GroupType::DomainLocalSecurity.value(), -2147483644);
        assert_eq!(GroupType::GlobalDistribution.value(), 2);
        assert_eq!(GroupType::UniversalDistribution.value(), 8);
    }

    #[test]
    fn errors_name_the_line() {
        let text = "[server]\nlisten = \"x\"\nbogus = 1\n".to_string();
        match Loaded::parse("g.toml", text) {
            Err(ConfigError::At { line, .. }) => assert_eq!(line, 3),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn completes_the_configuration() {
        use crate::dialect::OBJECT_GUID;
        let example = include_str!("../gateway.toml");
        let ad = example.replace("dialect = \"openldap\"", "dialect = \"active_directory\"");
        let e = Loaded::parse("g.toml", ad.clone()).err().expect("ppolicy refused").to_string();
        assert!(e.contains("no ppolicy"), "{e}");
        let ad = ad
            .replace("deactivation = { strategy = \"ppolicy\" }", "")
            .replace("id_attribute = \"entryUUID\"", "")
            .replace("created_attribute = \"createTimestamp\"", "")
            .replace("modified_attribute = \"modifyTimestamp\"", "")
            .replace("version_attribute = \"entryCSN\"", "");
        let c = Loaded::parse("g.toml", ad).unwrap().config;
        assert_eq!(c.users.deactivation.as_ref().map(|d| d.get_ref()), Some(&Deactivation::AccountControl));
        let [id, created, modified, version] = c.users.meta_attributes(Dialect::OpenLdap);
        assert_eq!(
            [id.as_str(), &created, &modified, &version],
            [OBJECT_GUID, "whenCreated", "whenChanged", "uSNChanged"]
        );
        assert_eq!(c.directory.dn_attribute(), "distinguishedName");
        let groups = c.groups.unwrap();
        assert_eq!(groups.id_attribute.as_deref(), Some(OBJECT_GUID), "filled for groups too");
        let ranged = example.replace("page_size = 500", "page_size = 500\nrange_size = 100");
        let e = Loaded::parse("g.toml", ranged).err().expect("range_size refused").to_string();
        assert!(e.contains("range_size is for"), "{e}");
        let plain = Loaded::parse("g.toml", example.into()).unwrap().config;
        assert_eq!(plain.users.id_attribute.as_deref(), Some("entryUUID"));
        assert_eq!(plain.directory.dn_attribute(), "entryDN");
    }

    #[test]
    fn ppolicy_is_the_default_deactivation() {
        let example = include_str!("../gateway.toml");
        let text = example.replace("deactivation = { strategy = \"ppolicy\" }", "");
        assert_ne!(text, example);
        let c = Loaded::parse("g.toml", text).unwrap().config;
        assert_eq!(c.users.deactivation.as_ref().map(|d| d.get_ref()), Some(&Deactivation::Ppolicy));
    }
}
