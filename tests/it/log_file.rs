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
    let log = gateway.log();
    assert!(log.contains("done"), "an access line was logged: {log}");
    assert!(!log.contains('\x1b'), "escape codes in the log file: {log:?}");
}
