//! Secrets of remote vaults (`[[vaults]]` with `name = "hcv"`, `"aws"`, `"gcp"` or `"azure"`): fetched when a
//! config is loaded, kept, and fetched again in the background when their
//! `ttl` is due, so that a rotated secret reaches new requests without a reload
//! (the caller rebuilds the snapshot from the kept config text when
//! `refresh_due` says a value changed).
//!
//! A failed refresh keeps the last good value for `resurrect_ttl` past its
//! `ttl` (Kong's rule) and is retried after `neg_ttl` (or `ttl`); it is logged
//! without the secret, counted per vault, and shown on /status and /metrics.
//!
//! The config loader is synchronous (and runs before Pingora's runtimes
//! exist), while the HTTP client is async: fetches run on a small runtime of
//! this store's own, through `Runtime::block_on`. Callers are therefore
//! plain threads (startup, `spawn_blocking`), never async tasks.

pub mod aws;
pub mod azure;
pub mod gcp;
pub mod hcv;
mod report;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tollgate_clock::{Clock, SystemClock};
use tollgate_config::{RemoteSecrets, SecretAddress, Vault, VaultConfig};

use crate::upstream::fetch::Fetch;

/// Which secret an entry holds: vault prefix, resource, version.
pub type SecretKey = (String, String, Option<u32>);

fn key_of(vault: &Vault, address: &SecretAddress) -> SecretKey {
    (vault.prefix.clone(), address.resource.clone(), address.version)
}

/// `secs` seconds after `now_ms`. Durations come from configs and from vaults'
/// answers (a lease, a token's lifetime), so they saturate rather than overflow.
pub(crate) fn after_secs(now_ms: u64, secs: u64) -> u64 {
    now_ms.saturating_add(secs.saturating_mul(1000))
}

/// `text` as one segment of a URL path or one form value: all but RFC 3986's
/// unreserved characters percent-encoded (`/` too).
pub(crate) fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How long one load (a start, a reload, a rebuild) waits on vaults in all:
/// past it, secrets not yet fetched use their last good value, so a slow vault
/// cannot hold a start or a reload up for one request timeout per secret.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(30);

/// Fetches one secret (the whole of it, before a key is picked), blocking.
pub trait SecretFetcher: Send + Sync {
    fn fetch(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String>;

    /// `fetch`, given up after `limit`.
    fn fetch_within(&self, vault: &Vault, address: &SecretAddress, limit: Duration) -> Result<String, String> {
        let _ = limit;
        self.fetch(vault, address)
    }
}

/// One cached secret. Times are the store clock's milliseconds.
struct Entry {
    vault: Vault,
    address: SecretAddress,
    /// The last good value; `None` once `resurrect_ttl` ran out.
    value: Option<String>,
    ok_ms: u64,
    /// When the next refresh is due (`None`: never, `ttl` is 0).
    next_ms: Option<u64>,
    /// The last refresh's error, while it is failing.
    error: Option<String>,
    /// Which fetch-at-load put this entry here: a refresh that started before a
    /// newer one (a reload) must not put its older value over it.
    generation: u64,
}

/// What /status and /metrics say about one vault.
#[derive(Debug, Clone, Default)]
struct VaultStats {
    kind: &'static str,
    fetches: u64,
    errors: u64,
    last_ok_ms: Option<u64>,
    last_error: Option<String>,
    last_error_ms: Option<u64>,
}

pub struct VaultStore {
    clock: Arc<dyn Clock>,
    fetcher: Box<dyn SecretFetcher>,
    entries: Mutex<HashMap<SecretKey, Entry>>,
    generations: AtomicU64,
    stats: Mutex<HashMap<String, VaultStats>>,
}

/// The process's store: wall clock, HashiCorp Vault over the shared fetch client.
static SHARED: LazyLock<VaultStore> =
    LazyLock::new(|| VaultStore::new(Arc::new(SystemClock), Box::new(HttpFetcher::new())));

impl VaultStore {
    pub fn new(clock: Arc<dyn Clock>, fetcher: Box<dyn SecretFetcher>) -> Self {
        VaultStore {
            clock,
            fetcher,
            entries: Mutex::default(),
            generations: AtomicU64::new(0),
            stats: Mutex::default(),
        }
    }

    pub fn shared() -> &'static VaultStore {
        &SHARED
    }

