//! Provision's decisions on the in-memory directory ([`Memory`]): each test drives `Users` or
//! `Groups` as the HTTP layer does and asserts what is answered and what ends in the
//! directory, never the sequence of operations (which may change), so they hold while the
//! write sequences are reworked. The real servers are the integration tests' business.

mod groups;
mod users;

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Groups, Lister, Resources, Users};
use crate::cache::UserCache;
use crate::config::Loaded;
use crate::directory::memory::Memory;
use crate::directory::Entry;
use crate::mapping::{GroupMapping, UserMapping};
use crate::metrics::Metrics;
use crate::scim::list::{Projection, Query};

const PEOPLE: &str = "ou=people,dc=example,dc=test";
const GROUPS: &str = "ou=groups,dc=example,dc=test";
const STAND_IN: &str = "cn=empty-group,ou=groups,dc=example,dc=test";
const ROOT: &str = "https://gw.example/scim/v2";

/// The shipped `gateway.toml` (edited by `edit`) over a memory directory that behaves like
/// the test slapd: groupOfNames must have a member, uid is unique, memberOf and refint run.
struct Site {
    dir: Arc<Memory>,
    users: Users,
    groups: Groups,
}

fn site(edit: impl Fn(String) -> String) -> Site {
    site_over(directory().unique("uid"), edit)
}

/// The people and groups containers; groupOfNames must have a member.
fn directory() -> Memory {
    Memory::with_bases(&[PEOPLE, GROUPS]).must("groupOfNames", "member")
}

/// As [`site`], over `dir`.
fn site_over(dir: Memory, edit: impl Fn(String) -> String) -> Site {
    let loaded = Loaded::parse("gateway.toml", edit(include_str!("../../../gateway.toml").into())).expect("config");
    let cfg = &loaded.config;
    let dir = Arc::new(dir);
    let metrics = Arc::new(Metrics::new(1));
    let cache = Arc::new(UserCache::new(&cfg.cache, metrics.clone()));
    let lister = Arc::new(Lister::new(&cfg.query, metrics));
    let users_map = UserMapping::compile(&cfg.users).expect("user rules");
    let groups_map = GroupMapping::compile(cfg.groups.as_ref().expect("groups")).expect("group rules");
    let dn_attr = cfg.directory.dn_attribute();
    let groups =
        Groups::new(dir.clone(), groups_map.clone(), users_map.clone(), dn_attr.clone(), cache.clone(), lister.clone());
    let users = Users::new(
        dir.clone(),
        users_map,
        cfg.directory.dialect,
        Some((groups_map, dn_attr)),
        cache,
        lister,
        cfg.limits.limits(),
    );
    Site { dir, users, groups }
}

fn okta_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "John", "familyName": "Doe"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "externalId": "00u1abcd2EFGH3ijk4l5",
        "active": true
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn filter(f: &str) -> Query {
    Query::from_pairs([("filter", f)]).expect("query")
}

impl Site {
    async fn create_user(&self, user_name: &str) -> Value {
        self.users.create(&okta_user(user_name), ROOT).await.expect("user created")
    }

    async fn get_user(&self, id: &str) -> super::Result<Value> {
        self.users.get(id, &Projection::default(), ROOT).await.map(|j| j.value())
    }

    /// The entries below `base`, as stored.
    fn entries(&self, base: &str) -> Vec<Entry> {
        self.dir.dns(base).iter().filter_map(|dn| self.dir.entry(dn)).collect()
    }

    fn user(&self, uid: &str) -> Entry {
        self.dir.entry(&format!("uid={uid},{PEOPLE}")).expect("entry")
    }
}
