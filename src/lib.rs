//! scim-gateway: a SCIM 2.0 service provider in front of an LDAP directory.
//!
//! Data flows one way: [`http`] → [`provision`] → ([`scim`], [`mapping`], [`cache`]) → [`directory`];
//! [`config`] and [`dialect`] (what differs between directory servers) stand below them all;
//! [`metrics`] is fed from every layer.
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod dialect;
pub mod directory;
pub mod explain;
pub mod http;
pub mod logs;
pub mod mapping;
pub mod metrics;
pub mod provision;
pub mod scim;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cache::UserCache;
use config::ResourceConfig;
use config::{ConfigError, Loaded, Site};
use directory::postgres::{sql::Columns, PgStore, Table, Tables};
use directory::{ldap::LdapDirectory, Directory};
use http::Backend;
use mapping::{Entity, GroupMapping, UserMapping};
use metrics::Metrics;
use scim::discovery::{GROUP, USER};

/// A gateway assembled from its configuration, ready to serve.
pub struct Gateway {
    /// As configured at start; the server serves [`Reloader`]'s current one.
    pub app: Arc<http::App>,
    /// The inbound TLS certificate, for [`http::Certificates::reload`].
    pub tls: Option<Arc<http::Certificates>>,
}

impl Gateway {
    /// What the directory's schema says about the mapping (see `scim-gateway check`).
    pub async fn check_schema(&self) -> Result<Vec<mapping::Finding>, directory::DirectoryError> {
        let mut found = Vec::new();
        for (i, app) in self.apps().enumerate() {
            // Findings about the default target read as before; the others name theirs.
            let within = |f: mapping::Finding| if i == 0 { f } else { f.within(&app.name) };
            let directory = match &app.backend {
                Backend::Directory(d) => d,
                Backend::Records(store) => {
                    for catalog in store.catalog().await? {
                        let checked = match catalog.kind {
                            Some(directory::records::Kind::Users) => app.user_mapping.check_columns(&catalog),
                            Some(directory::records::Kind::Groups) => {
                                app.group_mapping.as_ref().map(|g| g.check_columns(&catalog)).unwrap_or_default()
                            }
                            None => mapping::check_membership(&catalog),
                        };
                        found.extend(checked.into_iter().map(within));
                    }
                    continue;
                }
            };
            let schema = directory.subschema().await?;
            found.extend(app.user_mapping.check_schema(&schema).into_iter().map(within));
            if let Some(g) = &app.group_mapping {
                found.extend(g.check_schema(&schema).into_iter().map(within));
            }
        }
        Ok(found)
    }
}

impl Gateway {
    /// Every target's app, the default one first.
    pub fn apps(&self) -> impl Iterator<Item = &Arc<http::App>> {
        std::iter::once(&self.app).chain(&self.app.targets)
    }

