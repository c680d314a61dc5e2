//! Hot reload: SIGHUP swaps in a valid new gateway.toml under load; an invalid one is refused
//! and logged while the running configuration keeps serving; no request in flight fails.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::{config_text, TOKEN};
use common::process::GatewayProcess;
use common::Slapd;

const ROTATED: &str = "rotated-token-9c1e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_valid_files_and_keeps_serving_on_invalid_ones() {
    let slapd = Slapd::start();
    let config = config_text(&slapd, |t| t);
    let gw = GatewayProcess::spawn(&config);
    let client = gw.client();
    let bearer = |t: &str| format!("Bearer {t}");

    // Load: a bounded stream of list requests with the original token, all the way through.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, done, client) = (stop.clone(), done.clone(), gw.client());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && statuses.len() < 2_000 && Instant::now() < deadline {
                statuses.push(
                    client.call("GET", "/Users?count=5", None, Some(&format!("Bearer {TOKEN}"))).await.status.as_u16(),
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
            statuses
        })
    };
    // Lets the load make `n` more requests (bounded wait).
    let more = async |n: usize| {
        let target = done.load(Ordering::Relaxed) + n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    more(5).await;
    assert_eq!(client.call("GET", "/Users", None, Some(&bearer(ROTATED))).await.status, 401);

    // A valid change: a second token.
    let rotated = config.replacen(
        "[directory]",
        &format!("[[auth.bearer]]\nname = \"rotated\"\ntoken = \"{ROTATED}\"\n\n[directory]"),
        1,
    );
    std::fs::write(gw.config_path(), &rotated).unwrap();
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.call("GET", "/Users", None, Some(&bearer(ROTATED))).await.status != 200 {
        assert!(Instant::now() < deadline, "the new token was not accepted after SIGHUP:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    more(5).await;

    // An invalid file: refused with its line, and the running configuration stays.
    std::fs::write(gw.config_path(), rotated.replace("ldap = \"title\"", "ldap = \"ti tle\"")).unwrap();
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.log().contains("configuration not reloaded") {
        assert!(Instant::now() < deadline, "no refusal logged:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gw.log().contains("gateway.toml:") && gw.log().contains("\"ti tle\" is not an LDAP attribute name"),
        "{}",
        gw.log()
    );
    assert_eq!(client.call("GET", "/Users", None, Some(&bearer(ROTATED))).await.status, 200);
    assert_eq!(client.call("GET", "/Users", None, Some(&bearer(TOKEN))).await.status, 200);

    more(5).await;
    stop.store(true, Ordering::Relaxed);
    let statuses = load.await.unwrap();
    assert!(statuses.len() >= 15, "the load ran ({} requests)", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "a request failed during the reloads: {statuses:?}");
    let log = gw.settled_log().await;
    assert!(!log.contains(ROTATED) && !log.contains(TOKEN), "no token in the logs");
    assert!(gw.terminate().success());
}
