//! `tollgate run -c FILE` starts the gateway; `tollgate check -c FILE` validates.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use tollgate_proxy::access_log::AccessLog;

/// mimalloc instead of glibc's malloc: allocation and free were a fifth of the
/// full pipeline's CPU per request (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use pingora_proxy::HttpProxy;
use tollgate_config::ServerConfig;
use tollgate_proxy::admin::AdminApp;
use tollgate_proxy::client_tls::ClientCa;
use tollgate_proxy::connections::ConnectionGate;
use tollgate_proxy::limits::LimiterRegistry;
use tollgate_proxy::tls::{self, CertSet};
use tollgate_proxy::vaults::{SecretKey, VaultStore};
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
    Run {
        /// Take over the listening sockets of a running tollgate that gets
        /// SIGQUIT (zero-downtime binary upgrade, through `server.upgrade_sock`).
        #[arg(long)]
        upgrade: bool,
    },
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

/// Buffers of each plain client connection. Pingora reads through a 64 KiB
/// buffer per connection by default, most of the memory a held stream costs;
/// 16 KiB still takes a typical chat request in one read.
const CLIENT_BUFFERS: L4BufferSettings = L4BufferSettings { read: Some(16 * 1024), write: None };

fn main() -> ExitCode {
    early_hup::catch();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pingora_core=warn,pingora_proxy=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command.unwrap_or(Command::Run { upgrade: false }) {
        Command::Check => check(&cli.config),
        Command::Run { upgrade } => run(&cli.config, upgrade),
        Command::Health { admin } => health(&admin),
    }
}

mod drain;
mod early_hup;
mod reload;
mod vault_refresh;

/// A config built and checked, not yet in force: installing it cannot fail.
pub(crate) struct Candidate {
    pub snap: Snapshot,
    /// `server.tls_certificates`, loaded; `None` when it lists none.
    pub certs: Option<CertSet>,
    /// `server.client_ca` and `client_verify`, loaded.
    pub clients: ClientCa,
    /// The file's text as loaded: a vault refresh builds it again with the new
    /// secrets, leaving edits made since (not yet reloaded) out.
    pub text: String,
    /// The remote vaults' secrets it uses.
    pub vault_secrets: HashSet<SecretKey>,
}

/// Loads and builds a config. `state` is the running gateway on a reload.
pub(crate) fn load(path: &std::path::Path, state: &GatewayState) -> Result<Candidate, String> {
    build(path, &state.limiters)
}

/// Builds the text of a config loaded before (see `Candidate::text`).
pub(crate) fn load_text(path: &std::path::Path, text: String, state: &GatewayState) -> Result<Candidate, String> {
    build_text(path, text, &state.limiters, false)
}

fn build(path: &std::path::Path, limiters: &LimiterRegistry) -> Result<Candidate, String> {
    let text = tollgate_config::read_config_file(path).map_err(|e| e.to_string())?;
    build_text(path, text, limiters, true)
}

/// `fresh`: fetch remote secrets anew (start, reload) rather than use the
/// cached ones (a rebuild after a vault refresh).
fn build_text(
    path: &std::path::Path,
    text: String,
    limiters: &LimiterRegistry,
    fresh: bool,
) -> Result<Candidate, String> {
    let secrets = VaultStore::shared().recorder(fresh);
    let env = |name: &str| std::env::var(name).ok();
    let config = tollgate_config::load_str_with(&text, path, &env, &secrets).map_err(|e| e.to_string())?;
    let vault_secrets = secrets.used();
    // Certificate files are read here, not in the (pure) validator, so `check`
    // and every reload report a bad one before anything reaches Pingora.
    let certs = tls::load_certificates(&config).map_err(|e| e.to_string())?;
    let clients = tls::load_client_verifier(&config).map_err(|e| e.to_string())?;
    let snap = Snapshot::build(config, limiters).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Candidate { snap, certs, clients, text, vault_secrets })
}

