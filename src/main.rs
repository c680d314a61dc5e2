//! `scim-gateway serve` (default), `check`, `explain` and `hash-secret`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use std::sync::Arc;

use scim_gateway::config::Loaded;
use scim_gateway::{explain, Gateway};

#[derive(Parser)]
#[command(version, about = "SCIM 2.0 gateway from Okta / Entra ID to LDAP directories")]
struct Cli {
    /// The configuration file.
    #[arg(short, long, global = true, env = "SCIM_GATEWAY_CONFIG", default_value = "gateway.toml")]
    config: String,
    /// Log format.
    #[arg(long, global = true, env = "SCIM_GATEWAY_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SCIM requests (the default).
    Serve,
    /// Validate the configuration and bind to the directory, then exit.
    Check {
        /// Validate the file and its mapping only, without contacting the directory (for CI
        /// checks of the configuration an image or a manifest ships).
        #[arg(long)]
        offline: bool,
    },
    /// Print the LDAP operations a SCIM request would perform, as LDIF, without performing
    /// them; or, with --dn, the SCIM resource a directory entry maps to.
    Explain {
        /// POST, PUT, PATCH or DELETE.
        method: Option<String>,
        /// Below the base path: /Users, /Users/{id}, /Groups, /Groups/{id}.
        path: Option<String>,
        /// The request body: a JSON file, or - for standard input.
        #[arg(long)]
        body: Option<String>,
        /// Show the SCIM resource for this entry instead.
        #[arg(long, conflicts_with_all = ["method", "path", "body"])]
        dn: Option<String>,
        /// The target to ask: a `[[targets]]` name (default: the top-level sections).
        #[arg(long, default_value = scim_gateway::config::DEFAULT_TARGET)]
        target: String,
    },
    /// Read a client secret from standard input (one line) and print the argon2id PHC
    /// string to put in [[auth.oauth.client]] secret_hash. Needs no configuration file.
    HashSecret,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("SCIM_GATEWAY_LOG").unwrap_or_else(|_| "info".into());
    if matches!(cli.command, Some(Command::Explain { .. })) {
        // A dry run writes nothing, so it has nothing to audit.
        filter = filter.add_directive("audit=off".parse().expect("a valid directive"));
    }
    // Colours only on a terminal: escape codes would litter a log file or the journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, flush) = scim_gateway::logs::Batched::stderr();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(run(cli));
    // The last access lines before anything printed below.
    drop(flush);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("scim-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if matches!(cli.command, Some(Command::HashSecret)) {
        return hash_secret();
    }
    let loaded = Loaded::read(&cli.config).map_err(|e| e.to_string())?;
    let gateway = Gateway::new(&loaded).map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Explain { dn: Some(dn), target, .. } => {
            let resource = explain::entry(gateway.app_named(&target)?, &dn).await?;
            println!("{}", serde_json::to_string_pretty(&resource).expect("JSON"));
            Ok(())
        }
        Command::Explain { method: Some(method), path: Some(path), body, dn: None, target } => {
            let body = body.as_deref().map(explain::read_body).transpose()?;
            let app = gateway.app_named(&target)?;
            let directory = match &app.backend {
                scim_gateway::http::Backend::Directory(d) => d,
                scim_gateway::http::Backend::Records(store) => {
                    let recorder = Arc::new(explain::TableRecorder::new(store.clone()));
                    let backend = scim_gateway::http::Backend::Records(recorder.clone());
                    let dry = Gateway::with_backend(&loaded, &target, backend).map_err(|e| e.to_string())?;
                    explain::request(dry.app_named(&target)?, &method, &path, body).await?;
                    match recorder.statements() {
                        text if text.is_empty() => println!("-- no change to the tables"),
                        text => print!("{text}"),
                    }
                    return Ok(());
                }
            };
            let recorder = Arc::new(explain::Recorder::new(directory.clone()));
            let dry = Gateway::with_backend(&loaded, &target, scim_gateway::http::Backend::Directory(recorder.clone()))
                .map_err(|e| e.to_string())?;
            explain::request(dry.app_named(&target)?, &method, &path, body).await?;
            match recorder.ldif() {
                ldif if ldif.is_empty() => println!("# no change to the directory"),
                ldif => print!("{ldif}"),
            }
            Ok(())
        }
        Command::Explain { .. } => Err("explain needs METHOD PATH [--body FILE], or --dn DN".into()),
        Command::HashSecret => hash_secret(),
        Command::Check { offline: true } => {
            println!("{}: configuration valid (offline: the directory was not contacted)", loaded.path);
            Ok(())
        }
        Command::Check { offline: false } => {
            let directory = |e: scim_gateway::directory::DirectoryError| format!("{}: directory: {e}", loaded.path);
            for (site, app) in loaded.config.sites().zip(gateway.apps()) {
                let at = |e| format!("{}: {}directory: {e}", loaded.path, site.within);
                app.backend.ping().await.map_err(at)?;
                let (url, dn) = (site.directory.url.get_ref().0.join(" or "), site.directory.bind_dn.as_str());
                let dn = if site.directory.is_postgres() { "the URL's user" } else { dn };
                match site.name_span {
                    None => println!("{}: configuration valid; bound to {url} as {dn}", loaded.path),
                    Some(_) => println!("{}: {}bound to {url} as {dn}", loaded.path, site.within),
                }
            }
            let found = gateway.check_schema().await.map_err(directory)?;
            for f in &found {
                println!("{}: {f}", loaded.path);
            }
            match found.iter().filter(|f| matches!(f, scim_gateway::mapping::Finding::Error(_))).count() {
                0 => Ok(()),
                n => Err(format!("{n} error(s) against the directory's schema")),
            }
        }
        Command::Serve => {
            // Before the port opens: from then on a SIGHUP must not find the default action (exit).
            #[cfg(unix)]
            let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
            // Likewise SIGTERM: one that comes right after the port opens must still shut down cleanly.
            #[cfg(unix)]
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
            let addr = loaded.config.server.listen.as_str();
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            tracing::info!(%addr, base_path = %loaded.config.server.base_path.get_ref(), "serving SCIM");
            for app in gateway.apps() {
                if let Err(e) = app.backend.ping().await {
                    // Not fatal: the directory may come up after the gateway; requests get 503 until then.
                    tracing::warn!(site = %app.name, error = %e, "directory not reachable yet");
                }
            }
            let reloader = gateway.reloader();
            #[cfg(unix)]
            tokio::spawn(reload_on_sighup(hup, reloader.clone(), loaded.path.clone()));
            #[cfg(unix)]
            let shutdown = shutdown_signal(term);
            #[cfg(not(unix))]
            let shutdown = shutdown_signal();
            gateway.serve(&loaded, &reloader, listener, shutdown).await.map_err(|e| e.to_string())
        }
    }
}

/// The secret comes on standard input, never as an argument: arguments show in `ps`.
fn hash_secret() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the secret from standard input: {e}"))?;
    let secret = line.trim_end_matches(['\r', '\n']);
    if secret.len() < 16 {
        return Err("give a secret of at least 16 characters on standard input".into());
    }
    println!("{}", scim_gateway::http::oauth::hash_secret(secret));
    Ok(())
}

/// SIGHUP re-reads gateway.toml and the inbound TLS certificate; a file with a mistake is
/// refused, logged, and the running configuration stays.
#[cfg(unix)]
async fn reload_on_sighup(mut hup: tokio::signal::unix::Signal, reloader: scim_gateway::Reloader, path: String) {
    while hup.recv().await.is_some() {
        match reloader.reload(&path) {
            Ok(()) => tracing::info!(%path, "SIGHUP: configuration reloaded"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: configuration not reloaded; the running one stays"),
        }
    }
}

#[cfg(unix)]
async fn shutdown_signal(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

#[cfg(not(unix))]
async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