    /// The app of the target called `name` (`default` for the top-level sections).
    pub fn app_named(&self, name: &str) -> Result<&Arc<http::App>, String> {
        self.apps().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.apps().map(|a| a.name.as_str()).collect();
            format!("no target is called {name:?}: the targets are {}", names.join(", "))
        })
    }

    /// Compiles the rules and prepares the pool. Every configuration mistake surfaces here,
    /// with the file and line, before a port is opened.
    pub fn new(loaded: &Loaded) -> Result<Gateway, ConfigError> {
        let metrics = Arc::new(Metrics::new(loaded.config.directory.pool_size.max(1)));
        Self::assemble(loaded, metrics, InFlight::new(loaded), |_| None)
    }

    /// The same, with the directory or record store of the target `site` replaced
    /// (`explain` records instead of writing).
    pub fn with_backend(loaded: &Loaded, site: &str, backend: Backend) -> Result<Gateway, ConfigError> {
        let metrics = Arc::new(Metrics::new(loaded.config.directory.pool_size.max(1)));
        Self::assemble(loaded, metrics, InFlight::new(loaded), |s| (s.name == site).then(|| backend.clone()))
    }

    /// Every target's app, each over `instead`'s store or one of its own.
    fn assemble(
        loaded: &Loaded,
        metrics: Arc<Metrics>,
        in_flight: InFlight,
        instead: impl Fn(&Site) -> Option<Backend>,
    ) -> Result<Gateway, ConfigError> {
        let cfg = &loaded.config;
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let tls = cfg.server.tls.as_ref().map(http::Certificates::load).transpose().map_err(file_error)?;
        let mut apps = Vec::new();
        for site in cfg.sites() {
            apps.push(Self::app(loaded, &site, instead(&site), &in_flight, &metrics)?);
        }
        let mut apps = apps.into_iter();
        let mut app = apps.next().expect("the default target");
        app.targets = apps.map(Arc::new).collect();
        Ok(Gateway { app: Arc::new(app), tls: tls.map(Arc::new) })
    }

    /// The app of one target (over `instead` when given, else the store its `[directory]`
    /// names); the server settings and the in-flight cap are shared.
    fn app(
        loaded: &Loaded,
        site: &Site,
        instead: Option<Backend>,
        in_flight: &InFlight,
        metrics: &Arc<Metrics>,
    ) -> Result<http::App, ConfigError> {
        let cfg = &loaded.config;
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let at = |e: mapping::RuleError| loaded.error_at(e.span, e.message);
        let users = UserMapping::compile(site.users).map_err(at)?;
        let groups = site.groups.map(GroupMapping::compile).transpose().map_err(at)?;
        let cache = Arc::new(UserCache::new(site.cache, metrics.clone()));
        let limits = cfg.limits.limits();
        let backend = match instead {
            Some(b) => b,
            None if site.directory.is_postgres() => {
                let tables = Tables {
                    users: table(site.users, &users),
                    groups: site.groups.zip(groups.as_ref()).map(|(cfg, g)| table(cfg, g)),
                    membership: site.groups.and_then(|g| g.membership.as_ref()).map(|m| m.get_ref().clone()),
                };
                Backend::Records(Arc::new(PgStore::new(site.directory, tables).map_err(file_error)?))
            }
            None => {
                Backend::Directory(Arc::new(LdapDirectory::new(site.directory, metrics.clone()).map_err(file_error)?))
            }
        };
        let services = match backend {
            Backend::Records(store) => Self::tables(loaded, site, store, (&users, &groups), cache, &limits)?,
            Backend::Directory(d) => Self::ldap(loaded, site, d, (&users, &groups), cache, &limits, metrics)?,
        };
        Ok(http::App {
            name: site.name.to_owned(),
            base_path: site.base_path.get_ref().clone(),
            public_url: cfg.server.public_url.as_ref().map(|u| u.as_str().to_owned()),
            tls: cfg.server.tls.is_some(),
            max_body: cfg.server.max_body_bytes,
            body_read_timeout: cfg.server.body_read_timeout(),
            limits,
            request_timeout: cfg.server.request_timeout(),
            in_flight: in_flight.permits.clone(),
            max_in_flight: in_flight.max,
            auth: http::Authenticator::with_oauth(site.auth, site.base_path.get_ref(), services.admins)
                .map_err(file_error)?,
            advertised: [Some((USER, users.advertised())), groups.as_ref().map(|g| (GROUP, g.advertised()))]
                .into_iter()
                .flatten()
                .collect(),
            users: services.users,
            groups: services.groups,
            user_mapping: users,
            group_mapping: groups,
            backend: services.backend,
            readiness: http::Readiness::default(),
            metrics_token: cfg.server.metrics_token().map_err(file_error)?,
            metrics: metrics.clone(),
            targets: Vec::new(),
        })
    }

    /// `/Users` and `/Groups` over an LDAP directory.
    fn ldap(
        loaded: &Loaded,
        site: &Site,
        directory: Arc<dyn Directory>,
        (users, groups): (&UserMapping, &Option<GroupMapping>),
        cache: Arc<UserCache>,
        limits: &scim::limits::Limits,
        metrics: &Arc<Metrics>,
    ) -> Result<Services, ConfigError> {
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let dn_attr = site.directory.dn_attribute();
        let lister = Arc::new(provision::Lister::new(&loaded.config.query, metrics.clone()));
        let admins = site.auth.oauth.as_ref().map(|o| {
            let group = o.admin_group.as_ref().map(config::Text::as_str);
            provision::Admins::new(
                directory.clone(),
                users.clone(),
                &o.login_attribute,
                group,
                &o.admin_group_attribute,
            )
        });
        let admins = admins.transpose().map_err(file_error)?;
        let group_service = groups.clone().map(|g| {
            let service = provision::Groups::new(
                directory.clone(),
                g,
                users.clone(),
                dn_attr.clone(),
                cache.clone(),
                lister.clone(),
            );
            Arc::new(service) as Arc<dyn provision::Resources>
        });
        let user_service = provision::Users::new(
            directory.clone(),
            users.clone(),
            site.directory.dialect,
            groups.clone().map(|g| (g, dn_attr)),
            cache,
            lister,
            limits.clone(),
        );
        Ok(Services {
            users: Arc::new(user_service),
            groups: group_service,
            admins,
            backend: Backend::Directory(directory),
        })
    }

    /// `/Users` and `/Groups` over the tables of a PostgreSQL target.
    fn tables(
        loaded: &Loaded,
        site: &Site,
        store: Arc<dyn directory::records::Records>,
        (users, groups): (&UserMapping, &Option<GroupMapping>),
        cache: Arc<UserCache>,
        limits: &scim::limits::Limits,
    ) -> Result<Services, ConfigError> {
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        if site.auth.oauth.is_some() {
            return Err(file_error(format!(
                "{}[auth.oauth] logs people in against an LDAP directory; a kind = \"postgres\" target uses bearer, basic or jwt",
                site.within
            )));
        }
        let query = &loaded.config.query;
        let keys = Arc::new(provision::Keys::new(query));
        let max = query.max_candidates.max(1);
        let password = site.users.password.as_ref().map(|p| p.get_ref().clone());
        let group_service = groups.clone().map(|g| {
            let service =
                provision::TableGroups::new(store.clone(), g, users.clone(), keys.clone(), limits.clone(), max);
            Arc::new(service) as Arc<dyn provision::Resources>
        });
        let user_service = provision::TableUsers::new(
            store.clone(),
            users.clone(),
            groups.clone(),
            password,
            cache,
            keys,
            limits.clone(),
            max,
        );
        Ok(Services {
            users: Arc::new(user_service),
            groups: group_service,
            admins: None,
            backend: Backend::Records(store),
        })
    }

    /// The handle that swaps in a new configuration on SIGHUP.
    pub fn reloader(&self) -> Reloader {
        Reloader { live: Arc::new(ArcSwap::new(self.app.clone())), tls: self.tls.clone() }
    }

    /// Serves on `listener` (and `[server] probe_listen`, bound here) until `shutdown`
    /// resolves, each request with `reloader`'s current configuration.
    pub async fn serve(
        self,
        loaded: &Loaded,
        reloader: &Reloader,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ConfigError> {
        let server = &loaded.config.server;
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let tls = self.tls.map(http::tls_acceptor).transpose().map_err(file_error)?;
        let mut listeners = vec![(listener, http::Surface::All)];
        if let Some(addr) = &server.probe_listen {
            let probes = tokio::net::TcpListener::bind(addr.as_str())
                .await
                .map_err(|e| file_error(format!("[server] probe_listen {}: {e}", addr.as_str())))?;
            listeners = vec![(listeners.remove(0).0, http::Surface::Scim), (probes, http::Surface::Probes)];
        }
        let limits = http::Limits {
            deadlines: http::Deadlines { first_request: server.header_read_timeout(), idle: server.idle_timeout() },
            max_connections: server.max_connections,
        };
        http::serve(reloader.live.clone(), listeners, tls, limits, shutdown).await;
        Ok(())
    }
}

