//! [`Directory`] over LDAP v3 with ldap3: paged searches, Password Modify, modrdn.

mod error;
mod pool;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapError, Mod, SearchEntry};

use self::error::from_ldap;
use self::pool::Pool;
use super::schema::Subschema;
use super::{Attributes, Binary, Change, Directory, DirectoryError, Entry, LdapFilter, Result, Scope, Search};
use crate::config::DirectoryConfig;
use crate::metrics::Metrics;

pub struct LdapDirectory {
    pool: Pool,
    page_size: i32,
    metrics: Arc<Metrics>,
}

impl LdapDirectory {
    /// Prepares the pool; connections open on first use, so start-up does not need the directory.
    pub fn new(cfg: &DirectoryConfig, metrics: Arc<Metrics>) -> std::result::Result<Self, String> {
        Ok(LdapDirectory { pool: Pool::new(cfg, metrics.clone())?, page_size: cfg.page_size.max(1), metrics })
    }

    /// [`Self::attempt`], timed and counted as `operation`.
    async fn run<T, F, Fut>(&self, operation: &'static str, retry: bool, op: F) -> Result<T>
    where
        F: Fn(Ldap) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, LdapError>>,
    {
        let started = Instant::now();
        let result = self.attempt(retry, op).await;
        let outcome = result.as_ref().err().map_or("ok", DirectoryError::kind);
        self.metrics.ldap_operation(operation, outcome, started.elapsed());
        result
    }

    /// Runs `op` on a pooled connection. A failure of the connection empties its slot;
    /// idempotent operations (`retry`) then run once more on a fresh one, which is what
    /// makes the gateway recover by itself after the directory restarts.
    async fn attempt<T, F, Fut>(&self, retry: bool, op: F) -> Result<T>
    where
        F: Fn(Ldap) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, LdapError>>,
    {
        let mut attempts = if retry { 2 } else { 1 };
        loop {
            attempts -= 1;
            let lease = self.pool.get().await?;
            let mut ldap = lease.ldap.clone();
            ldap.with_timeout(self.pool.timeout);
            match op(ldap).await.map_err(from_ldap) {
                Err(e @ DirectoryError::Unavailable(_)) => {
                    self.pool.discard(&lease).await;
                    if attempts == 0 {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

fn scope(s: Scope) -> ldap3::Scope {
    match s {
        Scope::Base => ldap3::Scope::Base,
        Scope::OneLevel => ldap3::Scope::OneLevel,
        Scope::Subtree => ldap3::Scope::Subtree,
    }
}

fn values(v: &[String]) -> HashSet<&[u8]> {
    v.iter().map(String::as_bytes).collect()
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn search(&self, s: &Search) -> Result<Vec<Entry>> {
        let filter = s.filter.to_string();
        let page_size = self.page_size;
        self.run("search", true, |mut ldap| {
            let (filter, attrs) = (filter.clone(), s.attrs.clone());
            async move {
                let adapters: Vec<Box<dyn Adapter<_, _>>> =
                    vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page_size))];
                let mut stream = ldap.streaming_search_with(adapters, &s.base, scope(s.scope), &filter, attrs).await?;
                let mut entries = Vec::new();
                while let Some(raw) = stream.next().await? {
                    let e = SearchEntry::construct(raw);
                    let mut entry = Entry::new(e.dn);
                    for (k, v) in e.attrs {
                        entry.insert(&k, v);
                    }
                    for (k, v) in e.bin_attrs {
                        entry.insert_binary(&k, v);
                    }
                    entries.push(entry);
                }
                let done = stream.finish().await;
                match done.rc {
                    0 => Ok(entries),
                    // The base itself is missing: nothing matches.
                    32 => Ok(Vec::new()),
                    _ => Err(LdapError::LdapResult { result: done }),
                }
            }
        })
        .await
    }

    async fn add(&self, dn: &str, attrs: &Attributes, binary: &Binary) -> Result<()> {
        let mut attrs: Vec<(&[u8], HashSet<&[u8]>)> =
            attrs.iter().map(|(k, v)| (k.as_bytes(), v.iter().map(String::as_bytes).collect())).collect();
        attrs.extend(binary.iter().map(|(k, v)| (k.as_bytes(), v.iter().map(Vec::as_slice).collect())));
        self.run("add", false, |mut ldap| {
            let attrs = attrs.clone();
            async move { ldap.add(dn, attrs).await?.success().map(drop) }
        })
        .await
    }

    async fn modify(&self, dn: &str, changes: &[Change]) -> Result<()> {
        let mods: Vec<Mod<&[u8]>> = changes
            .iter()
            .map(|c| match c {
                Change::Replace(a, v) => Mod::Replace(a.as_bytes(), values(v)),
                Change::Add(a, v) => Mod::Add(a.as_bytes(), values(v)),
                Change::Delete(a, v) => Mod::Delete(a.as_bytes(), values(v)),
                Change::Binary(a, v) => Mod::Replace(a.as_bytes(), v.iter().map(Vec::as_slice).collect()),
            })
            .collect();
        self.run("modify", false, |mut ldap| {
            let mods = mods.clone();
            async move { ldap.modify(dn, mods).await?.success().map(drop) }
        })
        .await
    }

    async fn compare(&self, dn: &str, attr: &str, value: &str) -> Result<bool> {
        self.run("compare", true, |mut ldap| async move { ldap.compare(dn, attr, value).await?.equal() }).await
    }

    async fn rename(&self, dn: &str, new_rdn: &str) -> Result<()> {
        self.run("rename", false, |mut ldap| async move {
            ldap.modifydn(dn, new_rdn, true, None).await?.success().map(drop)
        })
        .await
    }

    async fn delete(&self, dn: &str) -> Result<()> {
        self.run("delete", false, |mut ldap| async move { ldap.delete(dn).await?.success().map(drop) }).await
    }

    async fn set_password(&self, dn: &str, password: &str) -> Result<()> {
        self.run("password", false, |mut ldap| async move {
            let exop = PasswordModify { user_id: Some(dn), old_pass: None, new_pass: Some(password) };
            ldap.extended(exop).await?.success().map(drop)
        })
        .await
    }

    async fn subschema(&self) -> Result<Subschema> {
        let root = Search {
            base: String::new(),
            scope: Scope::Base,
            filter: LdapFilter::Configured("objectClass=*".into()),
            attrs: vec!["subschemaSubentry".into()],
        };
        let dn = self.search(&root).await?.pop().and_then(|e| e.first("subschemaSubentry").map(str::to_owned));
        let dn = dn
            .ok_or_else(|| DirectoryError::Other { code: 0, text: "the root DSE names no subschemaSubentry".into() })?;
        let attrs = vec!["attributeTypes".into(), "objectClasses".into()];
        let sub = Search {
            base: dn,
            scope: Scope::Base,
            filter: LdapFilter::Configured("objectClass=subschema".into()),
            attrs,
        };
        let entry = self.search(&sub).await?.pop().unwrap_or_default();
        Ok(Subschema::parse(entry.values("attributeTypes"), entry.values("objectClasses")))
    }

    async fn ping(&self) -> Result<()> {
        self.run("ping", true, |mut ldap| async move {
            ldap.search("", ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"]).await?.success().map(drop)
        })
        .await
    }
}