    /// A `RemoteSecrets` for one load, which notes the secrets it uses.
    /// `fresh` fetches each secret anew (a start or a reload: the operator
    /// asked for what the vaults hold now); otherwise cached values are used
    /// (a rebuild after a refresh, which fetched what was due).
    pub fn recorder(&self, fresh: bool) -> Recorder<'_> {
        let deadline_ms = self.clock.now_ms().saturating_add(LOAD_DEADLINE.as_millis() as u64);
        Recorder { store: self, fresh, deadline_ms, used: Mutex::default() }
    }

    /// The cached value, or a fetch now (a secret seen for the first time, or
    /// whose vault's config changed, or expired past `resurrect_ttl`).
    pub fn get(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String> {
        self.get_within(vault, address, LOAD_DEADLINE)
    }

    fn get_within(&self, vault: &Vault, address: &SecretAddress, limit: Duration) -> Result<String, String> {
        match self.cached(vault, address) {
            Some(value) => Ok(value),
            None => self.fetch_now(vault, address, limit),
        }
    }

    /// A fetch now, as a reload asks: when the vault fails, the last good
    /// value while it is still within `resurrect_ttl` (the failure logged).
    pub fn get_fresh(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String> {
        self.get_fresh_within(vault, address, LOAD_DEADLINE)
    }

    fn get_fresh_within(&self, vault: &Vault, address: &SecretAddress, limit: Duration) -> Result<String, String> {
        self.fetch_now(vault, address, limit).or_else(|e| match self.cached(vault, address) {
            Some(value) => {
                tracing::warn!(
                    vault = %vault.prefix,
                    resource = %address.resource,
                    "vault fetch failed, using the last good value: {e}"
                );
                Ok(value)
            }
            None => Err(e),
        })
    }

    fn cached(&self, vault: &Vault, address: &SecretAddress) -> Option<String> {
        let entries = self.entries.lock().ok()?;
        entries.get(&key_of(vault, address)).filter(|e| e.vault == *vault).and_then(|e| e.value.clone())
    }

    fn fetch_now(&self, vault: &Vault, address: &SecretAddress, limit: Duration) -> Result<String, String> {
        let key = key_of(vault, address);
        let result = self.fetcher.fetch_within(vault, address, limit);
        let now = self.clock.now_ms();
        self.count(vault, &result, now);
        if let (Err(e), Ok(mut entries)) = (&result, self.entries.lock()) {
            // A failure only marks the entry; its last good value stays.
            if let Some(entry) = entries.get_mut(&key).filter(|e| e.vault == *vault) {
                entry.error = Some(e.clone());
            }
        }
        let value = result?;
        let ttl = vault.ttls().ttl;
        let entry = Entry {
            vault: vault.clone(),
            address: address.clone(),
            value: Some(value.clone()),
            ok_ms: now,
            next_ms: (ttl > 0).then(|| after_secs(now, ttl)),
            error: None,
            generation: self.generations.fetch_add(1, Ordering::Relaxed),
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, entry);
        }
        Ok(value)
    }

    /// Fetches every secret whose refresh is due; true when a value changed
    /// (the config should be built again from its kept text).
    pub fn refresh_due(&self) -> bool {
        let now = self.clock.now_ms();
        let due: Vec<(SecretKey, Vault, SecretAddress, u64)> = match self.entries.lock() {
            Ok(entries) => entries
                .iter()
                .filter(|(_, e)| e.next_ms.is_some_and(|next| next <= now))
                .map(|(k, e)| (k.clone(), e.vault.clone(), e.address.clone(), e.generation))
                .collect(),
            Err(_) => return false,
        };
        let mut changed = false;
        for (key, vault, address, generation) in due {
            // Outside the lock: a fetch waits on the network.
            let result = self.fetcher.fetch_within(&vault, &address, LOAD_DEADLINE);
            let now = self.clock.now_ms();
            self.count(&vault, &result, now);
            if let Ok(mut entries) = self.entries.lock() {
                // A reload may have fetched (or changed the vault) meanwhile: its
                // value is the newer one.
                if let Some(entry) = entries.get_mut(&key).filter(|e| e.generation == generation) {
                    changed |= apply(entry, result, now);
                }
            }
        }
        changed
    }

    /// Forgets the secrets (and vaults) the config in force does not use.
    pub fn retain(&self, used: &HashSet<SecretKey>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, _| used.contains(k));
        }
        let prefixes: HashSet<&String> = used.iter().map(|(p, _, _)| p).collect();
        if let Ok(mut stats) = self.stats.lock() {
            stats.retain(|p, _| prefixes.contains(p));
        }
    }

    fn count(&self, vault: &Vault, result: &Result<String, String>, now: u64) {
        let Ok(mut stats) = self.stats.lock() else { return };
        let s = stats.entry(vault.prefix.clone()).or_default();
        s.kind = vault.name.as_str();
        s.fetches += 1;
        match result {
            Ok(_) => s.last_ok_ms = Some(now),
            Err(e) => {
                s.errors += 1;
                s.last_error = Some(e.clone());
                s.last_error_ms = Some(now);
            }
        }
    }
}

