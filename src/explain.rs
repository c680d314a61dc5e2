//! `scim-gateway explain`: what a SCIM request would do to the directory, without doing it.
//! The request runs through the real provisioning code against a [`Recorder`]: reads go to
//! the directory, writes are recorded and printed as LDIF.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use crate::directory::ldif::Write;
use crate::directory::records::{Catalog, Kind, MemberChange, Page, PageQuery, Records, Set, Write as RecordWrite};
use crate::directory::schema::Subschema;
use crate::directory::{
    Attributes, Binary, Change, Directory, DirectoryError, Entry, LdapFilter, Result, Scope, Search,
};
use crate::http::App;
use crate::mapping::Entity;
use crate::scim::list::Projection;

/// A directory that performs reads and records writes.
pub struct Recorder {
    inner: Arc<dyn Directory>,
    writes: Mutex<Vec<Write>>,
}

impl Recorder {
    pub fn new(inner: Arc<dyn Directory>) -> Self {
        Recorder { inner, writes: Mutex::new(Vec::new()) }
    }

    /// The recorded writes, as LDIF.
    pub fn ldif(&self) -> String {
        let writes = self.writes.lock().expect("recorder lock");
        writes.iter().map(Write::to_ldif).collect::<Vec<_>>().join("\n")
    }

    fn record(&self, w: Write) {
        self.writes.lock().expect("recorder lock").push(w);
    }

    /// An entry this session "added", so the read-back after a create finds it.
    fn added(&self, dn: &str) -> Option<Entry> {
        let writes = self.writes.lock().expect("recorder lock");
        writes.iter().find_map(|w| match w {
            Write::Add { dn: d, attrs, binary } if d.eq_ignore_ascii_case(dn) => {
                let mut e = Entry::new(d.clone());
                for (a, v) in attrs {
                    e.insert(a, v.clone());
                }
                for (a, v) in binary {
                    e.insert_binary(a, v.clone());
                }
                // Not yet assigned by the directory: shown as such in the resource.
                for id in ["entryUUID", crate::dialect::OBJECT_GUID] {
                    e.insert(id, vec!["00000000-0000-0000-0000-000000000000".into()]);
                }
                Some(e)
            }
            _ => None,
        })
    }

    /// Where an entry "renamed" in this session was before.
    fn before_rename(&self, dn: &str) -> Option<String> {
        let writes = self.writes.lock().expect("recorder lock");
        writes.iter().rev().find_map(|w| match w {
            Write::Rename { dn: old, new_rdn } => {
                let parent = crate::directory::dn::split(old).1;
                crate::directory::dn::child(new_rdn, parent).eq_ignore_ascii_case(dn).then(|| old.clone())
            }
            _ => None,
        })
    }
}

