//! The Redis backend: one budget shared by every gateway replica.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use crate::local::unlimited;
use crate::redis_conn::{Backend, Conn, RedisTopology, Settings};
use crate::window::{self, Snapshot, Usage};
use crate::{Charge, Clock, Decision, LimitError, LimitSpec, Limiter, Reservation, WindowStatus, WindowType};

/// Largest integer a Lua number (a double) holds exactly; limits and costs are capped to
/// it on the way to Redis (about 9e15 tokens: unlimited in practice).
const LUA_MAX_INT: u64 = 1 << 53;

/// Where and how to reach Redis: a single node (`host`/`port`), a Sentinel-managed
/// master, or a Cluster (see [`RedisTopology`]). Keys are hash-tagged per limit key, so
/// every script's keys live in one cluster slot.
#[derive(Clone)]
pub struct RedisConfig {
    pub topology: RedisTopology,
    /// Single-node address; ignored by the Sentinel and Cluster topologies.
    pub host: String,
    pub port: u16,
    pub database: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS with rustls and the system's root certificates.
    pub ssl: bool,
    /// Bound on every Redis call (connecting included), in milliseconds; must be > 0.
    pub timeout_ms: u64,
    /// Prepended to every key, e.g. `tollgate:rl:`.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            topology: RedisTopology::Single,
            host: "127.0.0.1".into(),
            port: 6379,
            database: 0,
            username: None,
            password: None,
            ssl: false,
            timeout_ms: 1000,
            key_prefix: "tollgate:rl:".into(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("topology", &self.topology)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ssl", &self.ssl)
            .field("timeout_ms", &self.timeout_ms)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Limiter on Redis (one node, a Sentinel master or a Cluster).
///
/// Every `reserve` and every `settle` is one Lua script call (`EVALSHA`, falling back to
/// `EVAL` when the script cache is empty, e.g. after a Redis restart), so the check and
/// the charge are atomic across all replicas sharing the Redis. Time comes from the
/// injected [`Clock`] and is passed to the scripts: replicas must keep their clocks in
/// sync (NTP); a skew of `s` lets fixed-window boundaries disagree by `s`.
///
/// Keys: `<prefix>{<key>}:f:<size_secs>:<window_start_secs>` (a counter) for fixed
/// windows, `<prefix>{<key>}:s:<size_secs>` (a hash of bucket index to count) for
/// sliding ones, each with a TTL of the window size plus one bucket width, refreshed on
/// every charge; stale sliding buckets are deleted by the script as it reads them.
///
/// The connection is multiplexed and reconnects by itself after Redis restarts or the
/// network drops; with Sentinel a failed call makes the next one look the master up
/// again, with Cluster the client follows slot moves (see `redis_conn`). Calls made while Redis is
/// unreachable fail within `timeout_ms` with [`LimitError::Backend`]; whether to fail
/// open or closed is the caller's choice. A call that timed out has an unknown outcome:
/// Redis may still run it later (a frozen server runs what sat in its socket when it
/// wakes up), so a timed-out reservation may stay charged until its window passes —
/// errors over-count, never under-count. The connection's driver task runs on the
/// Tokio runtime that creates the limiter, which must outlive it.
pub struct RedisLimiter {
    backend: Backend,
    clock: Arc<dyn Clock>,
    reserve_script: Script,
    settle_script: Script,
    timeout: Duration,
    prefix: String,
    addr: String,
    /// Passwords to scrub from every error message.
    secrets: Vec<String>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter").field("addr", &self.addr).field("prefix", &self.prefix).finish()
    }
}

impl RedisLimiter {
    /// Connects and checks the connection with a `PING` (bounded by `timeout_ms`).
    pub async fn connect(config: RedisConfig, clock: Arc<dyn Clock>) -> Result<Self, LimitError> {
        let me = Self::connect_lazy(config, clock)?;
        me.ping().await?;
        Ok(me)
    }

