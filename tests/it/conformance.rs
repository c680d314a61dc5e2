//! RFC 7643 / 7644 conformance, judged by an independent checker: scim2-tester (PyPI, pinned in
//! tests/conformance/requirements.txt) runs against the gateway binary backed by slapd. Every
//! check for discovery, Users and Groups must pass, or be listed as a known failure in
//! docs/conformance.md with the RFC clause and why. `scripts/test` prepares the checker's
//! virtualenv (`scripts/conformance-venv`) and exports its python as SCIM_CONFORMANCE_PYTHON.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;

use common::gateway::{config_text, TOKEN};
use common::process::GatewayProcess;
use common::Slapd;
use serde_json::Value;

/// The checker's python; a missing virtualenv fails the test, it never skips it.
fn python() -> String {
    let python = std::env::var("SCIM_CONFORMANCE_PYTHON").unwrap_or_else(|_| {
        panic!("SCIM_CONFORMANCE_PYTHON is not set: run scripts/test, or export SCIM_CONFORMANCE_PYTHON=$(scripts/conformance-venv)")
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "SCIM_CONFORMANCE_PYTHON={python} does not exist: run scripts/conformance-venv"
    );
    python
}

/// One check as the checker reports it.
#[derive(Debug)]
struct Check {
    status: String,
    title: String,
    resource_type: Option<String>,
    reason: String,
    /// What the checker saw, for a failure (shown when it is not listed).
    #[allow(dead_code)] // read through Debug
    data: Value,
}

impl Check {
    /// (check, resource type, the attribute its reason names in quotes): one listed failure
    /// never hides another attribute failing in the same check.
    fn key(&self) -> (String, String, String) {
        let attr = self.reason.split('\'').nth(1).unwrap_or("-");
        (self.title.clone(), self.resource_type.clone().unwrap_or_else(|| "-".into()), attr.to_owned())
    }

    fn failed(&self) -> bool {
        matches!(self.status.as_str(), "ERROR" | "CRITICAL")
    }
}

/// The (check, resource type, attribute) triples docs/conformance.md lists as known failures:
/// the rows of its table whose first cell is a check title in backquotes.
fn known_failures() -> BTreeSet<(String, String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/conformance.md"))
        .expect("docs/conformance.md");
    let unquote = |c: &str| c.trim_matches('`').to_owned();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let title = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((title.to_owned(), cells.get(2)?.to_string(), unquote(cells.get(3)?)))
        })
        .collect()
}

fn run_checker(base: &str) -> Vec<Check> {
    let out = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/run.py"))
        .args([base, TOKEN])
        .output()
        .expect("run the checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "checker failed: {}\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("checker line {l}: {e}"));
            Check {
                status: v["status"].as_str().expect("status").to_owned(),
                title: v["title"].as_str().unwrap_or("untitled").to_owned(),
                resource_type: v["resource_type"].as_str().map(str::to_owned),
                reason: v["reason"].as_str().unwrap_or_default().to_owned(),
                data: v["data"].clone(),
            }
        })
        .collect()
}

#[test]
fn scim2_tester_finds_no_unlisted_failure() {
    let slapd = Slapd::start();
    let gateway = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let checks = run_checker(&format!("http://127.0.0.1:{}/scim/v2", gateway.port));
    let known = known_failures();
    for c in &checks {
        eprintln!("{:<10} {:<6} {} {}", c.status, c.resource_type.as_deref().unwrap_or("-"), c.title, c.reason);
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| c.failed()).collect();
    let passed = checks.iter().filter(|c| !c.failed() && c.status != "SKIPPED").count();
    let skipped = checks.iter().filter(|c| c.status == "SKIPPED").count();
    eprintln!("scim2-tester: {} results, {passed} passed, {skipped} skipped, {} failed", checks.len(), failed.len());
    // Enough checks ran that the resources were really exercised, not just discovery.
    for resource in ["User", "Group"] {
        let ran = checks.iter().filter(|c| c.resource_type.as_deref() == Some(resource)).count();
        assert!(ran >= 10, "only {ran} checks for {resource}");
    }
    let unlisted: Vec<_> = failed.iter().filter(|c| !known.contains(&c.key())).collect();
    assert!(unlisted.is_empty(), "failures not listed in docs/conformance.md:\n{unlisted:#?}");
    // A listed failure that now passes must leave the list, so it stays honest.
    let failing: BTreeSet<_> = failed.iter().map(|c| c.key()).collect();
    let stale: Vec<_> = known.difference(&failing).collect();
    assert!(stale.is_empty(), "listed in docs/conformance.md but no longer failing: {stale:?}");
}