#[async_trait]
impl Directory for Recorder {
    async fn search(&self, s: &Search) -> Result<Vec<Entry>> {
        if s.scope == Scope::Base {
            if let Some(e) = self.added(&s.base) {
                return Ok(vec![e]);
            }
            if let Some(old) = self.before_rename(&s.base) {
                let moved = Search { base: old, ..s.clone() };
                return self.inner.search(&moved).await;
            }
        }
        self.inner.search(s).await
    }
    async fn add(&self, dn: &str, attrs: &Attributes, binary: &Binary, password: Option<&str>) -> Result<()> {
        if !self.inner.search(&base(dn)).await?.is_empty() {
            return Err(DirectoryError::AlreadyExists);
        }
        self.record(Write::Add { dn: dn.into(), attrs: attrs.clone(), binary: binary.clone() });
        if password.is_some() {
            self.record(Write::SetPassword { dn: dn.into() });
        }
        Ok(())
    }
    async fn modify(&self, dn: &str, changes: &[Change]) -> Result<()> {
        self.record(Write::Modify { dn: dn.into(), changes: changes.to_vec() });
        Ok(())
    }
    async fn compare(&self, dn: &str, attr: &str, value: &str) -> Result<bool> {
        self.inner.compare(dn, attr, value).await
    }
    async fn rename(&self, dn: &str, new_rdn: &str) -> Result<()> {
        self.record(Write::Rename { dn: dn.into(), new_rdn: new_rdn.into() });
        Ok(())
    }
    async fn delete(&self, dn: &str) -> Result<()> {
        self.record(Write::Delete { dn: dn.into() });
        Ok(())
    }
    async fn set_password(&self, dn: &str, _password: &str) -> Result<()> {
        self.record(Write::SetPassword { dn: dn.into() });
        Ok(())
    }
    async fn subschema(&self) -> Result<Subschema> {
        self.inner.subschema().await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

fn base(dn: &str) -> Search {
    Search {
        base: dn.into(),
        scope: Scope::Base,
        filter: crate::directory::LdapFilter::Configured("objectClass=*".into()),
        attrs: vec!["1.1".into()],
    }
}

/// Runs `method path` with `body` through `app` (built over a [`Recorder`]). The answer
/// is not shown: nothing was written, so it would show the entry as it was.
pub async fn request(app: &App, method: &str, path: &str, body: Option<Value>) -> std::result::Result<(), String> {
    let (endpoint, id) = parse_target(path)?;
    let service = app.resources(&endpoint).ok_or_else(|| format!("no resource type at /{endpoint}"))?;
    let root = root(app);
    let body = || body.clone().ok_or_else(|| format!("{method} needs --body FILE (or - for standard input)"));
    let fail = |e: crate::provision::Error| format!("the gateway would refuse this request: {e}");
    match (method.to_ascii_uppercase().as_str(), id.as_deref()) {
        ("POST", None) => {
            let body = body()?;
            if endpoint.eq_ignore_ascii_case("Users") {
                print!("{}", candidates(app, &body));
            }
            service.create(&body, &root).await.map(drop).map_err(fail)
        }
        ("PUT", Some(id)) => service.replace(id, &body()?, None, &root).await.map(drop).map_err(fail),
        ("PATCH", Some(id)) => {
            service.patch(id, &body()?, None, &Projection::default(), &root).await.map(drop).map_err(fail)
        }
        ("DELETE", Some(id)) => service.delete(id, None).await.map_err(fail),
        (m, _) => {
            Err(format!("{m} {path}: explain takes POST /Users, PUT, PATCH or DELETE /Users/{{id}} (or /Groups)"))
        }
    }
}

/// The candidates each unique rule would try for a new user, as LDIF comments (the write
/// below shows the one taken).
fn candidates(app: &App, body: &Value) -> String {
    let map = &app.user_mapping;
    let Some(res) = body.as_object() else { return String::new() };
    let Ok(w) = map.to_write(res) else { return String::new() };
    let mut out = String::new();
    for c in map.candidates(res, &w.attrs) {
        let list = c.values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!(
            "# {}: candidates in order, the first no entry below {} holds: {list}\n",
            c.ldap, c.base
        ));
    }
    out
}

/// The SCIM resource the entry at `dn` maps to, user or group.
pub async fn entry(app: &App, dn: &str) -> std::result::Result<Value, String> {
    let root = root(app);
    let directory = app.backend.directory().ok_or("--dn names LDAP entries; this target keeps its users in tables")?;
    let mut kinds = vec![("Users", &*app.user_mapping as &Entity)];
    kinds.extend(app.group_mapping.as_ref().map(|g| ("Groups", &**g as &Entity)));
    for (endpoint, entity) in kinds {
        let search = Search {
            base: dn.into(),
            scope: Scope::Base,
            filter: entity.filter.clone(),
            attrs: vec![entity.id_attr.clone()],
        };
        let found = directory.search(&search).await.map_err(|e| format!("{dn}: {e}"))?;
        if let Some(id) = found.first().and_then(|e| e.first(&entity.id_attr)) {
            let service = app.resources(endpoint).expect("configured");
            return service.get(id, &Projection::default(), &root).await.map(|j| j.value()).map_err(|e| e.to_string());
        }
    }
    Err(format!("{dn} is neither a user nor a group the configuration serves"))
}

fn root(app: &App) -> String {
    let origin = app.public_url.clone().unwrap_or_else(|| "http://localhost".into());
    format!("{}{}", origin.trim_end_matches('/'), app.base_path)
}

/// The request line `METHOD /Users[/id]` (relative to the base path) as (endpoint, id).
pub fn parse_target(path: &str) -> std::result::Result<(String, Option<String>), String> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [endpoint] => Ok((endpoint.to_string(), None)),
        [endpoint, id] => Ok((endpoint.to_string(), Some(id.to_string()))),
        _ => Err(format!("{path:?}: give /Users, /Users/{{id}}, /Groups or /Groups/{{id}}")),
    }
}

