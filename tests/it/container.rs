//! The container image and docker/compose.yml, run for real: the gateway image (docker/Dockerfile,
//! prebuilt target) next to the OpenLDAP image the repository builds (docker/openldap), driven
//! through Okta's create / lookup / deactivate, with the directory read inside its container to
//! check what landed. See tests/common/docker.rs for how the images are built.

use crate::common;

use common::docker::{self, run, Cleanup, Compose, GATEWAY_IMAGE, OPENLDAP_IMAGE};
use common::gateway::{okta_user, q, TestGateway, PEOPLE};
use serde_json::json;

const TOKEN: &str = "container-token-7c1e";
const BIND_PASSWORD: &str = "container-service-pw";
const ADMIN_PASSWORD: &str = "container-admin-pw";

/// `ldapsearch` as the rootdn inside the OpenLDAP container: the directory's own view.
fn directory(container: &str, filter: &str, attrs: &[&str]) -> String {
    let mut args = vec![
        "exec",
        container,
        "ldapsearch",
        "-x",
        "-LLL",
        "-H",
        "ldap://127.0.0.1:1389",
        "-D",
        "cn=admin,dc=example,dc=test",
        "-w",
        ADMIN_PASSWORD,
        "-b",
        PEOPLE,
        filter,
    ];
    args.extend_from_slice(attrs);
    run("docker", &args)
}

/// Okta's flow against a gateway at `port`, checking the directory in `ldap` after each step.
async fn okta_flow(port: u16, ldap: &str, name: &str) {
    let gw = TestGateway::remote(format!("http://127.0.0.1:{port}/scim/v2"));
    let token = format!("Bearer {TOKEN}");
    let call = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let (gw, token) = (&gw, &token);
        async move { gw.call(method, &path, body.as_ref(), Some(token)).await }
    };
    let lookup = format!("/Users?filter={}", q(&format!("userName eq \"{name}\"")));
    let none = call("GET", lookup.clone(), None).await;
    assert_eq!(none.status, 200, "{:#}", none.body);
    assert_eq!(none.body["totalResults"], 0);

    let created = call("POST", "/Users".into(), Some(okta_user(name, Some("Initial-pw1")))).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(directory(ldap, &format!("(uid={name})"), &["uid"]).contains(&format!("uid: {name}")));

    let found = call("GET", lookup.clone(), None).await;
    assert_eq!(found.body["totalResults"], 1, "{:#}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());

    // A second create of the name is refused, and the directory still holds one entry.
    let again = call("POST", "/Users".into(), Some(okta_user(name, None))).await;
    again.assert_error(409, Some("uniqueness"));
    assert_eq!(directory(ldap, &format!("(uid={name})"), &["1.1"]).matches("dn: ").count(), 1);
    // A caller without the token is refused and changes nothing.
    let anonymous = gw.call("POST", "/Users", Some(&okta_user("intruder@example.com", None)), Some("")).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(directory(ldap, "(uid=intruder@example.com)", &["1.1"]), "");

    let off = call(
        "PATCH",
        format!("/Users/{id}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]
        })),
    )
    .await;
    assert_eq!(off.status, 200, "{:#}", off.body);
    assert_eq!(off.body["active"], false);
    let entry = directory(ldap, &format!("(uid={name})"), &["pwdAccountLockedTime"]);
    assert!(entry.contains("pwdAccountLockedTime: 000001010000Z"), "{entry}");
}

