//! The gateway binary, run as a separate process on a free port.

use std::process::{Child, Command, ExitStatus, Stdio};

use std::time::{Duration, Instant};

use super::gateway::TestGateway;

pub struct GatewayProcess {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts `scim-gateway serve` with `config` (its listen port from `SCIM_GATEWAY_PORT`)
    /// and returns once the port accepts connections.
    pub fn spawn(config: &str) -> GatewayProcess {
        Self::spawn_under(config, &[])
    }

    /// The same, with its open-file limit (soft and hard) set to `nofile` by `prlimit`.
    pub fn spawn_with_file_limit(config: &str, nofile: Option<u64>) -> GatewayProcess {
        let wrapper = nofile.map(|n| vec!["prlimit".to_owned(), format!("--nofile={n}:{n}")]);
        Self::spawn_under(config, &wrapper.unwrap_or_default())
    }

    /// The same, run by `wrapper` (a command and its arguments, e.g. valgrind's or prlimit's)
    /// when not empty; such a start may be slow, so it is given a minute.
    pub fn spawn_under(config: &str, wrapper: &[String]) -> GatewayProcess {
        super::raise_file_limit();
        // The free port is found by binding and releasing it, so something else may take it
        // before the gateway binds it (the edge tests open thousands of sockets): try again.
        for _ in 0..3 {
            match Self::try_spawn(config, wrapper) {
                Ok(process) => return process,
                Err(log) if log.contains("cannot listen") => continue,
                Err(log) => panic!("scim-gateway exited at start:\n{log}"),
            }
        }
        panic!("scim-gateway found no free port in three tries");
    }

    /// One start; the log of a gateway that exited before it listened.
    fn try_spawn(config: &str, wrapper: &[String]) -> Result<GatewayProcess, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let binary = env!("CARGO_BIN_EXE_scim-gateway");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = command
            .args(["serve", "-c"])
            .arg(&path)
            .env("SCIM_GATEWAY_PORT", port.to_string())
            .env_remove("SCIM_GATEWAY_LOG")
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("stderr.log")).unwrap()))
            .spawn()
            .expect("start scim-gateway");
        let mut process = GatewayProcess { child, port, _dir: dir };
        // A debug build starting beside a busy test run: 30 s (a minute under a wrapper).
        let wait = Duration::from_secs(if wrapper.is_empty() { 30 } else { 60 });
        let deadline = Instant::now() + wait;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if process.child.try_wait().unwrap().is_some() {
                return Err(process.log());
            }
            assert!(Instant::now() < deadline, "scim-gateway did not listen on {port} within {wait:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(process)
    }

    /// The configuration file it serves with (rewrite it, then send HUP).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("gateway.toml")
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The log once the access lines of every request answered so far are in it. They are
    /// written in batches, in order, so once a marker request's line is in, theirs are.
    pub async fn settled_log(&self) -> String {
        static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let marker = format!("log-settled-{}", MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.client().raw("GET", "/ServiceProviderConfig", Vec::new(), None, &[("x-request-id", &marker)]).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if log.contains(&marker) {
                return log;
            }
            assert!(Instant::now() < deadline, "no access line for {marker} within 30 s:\n{log}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn client(&self) -> TestGateway {
        TestGateway::remote(format!("http://127.0.0.1:{}/scim/v2", self.port))
    }

    /// Its process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (a `kill -s` name such as HUP or TERM).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill").args(["-s", signal, &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -s {signal}");
    }

    /// Sends SIGTERM and waits (at most 10 s) for the process to end.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `per_process` users through each of `processes`, named `{local}@d{i}.test` so that
/// every derived name has the same base, all at once (each request spawned before any is
/// awaited); every answer must be `201`. Returns how long they took.
pub async fn race_creates(processes: &[GatewayProcess], local: &str, per_process: usize) -> Duration {
    let clients: Vec<std::sync::Arc<TestGateway>> = processes.iter().map(|p| std::sync::Arc::new(p.client())).collect();
    let started = Instant::now();
    let contenders: Vec<_> = (0..clients.len() * per_process)
        .map(|i| {
            let body = super::gateway::okta_user(&format!("{local}@d{i}.test"), None);
            let client = clients[i % clients.len()].clone();
            tokio::spawn(async move { client.post("/Users", &body).await })
        })
        .collect();
    for contender in contenders {
        let answer = contender.await.expect("request task");
        assert_eq!(answer.status, 201, "{:#}", answer.body);
    }
    started.elapsed()
}