/// A refresh's result applied to its entry; true when the value changed.
fn apply(entry: &mut Entry, result: Result<String, String>, now: u64) -> bool {
    let ttls = entry.vault.ttls();
    match result {
        Ok(value) => {
            let changed = entry.value.as_deref() != Some(value.as_str());
            entry.value = Some(value);
            entry.ok_ms = now;
            entry.error = None;
            entry.next_ms = Some(after_secs(now, ttls.ttl.max(1)));
            changed
        }
        Err(e) => {
            let retry = if ttls.neg_ttl > 0 { ttls.neg_ttl } else { ttls.ttl.max(1) };
            entry.next_ms = Some(after_secs(now, retry));
            let expired = now >= after_secs(entry.ok_ms, ttls.ttl.saturating_add(ttls.resurrect_ttl));
            tracing::warn!(
                vault = %entry.vault.prefix,
                resource = %entry.address.resource,
                "vault refresh failed, {}: {e}",
                if expired { "resurrect_ttl is over, the last good value is dropped" } else { "keeping the last good value" }
            );
            if expired {
                entry.value = None;
            }
            entry.error = Some(e);
            false
        }
    }
}

/// The store as one load sees it: what it fetched is noted, so that the
/// secrets of a config no longer in force can be forgotten.
pub struct Recorder<'a> {
    store: &'a VaultStore,
    fresh: bool,
    /// Store-clock milliseconds at which this load stops waiting on vaults.
    deadline_ms: u64,
    used: Mutex<HashSet<SecretKey>>,
}

impl Recorder<'_> {
    pub fn used(self) -> HashSet<SecretKey> {
        self.used.into_inner().unwrap_or_default()
    }
}

impl RemoteSecrets for Recorder<'_> {
    fn fetch(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String> {
        // A secret referenced twice in one file is fetched once.
        let first_use = self.used.lock().map(|mut used| used.insert(key_of(vault, address))).unwrap_or(true);
        let left = Duration::from_millis(self.deadline_ms.saturating_sub(self.store.clock.now_ms()));
        if left.is_zero() {
            return self.store.cached(vault, address).ok_or_else(|| {
                format!(
                    "vault `{}`: this load's {} s for vault fetches ran out before {} was fetched, \
                     and there is no last good value",
                    vault.prefix,
                    LOAD_DEADLINE.as_secs(),
                    address.resource
                )
            });
        }
        if self.fresh && first_use {
            self.store.get_fresh_within(vault, address, left)
        } else {
            self.store.get_within(vault, address, left)
        }
    }
}

/// Remote stores over the shared fetch client, on a runtime of their own.
pub struct HttpFetcher {
    runtime: Result<tokio::runtime::Runtime, String>,
    logins: hcv::Logins,
    gcp_tokens: gcp::Tokens,
    azure_tokens: azure::Tokens,
    clock: SystemClock,
}

impl HttpFetcher {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tollgate-vaults")
            .enable_all()
            .build()
            .map_err(|e| format!("the vault client could not start: {e}"));
        HttpFetcher {
            runtime,
            logins: hcv::Logins::default(),
            gcp_tokens: gcp::Tokens::default(),
            azure_tokens: azure::Tokens::default(),
            clock: SystemClock,
        }
    }
}

impl Default for HttpFetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// `read`, or an error once `limit` has passed.
async fn within(
    limit: Duration,
    read: impl std::future::Future<Output = Result<String, String>>,
) -> Result<String, String> {
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms (the load's deadline for vaults)", limit.as_millis())))
}

impl SecretFetcher for HttpFetcher {
    fn fetch(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String> {
        self.fetch_within(vault, address, LOAD_DEADLINE)
    }

    fn fetch_within(&self, vault: &Vault, address: &SecretAddress, limit: Duration) -> Result<String, String> {
        let runtime = self.runtime.as_ref().map_err(Clone::clone)?;
        match &vault.config {
            VaultConfig::Hcv(c) => {
                let fetch = Fetch::shared();
                runtime.block_on(within(limit, hcv::read(&fetch, &self.logins, &self.clock, &vault.prefix, c, address)))
            }
            VaultConfig::Aws(c) => {
                let fetch = Fetch::shared();
                let env = |name: &str| std::env::var(name).ok();
                runtime.block_on(within(limit, aws::read(&fetch, c, address, &env, std::time::SystemTime::now())))
            }
            VaultConfig::Gcp(c) => {
                let fetch = Fetch::shared();
                let env = |name: &str| std::env::var(name).ok();
                runtime.block_on(within(limit, gcp::read(&fetch, &self.gcp_tokens, c, address, &env)))
            }
            VaultConfig::Azure(c) => {
                let fetch = Fetch::shared();
                let env = |name: &str| std::env::var(name).ok();
                runtime.block_on(within(limit, azure::read(&fetch, &self.azure_tokens, &self.clock, c, address, &env)))
            }
            _ => Err(format!("vault `{}` is not a remote vault", vault.prefix)),
        }
    }
}

#[cfg(test)]
mod tests;
