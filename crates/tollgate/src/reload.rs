//! Reloads: on SIGHUP, and with `server.watch` when the config file changes.
//! Parse, validate, resolve secrets, load certificates, build, then swap
//! atomically. A bad file changes nothing; the reason is logged, counted and shown
//! on /status. Requests in flight keep the snapshot they started with (they hold an
//! Arc), and handshakes keep the certificates they started with.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};
use tollgate_config::ServerConfig;
use tollgate_proxy::tls::EdgeTls;
use tollgate_proxy::vaults::VaultStore;
use tollgate_proxy::GatewayState;

use crate::Candidate;

/// How often `watch` looks at the files: Kubernetes updates a mounted ConfigMap
/// by swapping a symlink, which inotify on the file's path would not see, and
/// polling a few small files once a second costs nothing.
const POLL: Duration = Duration::from_secs(1);
/// A changed file is read again after this pause and reloaded only if it stayed
/// the same, so an editor's write in progress is not taken for a broken config.
const SETTLE: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Reloader {
    pub path: PathBuf,
    pub state: Arc<GatewayState>,
    /// The TLS listeners' certificates, when the gateway started with any.
    pub tls: Option<EdgeTls>,
    /// What the listeners were bound with: changing it takes a restart.
    pub bound: Listeners,
    /// The watched files as they were when the running config was read.
    pub initial: Fingerprint,
    /// The text of the config in force, which a vault refresh builds again.
    pub kept: Arc<Mutex<String>>,
    /// One build at a time: a SIGHUP and a vault refresh must not install
    /// their results in the wrong order.
    pub serial: Arc<Mutex<()>>,
    /// A vault secret changed and no build with it has been installed yet: set
    /// by the refresher, cleared only by an install that succeeds (a rebuild or
    /// a reload), so a failed rebuild is tried again rather than forgotten.
    pub rebuild_pending: Arc<AtomicBool>,
}

impl Reloader {
    /// Builds a candidate from the file and installs it, or records why not.
    pub fn reload(&self, trigger: &str) {
        let _one_at_a_time = self.serial.lock();
        self.try_install(|| crate::load(&self.path, &self.state), trigger);
    }

    /// Builds the config in force again from its kept text (its remote
    /// secrets changed): edits to the file since are not picked up.
    pub fn rebuild_kept(&self, trigger: &str) {
        let _one_at_a_time = self.serial.lock();
        let text = self.kept.lock().map(|t| t.clone()).unwrap_or_default();
        self.try_install(|| crate::load_text(&self.path, text, &self.state), trigger);
    }

    /// Called with `serial` held.
    fn try_install(&self, load: impl FnOnce() -> Result<Candidate, String>, trigger: &str) {
        // Taken before the build, which reads the store: a secret changing
        // during it sets the flag again for the next tick.
        let pending = self.rebuild_pending.swap(false, Ordering::SeqCst);
        match load() {
            Ok(candidate) => self.install(candidate, trigger),
            Err(e) => {
                self.rebuild_pending.fetch_or(pending, Ordering::SeqCst);
                tracing::error!(config = %self.path.display(), trigger, "config reload rejected, keeping the running config: {e}");
                self.state.reload_failed(e);
            }
        }
    }

    fn install(&self, candidate: Candidate, trigger: &str) {
        let Candidate { snap, certs, clients, text, vault_secrets } = candidate;
        if let Ok(mut kept) = self.kept.lock() {
            *kept = text;
        }
        VaultStore::shared().retain(&vault_secrets);
        let changed = self.bound.changed_in(&snap.config.server);
        if !changed.is_empty() {
            tracing::warn!(
                fields = %changed.join(", "),
                "listeners are bound at start: these [server] changes take effect after a restart"
            );
        }
        let mut tls = String::new();
        if let Some(edge) = &self.tls {
            edge.clients.install(clients);
        }
        match (&self.tls, certs) {
            (Some(edge), Some(certs)) => {
                tls = format!(", {} TLS certificates", certs.count);
                edge.certs.install(certs);
            }
            (Some(_), None) => {
                tracing::warn!(
                    "the new config lists no tls_certificates; the TLS listeners keep serving the previous ones"
                )
            }
            (None, _) => {}
        }
        let summary = snap.config.summary();
        self.state.install(snap);
        tracing::info!(config = %self.path.display(), trigger, "config reloaded: {summary}{tls}");
    }