/// The services of one target and what they run on.
struct Services {
    users: Arc<dyn provision::Resources>,
    groups: Option<Arc<dyn provision::Resources>>,
    admins: Option<provision::Admins>,
    backend: Backend,
}

/// A table as the PostgreSQL store reads it: every column the rules read, the id and meta
/// columns, timestamps as generalized time (what the mapping's `meta` reads).
fn table(cfg: &ResourceConfig, entity: &Entity) -> Table {
    let members = cfg.membership.as_ref().map(|m| (m.get_ref().clone(), entity.id_attr.clone()));
    let mut columns = vec![entity.id_attr.clone()];
    for c in &entity.read_attrs {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    Table {
        name: cfg.table.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default(),
        id: entity.id_attr.clone(),
        columns,
        modified: Some(entity.modified_attr.clone()),
        version: entity.version_attr.clone(),
        password: cfg.password.as_ref().map(|p| p.get_ref().column.clone()),
        text: Columns { times: vec![entity.created_attr.clone(), entity.modified_attr.clone()], members },
    }
}

/// The one in-flight limit, `server.max_in_flight` permits shared by every target and kept
/// across reloads (a new one would let twice as many requests run while the old ones finish).
/// Changing `max_in_flight` therefore needs a restart.
struct InFlight {
    permits: Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl InFlight {
    fn new(loaded: &Loaded) -> InFlight {
        let max = loaded.config.server.max_in_flight.max(1);
        InFlight { permits: Arc::new(tokio::sync::Semaphore::new(max)), max }
    }
}

/// Hot reload: a new `gateway.toml` is read, compiled and connected in full before it
/// replaces the running configuration in one atomic swap. Requests in flight finish with the
/// configuration they started with; a file with any mistake changes nothing.
#[derive(Clone)]
pub struct Reloader {
    live: Arc<ArcSwap<http::App>>,
    tls: Option<Arc<http::Certificates>>,
}

impl Reloader {
    /// Re-reads `path` and swaps it in, and re-reads the inbound certificate. The listening
    /// address and the TLS file names are fixed at start: changing them needs a restart.
    pub fn reload(&self, path: &str) -> Result<(), ConfigError> {
        let loaded = Loaded::read(path)?;
        // The same metrics registry: counters survive a reload.
        let metrics = self.live.load().metrics.clone();
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        // The same in-flight limit: requests running on the old configuration still count.
        let live = self.live.load();
        let in_flight = InFlight { permits: live.in_flight.clone(), max: live.max_in_flight };
        let fresh = Gateway::assemble(&loaded, metrics, in_flight, |_| None)?;
        if let Some(tls) = &self.tls {
            tls.reload().map_err(file_error)?;
        }
        self.live.store(fresh.app);
        Ok(())
    }
}
