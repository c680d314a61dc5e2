//! scim-gateway: a SCIM 2.0 service provider in front of an LDAP directory.
//!
//! Data flows one way: [`http`] → [`provision`] → ([`scim`], [`mapping`], [`cache`]) → [`directory`];
//! [`metrics`] is fed from every layer.
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod directory;
pub mod explain;
pub mod http;
pub mod mapping;
pub mod metrics;
pub mod provision;
pub mod scim;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cache::UserCache;
use config::{ConfigError, Loaded};
use directory::{ldap::LdapDirectory, Directory};
use mapping::{GroupMapping, UserMapping};
use metrics::Metrics;
use scim::discovery::{GROUP, USER};

/// What one target is made of: the default one's top-level sections, or a `[[targets]]` table.
struct Site<'a> {
    name: &'a str,
    base_path: &'a String,
    auth: &'a config::AuthConfig,
    directory: &'a config::DirectoryConfig,
    cache: &'a config::CacheConfig,
    users: &'a config::ResourceConfig,
    groups: Option<&'a config::ResourceConfig>,
}

/// A gateway assembled from its configuration, ready to serve.
pub struct Gateway {
    /// As configured at start; the server serves [`Reloader`]'s current one.
    pub app: Arc<http::App>,
    pub directory: Arc<dyn Directory>,
    /// The inbound TLS certificate, for [`http::Certificates::reload`].
    pub tls: Option<Arc<http::Certificates>>,
}

impl Gateway {
    /// What the directory's schema says about the mapping (see `scim-gateway check`).
    pub async fn check_schema(&self) -> Result<Vec<mapping::Finding>, directory::DirectoryError> {
        let mut found = Vec::new();
        for (i, app) in std::iter::once(&self.app).chain(&self.app.targets).enumerate() {
            let schema = app.directory.subschema().await?;
            // Findings about the default target read as before; the others name theirs.
            let within = |f: mapping::Finding| if i == 0 { f } else { f.within(&app.name) };
            found.extend(app.users.mapping().check_schema(&schema).into_iter().map(within));
            if let Some(g) = &app.groups {
                found.extend(g.mapping().check_schema(&schema).into_iter().map(within));
            }
        }
        Ok(found)
    }
}

impl Gateway {
    /// Compiles the rules and prepares the pool. Every configuration mistake surfaces here,
    /// with the file and line, before a port is opened.
    pub fn new(loaded: &Loaded) -> Result<Gateway, ConfigError> {
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let metrics = Arc::new(Metrics::new(loaded.config.directory.pool_size.max(1)));
        let directory = LdapDirectory::new(&loaded.config.directory, metrics.clone()).map_err(file_error)?;
        Self::assemble(loaded, Arc::new(directory), metrics)
    }

    /// The same, over any directory (`explain` records instead of writing).
    pub fn with_directory(loaded: &Loaded, directory: Arc<dyn Directory>) -> Result<Gateway, ConfigError> {
        Self::assemble(loaded, directory, Arc::new(Metrics::new(loaded.config.directory.pool_size.max(1))))
    }

    fn assemble(loaded: &Loaded, directory: Arc<dyn Directory>, metrics: Arc<Metrics>) -> Result<Gateway, ConfigError> {
        let cfg = &loaded.config;
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let tls = cfg.server.tls.as_ref().map(http::Certificates::load).transpose().map_err(file_error)?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(cfg.server.max_in_flight.max(1)));
        let default = Site {
            name: "default",
            base_path: cfg.server.base_path.get_ref(),
            auth: &cfg.auth,
            directory: &cfg.directory,
            cache: &cfg.cache,
            users: &cfg.users,
            groups: cfg.groups.as_ref(),
        };
        let mut app = Self::app(loaded, &default, directory.clone(), &in_flight, &metrics)?;
        for t in &cfg.targets {
            let site = Site {
                name: t.name.get_ref(),
                base_path: t.base_path.get_ref(),
                auth: &t.auth,
                directory: &t.directory,
                cache: &t.cache,
                users: &t.users,
                groups: t.groups.as_ref(),
            };
            let dir = LdapDirectory::new(&t.directory, metrics.clone()).map_err(file_error)?;
            app.targets.push(Arc::new(Self::app(loaded, &site, Arc::new(dir), &in_flight, &metrics)?));
        }
        Ok(Gateway { app: Arc::new(app), directory, tls: tls.map(Arc::new) })
    }

    /// The app of one target; the server settings and the in-flight cap are shared.
    fn app(
        loaded: &Loaded,
        site: &Site,
        directory: Arc<dyn Directory>,
        in_flight: &Arc<tokio::sync::Semaphore>,
        metrics: &Arc<Metrics>,
    ) -> Result<http::App, ConfigError> {
        let cfg = &loaded.config;
        let file_error = |message: String| ConfigError::File { path: loaded.path.clone(), message };
        let at = |e: mapping::RuleError| loaded.error_at(e.span, e.message);
        let users = UserMapping::compile(site.users).map_err(at)?;
        let groups = site.groups.map(GroupMapping::compile).transpose().map_err(at)?;
        let dn_attr = site.directory.dn_attribute();
        let cache = Arc::new(UserCache::new(site.cache, metrics.clone()));
        let lister = Arc::new(provision::Lister::new(&cfg.query, metrics.clone()));
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
        Ok(http::App {
            name: site.name.to_owned(),
            base_path: site.base_path.clone(),
            public_url: cfg.server.public_url.as_ref().map(|u| u.as_str().to_owned()),
            tls: cfg.server.tls.is_some(),
            max_body: cfg.server.max_body_bytes,
            request_timeout: cfg.server.request_timeout(),
            in_flight: in_flight.clone(),
            max_in_flight: cfg.server.max_in_flight.max(1),
            auth: http::Authenticator::with_oauth(site.auth, site.base_path, admins).map_err(file_error)?,
            advertised: [Some((USER, users.advertised())), groups.as_ref().map(|g| (GROUP, g.advertised()))]
                .into_iter()
                .flatten()
                .collect(),
            groups: groups.clone().map(|g| {
                provision::Groups::new(
                    directory.clone(),
                    g,
                    users.clone(),
                    dn_attr.clone(),
                    cache.clone(),
                    lister.clone(),
                )
            }),
            users: provision::Users::new(
                directory.clone(),
                users,
                site.directory.dialect,
                groups.map(|g| (g, dn_attr)),
                cache,
                lister,
            ),
            directory,
            metrics: metrics.clone(),
            targets: Vec::new(),
        })
    }

    /// The handle that swaps in a new configuration on SIGHUP.
    pub fn reloader(&self) -> Reloader {
        Reloader { live: Arc::new(ArcSwap::new(self.app.clone())), tls: self.tls.clone() }
    }

    /// Serves on `listener` until `shutdown` resolves, each request with `reloader`'s
    /// current configuration.
    pub async fn serve(
        self,
        loaded: &Loaded,
        reloader: &Reloader,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ConfigError> {
        let server = &loaded.config.server;
        let tls = self.tls.map(http::tls_acceptor).transpose();
        let tls = tls.map_err(|message| ConfigError::File { path: loaded.path.clone(), message })?;
        http::serve(reloader.live.clone(), listener, tls, server.header_read_timeout(), shutdown).await;
        Ok(())
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
        let directory = LdapDirectory::new(&loaded.config.directory, metrics.clone()).map_err(file_error)?;
        let fresh = Gateway::assemble(&loaded, Arc::new(directory), metrics)?;
        if let Some(tls) = &self.tls {
            tls.reload().map_err(file_error)?;
        }
        self.live.store(fresh.app);
        Ok(())
    }
}
