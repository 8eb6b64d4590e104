//! `tollgate run -c FILE` starts the gateway; `tollgate check -c FILE` validates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use tollgate_proxy::access_log::AccessLog;

/// mimalloc instead of glibc's malloc: allocation and free were a fifth of the
/// full pipeline's CPU per request (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tollgate_proxy::admin::AdminApp;
use tollgate_proxy::limits::LimiterRegistry;
use tollgate_proxy::{Gateway, GatewayState, Snapshot};

#[derive(Parser)]
#[command(name = "tollgate", version, about = "An AI gateway on Pingora")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (for the default `run`).
    #[arg(short, long, default_value = "conf/tollgate.toml", global = true)]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate a config file: list every error and exit 1, or print a summary.
    Check,
    /// Probe a running gateway's admin `/health` (for container HEALTHCHECKs,
    /// which have no curl): exit 0 when it answers 200.
    Health {
        /// Admin address, `host:port`.
        #[arg(long, default_value = "127.0.0.1:8100")]
        admin: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pingora_core=warn,pingora_proxy=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => check(&cli.config),
        Command::Run => run(&cli.config),
        Command::Health { admin } => health(&admin),
    }
}

mod drain;
mod reload;

/// Loads and builds a config. `state` is the running gateway on a reload.
pub(crate) fn load(path: &std::path::Path, state: &GatewayState) -> Result<Snapshot, String> {
    build(path, &state.limiters)
}

fn build(path: &std::path::Path, limiters: &LimiterRegistry) -> Result<Snapshot, String> {
    let config = tollgate_config::load_file(path).map_err(|e| e.to_string())?;
    Snapshot::build(config, limiters).map_err(|e| format!("{}: {e}", path.display()))
}

fn health(admin: &str) -> ExitCode {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;
    let probe = || -> std::io::Result<bool> {
        let addr = admin
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: health\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(&head[9..12] == b"200")
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{admin}/health did not answer 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{admin}/health: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match build(path, &LimiterRegistry::system()) {
        Ok(snap) => {
            println!("{}: OK: {}", path.display(), snap.config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let limiters = LimiterRegistry::system();
    let snap = match build(path, &limiters) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let server_conf = snap.config.server.clone();
    let access_log = match AccessLog::open(&server_conf.access_log) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("access_log {}: {e}", server_conf.access_log);
            return ExitCode::FAILURE;
        }
    };

    let conf = ServerConf {
        threads: if server_conf.threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            server_conf.threads
        },
        // Pingora's default is 300 s; the drain service exits earlier when idle.
        grace_period_seconds: Some(server_conf.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let state = Arc::new(GatewayState::new(snap, access_log, limiters));
    let mut proxy = pingora_proxy::http_proxy_service_with_name(
        &server.configuration,
        Gateway { state: state.clone() },
        "tollgate proxy",
    );
    for addr in &server_conf.listen {
        proxy.add_tcp(addr);
    }
    let mut admin = Service::new(
        "tollgate admin".to_string(),
        AdminApp { state: state.clone(), started_at: std::time::SystemTime::now() },
    );
    admin.add_tcp(&server_conf.admin_listen);
    let reloader = background_service(
        "config reload",
        reload::Reloader { path: path.to_path_buf(), state: state.clone() },
    );
    admin.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(reloader);
    server.add_service(background_service("drain", drain::Drainer { state: state.clone() }));
    tracing::info!(
        listen = ?server_conf.listen,
        admin = %server_conf.admin_listen,
        "tollgate starting"
    );
    server.run_forever()
}
