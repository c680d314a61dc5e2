//! Several gateway processes against one slapd race to create the same userName: exactly one
//! 201, every other answer a 409 uniqueness naming the userName, whichever check catches the
//! duplicate: the gateway's lookup before the add; when the directory refuses the add
//! (entryAlreadyExists for the same DN, the `unique` overlay's constraintViolation when the DNs
//! differ), the same lookup again; and for the adds that slip past the overlay, the gateway's
//! re-check after the add.
use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::gateway::{config_text, okta_user, TestGateway, PEOPLE};
use common::process::GatewayProcess;
use common::Slapd;

const PROCESSES: usize = 4;
const PER_PROCESS: usize = 2;
const ROUNDS: usize = 8;

/// Races `ROUNDS` userNames starting with `prefix` through `processes`; `family_name(user_name, i)`
/// is contender `i`'s (and so names its entry when the RDN is cn, built from the name). Returns which check caught
/// the duplicates, with counts, for the report.
async fn race(
    slapd: &Slapd,
    processes: &[GatewayProcess],
    prefix: &str,
    family_name: impl Fn(&str, usize) -> String,
) -> BTreeMap<&'static str, usize> {
    let clients: Vec<Arc<TestGateway>> = processes.iter().map(|p| Arc::new(p.client())).collect();
    let mut caught = BTreeMap::new();
    for round in 0..ROUNDS {
        let user_name = format!("{prefix}{round}@example.com");
        // All at once: spawned before any is awaited.
        let contenders: Vec<_> = (0..PROCESSES * PER_PROCESS)
            .map(|i| {
                let mut body = okta_user(&user_name, None);
                body["name"]["familyName"] = family_name(&user_name, i).into();
                let client = clients[i % PROCESSES].clone();
                tokio::spawn(async move { client.post("/Users", &body).await })
            })
            .collect();
        let mut created = 0;
        for contender in contenders {
            let answer = contender.await.expect("request task");
            if answer.status == 201 {
                created += 1;
                continue;
            }
            answer.assert_error(409, Some("uniqueness"));
            let detail = answer.body["detail"].as_str().unwrap();
            let by = if detail.contains("already taken") {
                "the gateway's lookup"
            } else if detail.contains("already exists") {
                "entryAlreadyExists (same DN)"
            } else if detail.contains("must be unique") {
                "the unique overlay (other DN)"
            } else if detail.contains("concurrent create") {
                "the gateway's re-check (other DN)"
            } else {
                panic!("409 for an unknown reason: {detail}")
            };
            *caught.entry(by).or_default() += 1;
        }
        assert_eq!(created, 1, "{user_name}: {created} creates succeeded");
        assert_eq!(slapd.search(PEOPLE, &format!("(uid={user_name})")).await.len(), 1);
    }
    caught
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_across_processes_yield_one_201() {
    let slapd = Slapd::start();
    // Named by uid: every contender adds the same DN.
    let same_dn: Vec<GatewayProcess> =
        (0..PROCESSES).map(|_| GatewayProcess::spawn(&config_text(&slapd, |t| t))).collect();
    let caught = race(&slapd, &same_dn, "same", |_, _| "Racer".into()).await;
    println!("same DN: 409s caught by {caught:?}");
    drop(same_dn);

    // Named by cn ("{givenName} {familyName}"), each contender its own: only the unique
    // overlay on uid, and the gateway's re-check, see the clash.
    let by_cn = |t: String| t.replace("rdn_attribute = \"uid\"", "rdn_attribute = \"cn\"");
    let distinct_dn: Vec<GatewayProcess> =
        (0..PROCESSES).map(|_| GatewayProcess::spawn(&config_text(&slapd, by_cn))).collect();
    let caught = race(&slapd, &distinct_dn, "other", |user_name, i| format!("{user_name} racer {i}")).await;
    println!("distinct DNs: 409s caught by {caught:?}");
}
