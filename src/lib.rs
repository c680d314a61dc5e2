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
        let schema = self.directory.subschema().await?;
        let mut found = self.app.users.mapping().check_schema(&schema);
        if let Some(g) = &self.app.groups {
            found.extend(g.mapping().check_schema(&schema));
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
        let at = |e: mapping::RuleError| loaded.error_at(e.span, e.message);
        let users = UserMapping::compile(&cfg.users).map_err(at)?;
        let groups = cfg.groups.as_ref().map(GroupMapping::compile).transpose().map_err(at)?;
        let dn_attr = cfg.directory.dn_attribute();
        let tls = cfg.server.tls.as_ref().map(http::Certificates::load).transpose().map_err(file_error)?;
        let max_in_flight = cfg.server.max_in_flight.max(1);
        let cache = Arc::new(UserCache::new(&cfg.cache, metrics.clone()));
        let lister = Arc::new(provision::Lister::new(&cfg.query, metrics.clone()));
        let app = http::App {
            base_path: cfg.server.base_path.get_ref().clone(),
            public_url: cfg.server.public_url.as_ref().map(|u| u.as_str().to_owned()),
            tls: cfg.server.tls.is_some(),
            max_body: cfg.server.max_body_bytes,
            request_timeout: cfg.server.request_timeout(),
            in_flight: tokio::sync::Semaphore::new(max_in_flight),
            max_in_flight,
            auth: http::Authenticator::new(&cfg.auth).map_err(file_error)?,
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
                cfg.directory.dialect,
                groups.map(|g| (g, dn_attr)),
                cache,
                lister,
            ),
            directory: directory.clone(),
            metrics,
        };
        Ok(Gateway { app: Arc::new(app), directory, tls: tls.map(Arc::new) })
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
