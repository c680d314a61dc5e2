//! PostgreSQL as a [`Store`] for the shared flows: `presets/postgres.toml` over the tables of
//! `presets/postgres.sql`, rows read back with SQL as the superuser.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use async_trait::async_trait;
use serde_json::Value;

use super::gateway::{TestGateway, TOKEN};
use super::postgres::{Postgres, APP_PASSWORD, APP_ROLE, DATABASE};
use super::scenario::{sorted, Store, StoredGroup, StoredUser};

/// The shipped preset pointed at `pg` (the app role, its password, TLS off or
/// `verify-full` against `ca_file`), with the test token; `edit` may change more. The preset's
/// `[directory]`'s `url`, `password` and `sslmode` lines are replaced whole: a preset without them fails here.
pub fn config(pg: &Postgres, ca_file: Option<&std::path::Path>, edit: impl Fn(String) -> String) -> String {
    config_for(pg.port, ca_file, edit)
}

/// [`config`] for a server on `port` (which need not be running: pure tests compile it).
pub fn config_for(port: u16, ca_file: Option<&std::path::Path>, edit: impl Fn(String) -> String) -> String {
    let path = format!("{}/presets/postgres.toml", env!("CARGO_MANIFEST_DIR"));
    let preset = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // 127.0.0.1 for plain TCP; localhost for TLS, a name the test CA's certificate carries.
    let host = if ca_file.is_some() { "localhost" } else { "127.0.0.1" };
    let mut replaced = [false; 3];
    let mut section = "";
    let lines: Vec<String> = preset
        .lines()
        .map(|line| {
            if line.starts_with('[') {
                section = line;
            }
            let key = line.split_once(" = ").map(|(k, _)| k).filter(|_| section == "[directory]");
            match key {
                Some("url") => {
                    replaced[0] = true;
                    format!("url = \"postgres://{APP_ROLE}@{host}:{port}/{DATABASE}\"")
                }
                Some("password") => {
                    replaced[1] = true;
                    format!("password = \"{APP_PASSWORD}\"")
                }
                Some("sslmode") => {
                    replaced[2] = true;
                    match ca_file {
                        Some(ca) => format!("sslmode = \"verify-full\"\nca_file = {ca:?}"),
                        None => "sslmode = \"disable\"".to_owned(),
                    }
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    assert_eq!(replaced, [true; 3], "presets/postgres.toml: url, password and sslmode lines");
    edit(lines.join("\n").replace("${SCIM_GATEWAY_TOKEN}", TOKEN))
}

fn text(row: &Value, column: &str) -> Option<String> {
    match &row[column] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("{column}: {other}"),
    }
}

fn texts(row: &Value, column: &str) -> Vec<String> {
    let all = row[column].as_array().unwrap_or_else(|| panic!("{column}: {}", row[column]));
    sorted(all.iter().map(|v| v.as_str().expect("text").to_owned()).collect())
}

/// Whether `password` checks against the argon2 PHC string `stored`, as the application would.
pub fn argon2_verifies(stored: &str, password: &str) -> bool {
    let hash = PasswordHash::new(stored).unwrap_or_else(|e| panic!("not a PHC string {stored:?}: {e}"));
    argon2::Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
}

#[async_trait]
impl Store for Postgres {
    async fn gateway(&self) -> TestGateway {
        TestGateway::from_text(config(self, None, |t| t)).await
    }

    async fn user(&self, user_name: &str) -> Option<StoredUser> {
        let sql = "SELECT u.*, array(SELECT 'group:' || lower(g.display_name) FROM memberships m \
                   JOIN groups g ON g.id = m.group_id WHERE m.user_id = u.id) AS group_refs \
                   FROM users u WHERE u.user_name = $1";
        let row = self.row(sql, &[&user_name]).await?;
        Some(StoredUser {
            id: text(&row, "id").expect("id"),
            user_name: text(&row, "user_name").expect("user_name"),
            given_name: text(&row, "given_name"),
            family_name: text(&row, "family_name"),
            display_name: text(&row, "display_name"),
            email: text(&row, "email"),
            external_id: text(&row, "external_id"),
            title: text(&row, "title"),
            department: text(&row, "department"),
            employee_number: text(&row, "employee_number"),
            active: row["active"].as_bool().expect("active is a boolean"),
            password: text(&row, "password_hash"),
            groups: texts(&row, "group_refs"),
        })
    }

    async fn group(&self, name: &str) -> Option<StoredGroup> {
        let sql = "SELECT g.id, g.display_name, array(SELECT 'user:' || lower(u.user_name) FROM memberships m \
                   JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id) AS member_refs \
                   FROM groups g WHERE g.display_name = $1";
        let row = self.row(sql, &[&name]).await?;
        Some(StoredGroup {
            id: text(&row, "id").expect("id"),
            name: text(&row, "display_name").expect("display_name"),
            members: texts(&row, "member_refs"),
        })
    }

    async fn user_count(&self) -> usize {
        self.count("users").await as usize
    }

    async fn seed_users(&self, names: &[String]) {
        let admin = self.admin().await;
        let sql = "INSERT INTO users (user_name, display_name, family_name) SELECT n, n, 'Imported' FROM unnest($1::text[]) n";
        admin.execute(sql, &[&names]).await.expect("seed users");
    }

    /// The application's login: an active row whose argon2 hash checks.
    async fn can_log_in(&self, user_name: &str, password: &str) -> bool {
        let sql = "SELECT active, password_hash FROM users WHERE user_name = $1";
        let Some(row) = self.row(sql, &[&user_name]).await else { return false };
        let active = row["active"].as_bool().expect("active");
        active && text(&row, "password_hash").is_some_and(|h| argon2_verifies(&h, password))
    }

    /// The preset's scheme: an argon2id PHC string.
    fn hashed(&self, stored: &str) -> bool {
        stored.starts_with("$argon2id$") && PasswordHash::new(stored).is_ok()
    }

    fn user_ref(&self, user_name: &str) -> String {
        format!("user:{}", user_name.to_lowercase())
    }

    fn group_ref(&self, name: &str) -> String {
        format!("group:{}", name.to_lowercase())
    }

    fn empty_members(&self) -> Vec<String> {
        Vec::new()
    }

    /// The preset's membership table holds (group, user) rows only.
    fn nested_groups(&self) -> bool {
        false
    }
}