    /// Builds the limiter without contacting Redis; the first call connects. Lets a
    /// gateway start while Redis is briefly down. Must be called inside a Tokio runtime.
    pub fn connect_lazy(config: RedisConfig, clock: Arc<dyn Clock>) -> Result<Self, LimitError> {
        if config.timeout_ms == 0 {
            return Err(LimitError::Config("timeout_ms must be greater than 0".into()));
        }
        let password = config.password.clone().filter(|p| !p.is_empty());
        let mut secrets: Vec<String> = password.iter().cloned().collect();
        let timeout = Duration::from_millis(config.timeout_ms);
        let settings = Settings {
            ssl: config.ssl,
            timeout,
            database: config.database,
            username: config.username.clone(),
            password,
        };
        let (addr, built) = match &config.topology {
            RedisTopology::Single => {
                if config.host.is_empty() {
                    return Err(LimitError::Config("host is empty".into()));
                }
                let addr = format!("{}:{}", config.host, config.port);
                (addr, Backend::single(&settings, &config.host, config.port))
            }
            RedisTopology::Sentinel(t) => {
                if t.master.is_empty() || t.nodes.is_empty() {
                    return Err(LimitError::Config("sentinel needs a master name and at least one node".into()));
                }
                secrets.extend(t.password.clone().filter(|p| !p.is_empty()));
                let addr = format!("sentinel master {:?} via {}", t.master, join(&t.nodes));
                (addr, Backend::sentinel(&settings, t))
            }
            RedisTopology::Cluster(t) => {
                if t.nodes.is_empty() {
                    return Err(LimitError::Config("cluster needs at least one node".into()));
                }
                if config.database != 0 {
                    return Err(LimitError::Config("cluster only has database 0".into()));
                }
                let addr = format!("cluster {}", join(&t.nodes));
                (addr, Backend::cluster(&settings, t))
            }
        };
        let backend = built.map_err(|e| LimitError::Backend(scrub(&format!("{addr}: {e}"), &secrets)))?;

        Ok(Self {
            backend,
            clock,
            reserve_script: Script::new(include_str!("lua/reserve.lua")),
            settle_script: Script::new(include_str!("lua/settle.lua")),
            timeout,
            prefix: config.key_prefix,
            addr,
            secrets,
        })
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), LimitError> {
        self.bounded(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(|_| ())
    }

    /// Runs one Redis call (getting the connection included: a Sentinel lookup) within
    /// `timeout_ms`, mapping errors to password-free messages.
    pub(crate) async fn bounded<T, F>(&self, call: impl FnOnce(Conn) -> F) -> Result<T, LimitError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let fut = async {
            let conn = self.backend.conn().await?;
            call(conn).await
        };
        let res = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => LimitError::Backend(scrub(&format!("{}: {e}", self.addr), &self.secrets)),
            Err(_) => LimitError::Backend(format!("{}: no answer within {} ms", self.addr, self.timeout.as_millis())),
        };
        self.backend.failed();
        Err(res)
    }

    /// `<prefix>{<key>}`. Redis Cluster hashes only the text between the first `{` and
    /// the next `}`, and the whole key when that text is empty; a key that is empty or
    /// starts with `}` (or with the escape itself, a backslash) gets a leading backslash
    /// so the tag is never empty and all of one limit's keys share a slot. The escape is
    /// injective.
    fn base_key(&self, key: &str) -> String {
        if key.is_empty() || key.starts_with('}') || key.starts_with('\\') {
            format!("{}{{\\{key}}}", self.prefix)
        } else {
            format!("{}{{{key}}}", self.prefix)
        }
    }

    fn window_key(base: &str, kind: WindowType, size_secs: u64, bucket: u64) -> String {
        match kind {
            WindowType::Fixed => format!("{base}:f:{size_secs}:{}", bucket / 1000),
            WindowType::Sliding => format!("{base}:s:{size_secs}"),
        }
    }

