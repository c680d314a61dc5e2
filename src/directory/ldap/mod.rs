//! [`Directory`] over LDAP v3 with ldap3: paged searches, passwords, modrdn, and what the
//! [`Dialect`] says differs (binary ids, ranged attributes, `unicodePwd`).

mod dialect;
mod error;
mod pool;
mod range;

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
use crate::dialect::{unicode_pwd, Dialect};
use crate::metrics::Metrics;

pub struct LdapDirectory {
    pool: Pool,
    page_size: i32,
    dialect: Dialect,
    /// Every connection is encrypted: AD takes passwords only then.
    encrypted: bool,
    /// Ask for `member` in ranges of this many values.
    range_size: Option<u32>,
    metrics: Arc<Metrics>,
}

impl LdapDirectory {
    /// Prepares the pool; connections open on first use, so start-up does not need the directory.
    pub fn new(cfg: &DirectoryConfig, metrics: Arc<Metrics>) -> std::result::Result<Self, String> {
        Ok(LdapDirectory {
            pool: Pool::new(cfg, metrics.clone())?,
            page_size: cfg.dialect.page_size(cfg.page_size),
            dialect: cfg.dialect,
            encrypted: cfg.encrypted(),
            range_size: cfg.range_size.filter(|_| cfg.dialect == Dialect::ActiveDirectory),
            metrics,
        })
    }