/// Reads a JSON body from a file, or standard input for `-`.
pub fn read_body(source: &str) -> std::result::Result<Value, String> {
    let text = if source == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(source).map_err(|e| format!("{source}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{source}: not JSON: {e}"))
}

/// A record store that performs reads and describes writes (`explain` of a PostgreSQL
/// target): the request runs through the real provisioning code, the statements it would
/// run are printed with their parameters, and no table changes.
pub struct TableRecorder {
    inner: Arc<dyn Records>,
    described: Mutex<Vec<String>>,
}

impl TableRecorder {
    pub fn new(inner: Arc<dyn Records>) -> Self {
        TableRecorder { inner, described: Mutex::new(Vec::new()) }
    }

    /// Every write described, in order.
    pub fn statements(&self) -> String {
        self.described.lock().expect("recorder lock").join("\n")
    }

    fn describe(&self, write: RecordWrite<'_>) -> Result<()> {
        let text = self.inner.describe(&write)?;
        self.described.lock().expect("recorder lock").push(text);
        Ok(())
    }
}

/// A row as a write would leave it: `base`'s columns with `set` applied.
fn row_after(mut base: Entry, set: &Set) -> Entry {
    for (column, value) in set {
        base.remove(column);
        if let Some(v) = value {
            base.insert(column, vec![v.clone()]);
        }
    }
    base
}

#[async_trait]
impl Records for TableRecorder {
    async fn get(&self, kind: Kind, id: &str) -> Result<Entry> {
        self.inner.get(kind, id).await
    }
    async fn find(&self, kind: Kind, filter: &LdapFilter, max: usize) -> Result<Option<Vec<Entry>>> {
        self.inner.find(kind, filter, max).await
    }
    async fn page(&self, kind: Kind, query: &PageQuery) -> Result<Page> {
        self.inner.page(kind, query).await
    }
    async fn create(&self, kind: Kind, values: &Set, members: &[String]) -> Result<Entry> {
        self.describe(RecordWrite::Create { kind, values, members })?;
        // Not yet assigned by the database: shown as such in the resource.
        let id = "00000000-0000-0000-0000-000000000000";
        Ok(row_after(Entry::new(id).with("id", vec![id.into()]), values))
    }
    async fn update(
        &self,
        kind: Kind,
        id: &str,
        version: Option<&str>,
        set: &Set,
        members: &MemberChange,
    ) -> Result<Entry> {
        let before = self.inner.get(kind, id).await?;
        self.describe(RecordWrite::Update { kind, id, version, set, members })?;
        Ok(row_after(before, set))
    }
    async fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        self.inner.get(kind, id).await?;
        self.describe(RecordWrite::Delete { kind, id })
    }
    async fn members(&self, group_id: &str, max: usize) -> Result<Vec<Entry>> {
        self.inner.members(group_id, max).await
    }
    async fn groups_of(&self, user_ids: &[String]) -> Result<Vec<(String, Entry)>> {
        self.inner.groups_of(user_ids).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn catalog(&self) -> Result<Vec<Catalog>> {
        self.inner.catalog().await
    }
    fn describe(&self, write: &RecordWrite<'_>) -> Result<String> {
        self.inner.describe(write)
    }
}
