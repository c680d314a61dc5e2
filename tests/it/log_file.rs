//! Logs written to a file (stderr not a terminal, as under systemd or docker) carry no ANSI
//! colour codes.

use crate::common;

use common::gateway::config_text;
use common::process::GatewayProcess;
use common::Slapd;

#[tokio::test]
async fn logs_to_a_file_have_no_escape_codes() {
    let slapd = Slapd::start();
    let gateway = GatewayProcess::spawn(&config_text(&slapd, |t| t));
    let answer = gateway.client().get("/Users?count=1").await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    // Access lines are written in batches, at most 50 ms late on an idle machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !gateway.log().contains("done") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let log = gateway.log();
    assert!(log.contains("access: done"), "an access line was logged: {log}");
    assert!(!log.contains('\x1b'), "escape codes in the log file: {log:?}");
}