    /// The value of the password attribute when the dialect writes passwords as one; refused
    /// over a connection without TLS, which AD would refuse anyway, less clearly.
    fn password_value(&self, password: &str) -> Result<Option<(&'static str, Vec<u8>)>> {
        let Some(attr) = self.dialect.password_attribute() else { return Ok(None) };
        if !self.encrypted {
            return Err(DirectoryError::Unsupported(
                "Active Directory takes passwords only over an encrypted connection: use an ldaps:// URL \
                 or starttls = true in [directory]"
                    .into(),
            ));
        }
        Ok(Some((attr, unicode_pwd(password))))
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

impl LdapDirectory {
    /// A paged search, given up (and abandoned on the server) once more than `max` entries came.
    /// Ranged values (AD's `member;range=…`) are then read to the end.
    async fn search_limited(&self, s: &Search, max: usize) -> Result<Option<Vec<Entry>>> {
        let filter = dialect::filter(self.dialect, &s.filter).to_string();
        let attrs = range::request(&s.attrs, self.range_size);
        let (page_size, dialect, step) = (self.page_size, self.dialect, self.range_size);
        self.run("search", true, |mut ldap| {
            let (filter, attrs) = (filter.clone(), attrs.clone());
            async move {
                let adapters: Vec<Box<dyn Adapter<_, _>>> =
                    vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page_size))];
                let mut stream = ldap.streaming_search_with(adapters, &s.base, scope(s.scope), &filter, attrs).await?;
                let mut entries = Vec::new();
                while let Some(raw) = stream.next().await? {
                    if entries.len() == max {
                        let (mut handle, id) = (stream.ldap_handle().clone(), stream.ldap_handle().last_id());
                        stream.finish().await;
                        handle.abandon(id).await?;
                        return Ok(None);
                    }
                    entries.push(range::entry(SearchEntry::construct(raw), dialect));
                }
                let done = stream.finish().await;
                match done.rc {
                    0 => {}
                    // The base itself is missing: nothing matches.
                    32 => return Ok(Some(Vec::new())),
                    _ => return Err(LdapError::LdapResult { result: done }),
                }
                let mut complete = Vec::with_capacity(entries.len());
                for (mut entry, pending) in entries {
                    range::follow(&mut ldap, &mut entry, pending, step).await?;
                    complete.push(entry);
                }
                Ok(Some(complete))
            }
        })
        .await
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
        Ok(self.search_limited(s, usize::MAX).await?.unwrap_or_default())
    }

    async fn search_at_most(&self, s: &Search, max: usize) -> Result<Option<Vec<Entry>>> {
        self.search_limited(s, max).await
    }

    async fn add(&self, dn: &str, attrs: &Attributes, binary: &Binary, password: Option<&str>) -> Result<()> {
        let mut raw: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attrs
            .iter()
            .map(|(k, v)| (k.clone().into_bytes(), v.iter().map(|x| x.clone().into_bytes()).collect()))
            .collect();
        raw.extend(binary.iter().map(|(k, v)| (k.clone().into_bytes(), v.iter().cloned().collect())));
        // AD: the password goes in the add itself, so the account never exists without it.
        let in_add = match password {
            Some(p) => self.password_value(p)?,
            None => None,
        };
        // Others: Password Modify right after the add.
        let by_exop = password.filter(|_| in_add.is_none());
        if let Some((attr, value)) = in_add {
            raw.push((attr.as_bytes().to_vec(), HashSet::from([value])));
        }
        self.run("add", false, |mut ldap| {
            let raw = raw.clone();
            async move { ldap.add(dn, raw).await?.success().map(drop) }
        })
        .await?;
        let Some(password) = by_exop else { return Ok(()) };
        if let Err(e) = self.set_password(dn, password).await {
            // A user without the password the IdP set is worse than none: undo the add.
            if let Err(undo) = self.delete(dn).await {
                tracing::error!(%dn, error = %undo, "could not remove a user whose password was refused");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn modify(&self, dn: &str, changes: &[Change]) -> Result<()> {
        let expanded: Vec<Change> = changes
            .iter()
            .flat_map(|c| match c {
                Change::Swap(a, old, new) => {
                    vec![Change::Delete(a.clone(), vec![old.clone()]), Change::Add(a.clone(), vec![new.clone()])]
                }
                other => vec![other.clone()],
            })
            .collect();
        let mods: Vec<Mod<&[u8]>> = expanded
            .iter()
            .map(|c| match c {
                Change::Replace(a, v) => Mod::Replace(a.as_bytes(), values(v)),
                Change::Add(a, v) => Mod::Add(a.as_bytes(), values(v)),
                Change::Delete(a, v) => Mod::Delete(a.as_bytes(), values(v)),
                Change::Binary(a, v) => Mod::Replace(a.as_bytes(), v.iter().map(Vec::as_slice).collect()),
                Change::Swap(..) => unreachable!("expanded above"),
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
        if let Some((attr, value)) = self.password_value(password)? {
            return self
                .run("password", false, |mut ldap| {
                    let change = vec![Mod::Replace(attr.as_bytes().to_vec(), HashSet::from([value.clone()]))];
                    async move { ldap.modify(dn, change).await?.success().map(drop) }
                })
                .await;
        }
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

    async fn authenticate(&self, dn: &str, password: &str) -> Result<bool> {
        if password.is_empty() || dn.is_empty() {
            return Ok(false);
        }
        let started = Instant::now();
        let result = self.pool.check_password(dn, password).await;
        let outcome = result.as_ref().err().map_or("ok", DirectoryError::kind);
        self.metrics.ldap_operation("user_bind", outcome, started.elapsed());
        result
    }

    async fn ping(&self) -> Result<()> {
        self.run("ping", true, |mut ldap| async move {
            ldap.search("", ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"]).await?.success().map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn active_directory_passwords_need_tls() {
        let text = "url = \"ldap://127.0.0.1:1\"\nbind_dn = \"svc@example.test\"\nbind_password = \"x\"\ndialect = \"active_directory\"";
        let cfg: DirectoryConfig = toml::from_str(text).unwrap();
        let dir = LdapDirectory::new(&cfg, Arc::new(Metrics::new(1))).unwrap();
        // Refused before any connection is tried (there is no server on port 1).
        for e in [
            dir.set_password("CN=a,DC=example,DC=test", "S3cret-pw").await.unwrap_err(),
            dir.add("CN=a,DC=example,DC=test", &vec![], &vec![], Some("S3cret-pw")).await.unwrap_err(),
        ] {
            let text = e.to_string();
            assert!(matches!(e, DirectoryError::Unsupported(_)) && text.contains("ldaps://"), "{text}");
            assert!(!text.contains("S3cret-pw"));
        }
        let tls: DirectoryConfig = toml::from_str(&text.replace("ldap://", "ldaps://")).unwrap();
        assert!(tls.encrypted());
        let starttls: DirectoryConfig = toml::from_str(&format!("{text}\nstarttls = true")).unwrap();
        assert!(starttls.encrypted() && !cfg.encrypted());
    }
}