fn health(admin: &str) -> ExitCode {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let probe = || -> std::io::Result<bool> {
        let addr = admin.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("no address"))?;
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
        Ok(Candidate { snap, certs, .. }) => {
            let tls = certs.map(|c| format!(", {} TLS certificates", c.count)).unwrap_or_default();
            println!("{}: OK: {}{tls}", path.display(), snap.config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// h2c on the plain listeners, and the TLS listeners with their certificate
/// resolver, which reloads then update (the listeners themselves stay as bound).
/// The proxy service: Pingora's HTTP proxy running tollgate's phases, behind
/// the per-IP connection cap.
type ProxyService = Service<ConnectionGate<HttpProxy<Gateway>>>;

fn proxy_service(conf: &Arc<ServerConf>, state: &Arc<GatewayState>, server: &ServerConfig) -> ProxyService {
    let mut app = HttpProxy::new(Gateway { state: state.clone() }, conf.clone());
    app.handle_init_modules();
    let mut options = HttpServerOptions::default(); // non-exhaustive
                                                    // Pingora peeks for the HTTP/2 preface on plain connections only;
                                                    // HTTP/1.1 clients are served as before.
    options.h2c = server.h2c;
    options.h1_header_timeout = Some(Duration::from_millis(server.client_header_timeout));
    app.server_options = Some(options);
    let config = state.clone();
    let gate = ConnectionGate {
        app: Arc::new(app),
        open: state.connections.clone(),
        cap: Box::new(move || config.snapshot.load().config.server.max_connections_per_ip),
    };
    Service::new("tollgate proxy".to_string(), gate)
}

fn add_tls(
    proxy: &mut ProxyService,
    server: &ServerConfig,
    certs: Option<CertSet>,
    clients: ClientCa,
) -> Result<Option<tls::EdgeTls>, String> {
    if server.tls_listen.is_empty() {
        return Ok(None);
    }
    // The validator requires certificates with tls_listen.
    let certs = certs.ok_or("server.tls_listen: no tls_certificates")?;
    let edge = tls::EdgeTls::new(certs, clients);
    for addr in &server.tls_listen {
        let settings = edge.listener_settings(server.http2).map_err(|e| format!("server.tls_listen {addr}: {e}"))?;
        proxy.add_tls_with_settings(addr, None, settings);
    }
    Ok(Some(edge))
}

fn run(path: &std::path::Path, upgrade: bool) -> ExitCode {
    let limiters = LimiterRegistry::system();
    // Before the file is read, so that `watch` sees any change made meanwhile.
    let initial = reload::Fingerprint::of(vec![path.to_path_buf()]);
    let Candidate { snap, certs, clients, text, .. } = match build(path, &limiters) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let server_conf = snap.config.server.clone();
    let initial = initial.carried_to(reload::watched_files(path, &server_conf));
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
        upgrade_sock: server_conf.upgrade_sock.clone(),
        ..ServerConf::default()
    };
    // With --upgrade, bootstrap waits on the upgrade socket for the old
    // process's listeners, which it sends when it gets SIGQUIT.
    let opt = upgrade.then(|| Opt { upgrade: true, ..Opt::default() });
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let state = Arc::new(GatewayState::new(snap, access_log, limiters));
    let mut proxy = proxy_service(&server.configuration, &state, &server_conf);
    for addr in &server_conf.listen {
        proxy.add_listener(ListenerConfig::tcp(addr.as_str()).l4_buffer(CLIENT_BUFFERS));
    }
    let edge_tls = match add_tls(&mut proxy, &server_conf, certs, clients) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut admin = Service::new(
        "tollgate admin".to_string(),
        AdminApp { state: state.clone(), started_at: std::time::SystemTime::now() },
    );
    admin.add_tcp(&server_conf.admin_listen);
    let reloader = reload::Reloader {
        path: path.to_path_buf(),
        state: state.clone(),
        tls: edge_tls,
        bound: reload::Listeners::of(&server_conf),
        initial,
        kept: Arc::new(std::sync::Mutex::new(text)),
        serial: Arc::default(),
        rebuild_pending: Arc::default(),
    };
    // Secrets with a ttl are fetched again in the background; a changed one
    // rebuilds the config in force, as a reload does.
    let vault_refresh =
        background_service("vault refresh", vault_refresh::VaultRefresher { reloader: reloader.clone() });
    let reloader = background_service("config reload", reloader);
    admin.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(reloader);
    server.add_service(vault_refresh);
    server.add_service(background_service("drain", drain::Drainer { state: state.clone() }));
    // Active health checks of every balancer that has them, initial and reloaded.
    server.add_service(background_service("health checks", tollgate_proxy::health::HealthChecker));
    tracing::info!(
        listen = ?server_conf.listen,
        tls_listen = ?server_conf.tls_listen,
        admin = %server_conf.admin_listen,
        "tollgate starting"
    );
    server.run_forever()
}
