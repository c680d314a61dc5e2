//! `scim-gateway check` against `information_schema` (unknown columns, NOT NULL columns a create
//! leaves empty) and `scim-gateway explain` printing the SQL and its parameters, on a real
//! PostgreSQL; neither changes a table.

use std::process::Command;

use serde_json::json;

use crate::common::gateway::{okta_user, TestGateway};
use crate::common::postgres::Postgres;
use crate::common::postgres_store::config;

/// Runs the gateway binary with `args` and `-c` a file holding `config` (and `--body` a file
/// holding `body`); success and everything it printed.
fn run(args: &[&str], config: &str, body: Option<&serde_json::Value>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scim-gateway"));
    cmd.args(args).arg("-c").arg(&path);
    if let Some(b) = body {
        let file = dir.path().join("body.json");
        std::fs::write(&file, b.to_string()).unwrap();
        cmd.arg("--body").arg(&file);
    }
    let out = cmd.output().expect("run scim-gateway");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn check_reads_the_catalog() {
    let pg = Postgres::start();
    let (ok, out) = run(&["check"], &config(&pg, None, |t| t), None);
    assert!(ok, "the preset against its own schema: {out}");

    // A rule naming a column the table does not have.
    let unknown = config(&pg, None, |t| t.replacen("column = \"title\"", "column = \"job_title\"", 1));
    let (ok, out) = run(&["check"], &unknown, None);
    assert!(!ok, "{out}");
    assert!(out.contains("error: [users] column users.job_title does not exist"), "{out}");

    // A NOT NULL column without a default that no rule fills: every create would fail.
    pg.execute("ALTER TABLE users ADD COLUMN cost_center text NOT NULL").await;
    let (ok, out) = run(&["check"], &config(&pg, None, |t| t), None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("error: [users] column users.cost_center is NOT NULL without a default and no rule writes it"),
        "{out}"
    );
    assert!(!out.contains("service-secret"), "no secret in the report");
}

#[tokio::test]
async fn explain_prints_sql_and_parameters_and_changes_nothing() {
    let pg = Postgres::start();
    let text = config(&pg, None, |t| t);
    let gw = TestGateway::from_text(text.clone()).await;
    let ann = gw.post("/Users", &okta_user("ann@example.com", None)).await;
    let id = ann.body["id"].as_str().unwrap().to_owned();
    gw.stop().await;
    let before = pg.snapshot().await;

    let (ok, out) =
        run(&["explain", "POST", "/Users"], &text, Some(&okta_user("jdoe@example.com", Some("S3cret-pw!"))));
    assert!(ok, "{out}");
    // One transaction; values only as parameters, listed after the statement; no password.
    assert!(out.starts_with("BEGIN;\nINSERT INTO \"users\""), "{out}");
    assert!(out.ends_with("COMMIT;\n"), "{out}");
    let insert = out.lines().nth(1).unwrap();
    assert!(insert.contains("$1") && !insert.contains("jdoe@example.com"), "{insert}");
    let params = out.lines().find(|l| l.starts_with("--   $1 = ")).unwrap_or_else(|| panic!("{out}"));
    assert!(params.contains(r#""user_name":"jdoe@example.com""#), "{params}");
    assert!(params.contains("(a password hash, not shown)"), "{params}");
    assert!(!out.contains("S3cret-pw!"), "never the password: {out}");

    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "'; DROP TABLE users; --"}]});
    let (ok, out) = run(&["explain", "PATCH", &format!("/Users/{id}")], &text, Some(&patch));
    assert!(ok, "{out}");
    assert!(out.starts_with("BEGIN;\n") && out.ends_with("COMMIT;\n"), "{out}");
    let statements: Vec<&str> = out.lines().filter(|l| !l.starts_with("--")).collect();
    assert!(statements.iter().any(|l| l.starts_with("UPDATE \"users\"")), "{out}");
    assert!(statements.iter().all(|l| !l.contains("DROP TABLE")), "the value is only a parameter: {out}");
    assert!(out.lines().any(|l| l.starts_with("--   $") && l.contains("DROP TABLE")), "and is listed: {out}");

    assert_eq!(pg.snapshot().await, before, "explain wrote nothing");
}