#[tokio::test]
async fn image_serves_okta_against_an_openldap_container_as_non_root_on_a_read_only_root() {
    if !docker::available() {
        return;
    }
    docker::images();
    let mut cleanup = Cleanup::default();
    let net = docker::unique("scimtest-net");
    run("docker", &["network", "create", &net]);
    cleanup.networks.push(net.clone());
    let ldap = docker::unique("scimtest-ldap");
    cleanup.containers.push(ldap.clone());
    let admin = format!("SLAPD_ADMIN_PASSWORD={ADMIN_PASSWORD}");
    let service = format!("SLAPD_SERVICE_PASSWORD={BIND_PASSWORD}");
    run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &ldap,
            "--network",
            &net,
            "--read-only",
            "--cap-drop",
            "ALL",
            "-e",
            &admin,
            "-e",
            &service,
            OPENLDAP_IMAGE,
        ],
    );

    let gw = docker::unique("scimtest-gw");
    cleanup.containers.push(gw.clone());
    let url = format!("SCIM_GATEWAY_LDAP_URL=ldap://{ldap}:1389");
    let token = format!("SCIM_GATEWAY_TOKEN={TOKEN}");
    let bind = format!("SCIM_GATEWAY_BIND_PASSWORD={BIND_PASSWORD}");
    #[rustfmt::skip]
    run("docker", &[
        "run", "-d", "--name", &gw, "--network", &net, "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges:true", "--ulimit", "nofile=16384:16384",
        "-p", "127.0.0.1::8080", "-e", &url, "-e", &token, "-e", &bind, GATEWAY_IMAGE,
    ]);
    let port = docker::published_port(&gw);
    docker::wait_ready(port, &gw);
    okta_flow(port, &ldap, "container@example.com").await;

    // Non-root, by the image's own setting; a read-only root it does not need to write to.
    assert_eq!(run("docker", &["image", "inspect", "-f", "{{.Config.User}}", GATEWAY_IMAGE]), "10001:10001");
    assert_eq!(run("docker", &["exec", &gw, "id", "-u"]), "10001");
    let status = run("docker", &["exec", &gw, "cat", "/proc/1/status"]);
    assert!(
        status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().skip(1).all(|u| u == "10001")),
        "{status}"
    );
    let write = docker::output("docker", &["exec", &gw, "touch", "/etc/scim-gateway/x"]);
    assert!(!write.status.success());
    assert!(String::from_utf8_lossy(&write.stderr).contains("Read-only file system"), "{write:?}");
    let limits = run("docker", &["exec", &gw, "cat", "/proc/1/limits"]);
    assert!(limits.lines().any(|l| l.starts_with("Max open files") && l.contains("16384")), "{limits}");

    // The image's HEALTHCHECK command, run as Docker would.
    let test = run("docker", &["image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", GATEWAY_IMAGE]);
    let test: Vec<String> = serde_json::from_str(&test).unwrap();
    assert_eq!(test[0], "CMD");
    let mut exec = vec!["exec", gw.as_str()];
    exec.extend(test[1..].iter().map(String::as_str));
    run("docker", &exec);

    // SIGTERM (docker stop): a clean exit, well within the grace period.
    let start = std::time::Instant::now();
    run("docker", &["stop", "-t", "40", &gw]);
    let stopped = start.elapsed();
    assert_eq!(run("docker", &["inspect", "-f", "{{.State.ExitCode}}", &gw]), "0");
    let logs = docker::output("docker", &["logs", &gw]);
    assert!(String::from_utf8_lossy(&logs.stderr).contains("shutting down"));
    let above = docker::image_size(GATEWAY_IMAGE) - docker::image_size(docker::BASE_IMAGE);
    println!(
        "FIGURE container: stopped by SIGTERM in {} ms; test image (stripped debug binary) {:.1} MB above its base",
        stopped.as_millis(),
        above as f64 / 1e6
    );
}

#[test]
fn image_configuration_needs_its_three_variables_and_passes_check() {
    if !docker::available() {
        return;
    }
    docker::images();
    let valid = run(
        "docker",
        &[
            "run",
            "--rm",
            "--read-only",
            "-e",
            "SCIM_GATEWAY_LDAP_URL=ldap://ldap:389",
            "-e",
            "SCIM_GATEWAY_TOKEN=t",
            "-e",
            "SCIM_GATEWAY_BIND_PASSWORD=p",
            GATEWAY_IMAGE,
            "check",
            "--offline",
            "-c",
            "/etc/scim-gateway/gateway.toml",
        ],
    );
    assert!(valid.contains("configuration valid"), "{valid}");
    // No demo default survives in the image: a missing secret stops it, naming the variable.
    let missing = docker::output(
        "docker",
        &[
            "run",
            "--rm",
            "-e",
            "SCIM_GATEWAY_LDAP_URL=ldap://ldap:389",
            "-e",
            "SCIM_GATEWAY_BIND_PASSWORD=p",
            GATEWAY_IMAGE,
        ],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("SCIM_GATEWAY_TOKEN"), "{missing:?}");
}

#[tokio::test]
async fn compose_runs_the_gateway_next_to_openldap() {
    if !docker::available() {
        return;
    }
    docker::images();
    let project = docker::unique("scimtest-compose").replace('-', "");
    let file = docker::repo().join("docker/compose.yml");
    let file = file.to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let compose_args: Vec<String> = ["-p", &project, "-f", file].iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = [
        ("SCIM_GATEWAY_IMAGE", GATEWAY_IMAGE),
        ("SCIM_GATEWAY_OPENLDAP_IMAGE", OPENLDAP_IMAGE),
        ("SCIM_GATEWAY_HOST_PORT", &port),
        ("SCIM_GATEWAY_TOKEN", TOKEN),
        ("SCIM_GATEWAY_BIND_PASSWORD", BIND_PASSWORD),
        ("SLAPD_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut cleanup = Cleanup::default();
    cleanup.compose = Some(Compose { args: compose_args.clone(), env: env.clone() });
    let out = std::process::Command::new("docker-compose")
        .args(&compose_args)
        .args(["up", "-d", "--no-build"])
        .envs(env)
        .output()
        .expect("run docker-compose (apt-get install docker-compose)");
    assert!(
        out.status.success(),
        "docker-compose up: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let gw = format!("{project}_scim-gateway_1");
    let ldap = format!("{project}_openldap_1");
    cleanup.containers.extend([gw.clone(), ldap.clone()]);
    let port: u16 = port.parse().unwrap();
    docker::wait_ready(port, &gw);
    okta_flow(port, &ldap, "compose@example.com").await;
    for c in [&gw, &ldap] {
        assert_eq!(run("docker", &["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", c]), "true", "{c}");
    }
    assert_eq!(run("docker", &["exec", &gw, "id", "-u"]), "10001");
    assert_ne!(run("docker", &["exec", &ldap, "id", "-u"]), "0");
}