    /// Reloads on a blocking thread: parsing, reading certificates and building
    /// are synchronous, and the fingerprint is taken before the file is read so a
    /// change made meanwhile is seen by the next poll.
    /// SIGHUP reloads whatever the files hold now.
    async fn reload_on_hangup(&self) -> Fingerprint {
        self.reload_now("SIGHUP", Fingerprint::of(self.watched())).await
    }

    async fn reload_now(&self, trigger: &'static str, before: Fingerprint) -> Fingerprint {
        let r = self.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload(trigger)).await;
        // The running config may list other certificate files now.
        before.carried_to(self.watched())
    }

    /// The config file, and the certificate files of the running config (a
    /// Kubernetes Secret is updated the same way as a ConfigMap).
    fn watched(&self) -> Vec<PathBuf> {
        watched_files(&self.path, &self.state.snapshot.load().config.server)
    }

    fn watching(&self) -> bool {
        self.state.snapshot.load().config.server.watch
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, reload disabled: {e}");
                return;
            }
        };
        let mut seen = self.initial.clone();
        if crate::early_hup::hand_over() {
            seen = self.reload_on_hangup().await;
        }
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        if self.watching() {
            tracing::info!(config = %self.path.display(), "watching the config file for changes");
        }
        loop {
            tokio::select! {
                _ = hup.recv() => seen = self.reload_on_hangup().await,
                _ = poll.tick() => {
                    // Read on every tick, so `watch` turned on or off by a reload
                    // takes effect at once.
                    if !self.watching() {
                        continue;
                    }
                    let now = Fingerprint::of(self.watched());
                    if now == seen {
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    if Fingerprint::of(self.watched()) != now {
                        continue; // still being written: look again next tick
                    }
                    // A failed reload is not retried until the files change again.
                    seen = self.reload_now("watch", now).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The config file and the certificate and client CA files `server` names (relative to the
/// config's folder, as the loader reads them).
pub fn watched_files(path: &Path, server: &ServerConfig) -> Vec<PathBuf> {
    let base = path.parent().unwrap_or(Path::new(""));
    let mut files = vec![path.to_path_buf()];
    for entry in &server.tls_certificates {
        files.push(base.join(&entry.cert));
        files.push(base.join(&entry.key));
    }
    files.extend(server.client_ca.as_ref().map(|ca| base.join(ca)));
    files
}

/// What identifies the contents of the watched files without keeping them: the
/// path a symlink chain ends at (a ConfigMap swap changes it), modification time,
/// size and a hash of the bytes (a same-size write within the clock's resolution).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<FileState>)>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    target: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
    hash: u64,
}

impl Fingerprint {
    pub fn of(files: Vec<PathBuf>) -> Self {
        Fingerprint(
            files
                .into_iter()
                .map(|f| {
                    let s = FileState::of(&f);
                    (f, s)
                })
                .collect(),
        )
    }

    /// This fingerprint for another list of files: the states taken here where it
    /// has them, the others as they are now.
    pub fn carried_to(self, files: Vec<PathBuf>) -> Self {
        Fingerprint(
            files
                .into_iter()
                .map(|f| {
                    let state = match self.0.iter().find(|(g, _)| *g == f) {
                        Some((_, state)) => state.clone(),
                        None => FileState::of(&f),
                    };
                    (f, state)
                })
                .collect(),
        )
    }
}

impl FileState {
    /// `None` for a file that cannot be read; it then changes when it comes back.
    fn of(path: &Path) -> Option<FileState> {
        let target = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&target).ok()?;
        let bytes = std::fs::read(&target).ok()?;
        // Change detection, not security: std's SipHash is enough.
        let mut hasher = DefaultHasher::new();
        hasher.write(&bytes);
        Some(FileState { target, modified: meta.modified().ok(), len: meta.len(), hash: hasher.finish() })
    }
}

/// The `[server]` fields read once, when the listeners are bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listeners {
    listen: Vec<String>,
    tls_listen: Vec<String>,
    admin_listen: String,
    http2: bool,
    h2c: bool,
    threads: usize,
    client_header_timeout: u64,
}

impl Listeners {
    pub fn of(server: &ServerConfig) -> Self {
        Listeners {
            listen: server.listen.clone(),
            tls_listen: server.tls_listen.clone(),
            admin_listen: server.admin_listen.clone(),
            http2: server.http2,
            h2c: server.h2c,
            threads: server.threads,
            client_header_timeout: server.client_header_timeout,
        }
    }

    /// The names of the fields `server` sets differently.
    fn changed_in(&self, server: &ServerConfig) -> Vec<&'static str> {
        let new = Listeners::of(server);
        let mut changed = Vec::new();
        for (name, differs) in [
            ("listen", self.listen != new.listen),
            ("tls_listen", self.tls_listen != new.tls_listen),
            ("admin_listen", self.admin_listen != new.admin_listen),
            ("http2", self.http2 != new.http2),
            ("h2c", self.h2c != new.h2c),
            ("threads", self.threads != new.threads),
            ("client_header_timeout", self.client_header_timeout != new.client_header_timeout),
        ] {
            if differs {
                changed.push(name);
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swapped_symlink_changes_the_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (name, text) in [("v1", "same"), ("v2", "same")] {
            std::fs::create_dir(d.join(name)).expect("mkdir");
            std::fs::write(d.join(name).join("c.toml"), text).expect("write");
        }
        // ConfigMap layout: c.toml -> ..data/c.toml, ..data -> v1, swapped by rename.
        std::os::unix::fs::symlink("v1", d.join("..data")).expect("link");
        std::os::unix::fs::symlink("..data/c.toml", d.join("c.toml")).expect("link");
        let path = d.join("c.toml");
        let before = Fingerprint::of(vec![path.clone()]);
        assert_eq!(before, Fingerprint::of(vec![path.clone()]));
        std::os::unix::fs::symlink("v2", d.join("..data_tmp")).expect("link");
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).expect("swap");
        assert_ne!(before, Fingerprint::of(vec![path]), "same bytes, new target");
    }

    #[test]
    fn only_fields_read_at_start_are_reported_as_waiting_for_a_restart() {
        let before = ServerConfig::default();
        let bound = Listeners::of(&before);
        let mut after = before.clone();
        // Read per connection or per request: a reload applies them.
        after.max_connections_per_ip = 8;
        after.client_body_timeout = 5_000;
        assert!(bound.changed_in(&after).is_empty());
        // Pingora's server options are built once, when the listeners are.
        after.client_header_timeout = 2_000;
        after.h2c = true;
        assert_eq!(bound.changed_in(&after), ["h2c", "client_header_timeout"]);
    }

    #[test]
    fn carried_fingerprints_keep_old_states_and_add_new_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "1").expect("write");
        std::fs::write(&b, "2").expect("write");
        let old = Fingerprint::of(vec![a.clone()]);
        std::fs::write(&a, "changed").expect("write");
        let carried = old.carried_to(vec![a.clone(), b.clone()]);
        assert_ne!(carried, Fingerprint::of(vec![a.clone(), b.clone()]), "a's old state is kept");
        assert_eq!(carried.0[1], Fingerprint::of(vec![b]).0[0]);
        assert!(Fingerprint::of(vec![dir.path().join("missing")]).0[0].1.is_none());
    }
}