    /// Runs the reservation script; `cost == 0` is also how `peek` reads.
    async fn run_reserve(
        &self,
        key: &str,
        spec: &LimitSpec,
        cost: u64,
        now: u64,
    ) -> Result<(bool, u64, Vec<Charge>, Vec<Snapshot>), LimitError> {
        let base = self.base_key(key);
        let kind = spec.window_type;
        let mut inv = self.reserve_script.prepare_invoke();
        inv.arg(now).arg(cost.min(LUA_MAX_INT)).arg(spec.windows.len());
        let mut charges = Vec::with_capacity(spec.windows.len());
        for w in &spec.windows {
            let size = window::size_ms(w.size_secs);
            let width = window::width_ms(w.size_secs);
            let bucket = match kind {
                WindowType::Fixed => window::fixed_start(now, size),
                WindowType::Sliding => now / width,
            };
            inv.key(Self::window_key(&base, kind, w.size_secs, bucket));
            inv.arg(kind_arg(kind)).arg(size).arg(w.limit.min(LUA_MAX_INT)).arg(bucket).arg(width);
            charges.push(Charge { size_secs: w.size_secs, bucket });
        }
        let (allowed, charged, lists): (i64, i64, Vec<Vec<i64>>) =
            self.bounded(|mut conn| async move { inv.invoke_async(&mut conn).await }).await?;
        if lists.len() != spec.windows.len() {
            return Err(LimitError::Backend(format!(
                "{}: reservation script answered {} windows, expected {}",
                self.addr,
                lists.len(),
                spec.windows.len()
            )));
        }
        let snaps = lists
            .into_iter()
            .map(|flat| {
                let buckets: Vec<(u64, u64)> = flat
                    .chunks_exact(2)
                    .map(|p| (u64::try_from(p[0]).unwrap_or(0), u64::try_from(p[1]).unwrap_or(0)))
                    .collect();
                Snapshot::new(kind, buckets)
            })
            .collect();
        Ok((allowed == 1, u64::try_from(charged).unwrap_or(0), charges, snaps))
    }
}

fn kind_arg(kind: WindowType) -> &'static str {
    match kind {
        WindowType::Fixed => "f",
        WindowType::Sliding => "s",
    }
}

/// Removes the passwords from an error message, whatever the error carried.
fn scrub(msg: &str, secrets: &[String]) -> String {
    secrets.iter().filter(|p| !p.is_empty()).fold(msg.to_string(), |m, p| m.replace(p.as_str(), "<redacted>"))
}

fn join(nodes: &[(String, u16)]) -> String {
    let parts: Vec<String> = nodes.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    parts.join(",")
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn reserve(&self, key: &str, spec: &LimitSpec, cost: u64) -> Result<Decision, LimitError> {
        window::validate(spec)?;
        if spec.windows.is_empty() {
            return Ok(unlimited(spec, cost));
        }
        let now = self.clock.now_ms();
        let (allowed, charged, charges, snaps) = self.run_reserve(key, spec, cost, now).await?;
        let windows = window::statuses(spec, now, |i| (&snaps[i]).summary());
        Ok(if allowed {
            Decision {
                allowed: true,
                windows,
                retry_after_secs: None,
                reservation: Some(Reservation { charged, window_type: spec.window_type, charges }),
            }
        } else {
            Decision {
                allowed: false,
                windows,
                retry_after_secs: Some(window::retry_after_secs(spec, now, cost, |i| &snaps[i])),
                reservation: None,
            }
        })
    }

    async fn settle(
        &self,
        key: &str,
        _spec: &LimitSpec,
        reservation: &Reservation,
        actual: u64,
    ) -> Result<(), LimitError> {
        let delta = i128::from(actual.min(LUA_MAX_INT)) - i128::from(reservation.charged);
        if delta == 0 || reservation.charges.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let base = self.base_key(key);
        let kind = reservation.window_type;
        let mut inv = self.settle_script.prepare_invoke();
        inv.arg(now).arg(delta.to_string()).arg(reservation.charges.len());
        for c in &reservation.charges {
            inv.key(Self::window_key(&base, kind, c.size_secs, c.bucket));
            inv.arg(kind_arg(kind)).arg(window::size_ms(c.size_secs)).arg(c.bucket).arg(window::width_ms(c.size_secs));
        }
        let _corrected: i64 = self.bounded(|mut conn| async move { inv.invoke_async(&mut conn).await }).await?;
        Ok(())
    }

    async fn peek(&self, key: &str, spec: &LimitSpec) -> Result<Vec<WindowStatus>, LimitError> {
        window::validate(spec)?;
        if spec.windows.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        // A cost of 0 never charges: the script only reads (and drops stale buckets).
        let (_, _, _, snaps) = self.run_reserve(key, spec, 0, now).await?;
        Ok(window::statuses(spec, now, |i| (&snaps[i]).summary()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_password() {
        assert_eq!(scrub("auth failed for s3cret!", &["s3cret".into()]), "auth failed for <redacted>!");
        assert_eq!(scrub("a x b y", &["x".into(), "y".into()]), "a <redacted> b <redacted>");
        assert_eq!(scrub("plain", &[]), "plain");
    }

    #[test]
    fn debug_redacts_password() {
        let cfg = RedisConfig { password: Some("hunter2".into()), ..RedisConfig::default() };
        let s = format!("{cfg:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("<redacted>"));
    }
}
