//! The Redis backend: one budget shared by every gateway replica.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Script};

use crate::local::unlimited;
use crate::window::{self, Snapshot, Usage};
use crate::{
    Charge, Clock, Decision, LimitError, LimitSpec, Limiter, Reservation, WindowStatus, WindowType,
};

/// Largest integer a Lua number (a double) holds exactly; limits and costs are capped to
/// it on the way to Redis (about 9e15 tokens: unlimited in practice).
const LUA_MAX_INT: u64 = 1 << 53;

/// Where and how to reach Redis. Single node only (no Sentinel, no Cluster topology);
/// keys are nevertheless hash-tagged per limit key so that a future cluster mode keeps
/// every script's keys in one slot.
#[derive(Clone)]
pub struct RedisConfig {
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

/// Limiter on a single Redis node.
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
/// The connection is a `redis` connection manager: multiplexed, and reconnecting by
/// itself after Redis restarts or the network drops. Calls made while Redis is
/// unreachable fail within `timeout_ms` with [`LimitError::Backend`]; whether to fail
/// open or closed is the caller's choice. A call that timed out has an unknown outcome:
/// Redis may still run it later (a frozen server runs what sat in its socket when it
/// wakes up), so a timed-out reservation may stay charged until its window passes —
/// errors over-count, never under-count. The connection's driver task runs on the
/// Tokio runtime that creates the limiter, which must outlive it.
pub struct RedisLimiter {
    conn: ConnectionManager,
    clock: Arc<dyn Clock>,
    reserve_script: Script,
    settle_script: Script,
    timeout: Duration,
    prefix: String,
    addr: String,
    password: Option<String>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("addr", &self.addr)
            .field("prefix", &self.prefix)
            .finish()
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
        if config.host.is_empty() {
            return Err(LimitError::Config("host is empty".into()));
        }
        if config.timeout_ms == 0 {
            return Err(LimitError::Config(
                "timeout_ms must be greater than 0".into(),
            ));
        }
        let addr = format!("{}:{}", config.host, config.port);
        let password = config.password.clone().filter(|p| !p.is_empty());
        let scrub = |e: redis::RedisError| {
            LimitError::Backend(scrub(&format!("{addr}: {e}"), password.as_deref()))
        };

        let conn_addr = if config.ssl {
            // rustls needs a process-wide crypto provider; install ring's unless the
            // process (e.g. Pingora) already chose one.
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
            ConnectionAddr::TcpTls {
                host: config.host.clone(),
                port: config.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(config.host.clone(), config.port)
        };
        let mut settings = RedisConnectionInfo::default().set_db(config.database);
        if let Some(user) = config.username.as_deref().filter(|u| !u.is_empty()) {
            settings = settings.set_username(user);
        }
        if let Some(pass) = password.as_deref() {
            settings = settings.set_password(pass);
        }
        let info = conn_addr
            .into_connection_info()
            .map_err(scrub)?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(scrub)?;

        let timeout = Duration::from_millis(config.timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Fail fast while Redis is down; every later call triggers a new attempt.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let conn =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(scrub)?;

        Ok(Self {
            conn,
            clock,
            reserve_script: Script::new(include_str!("lua/reserve.lua")),
            settle_script: Script::new(include_str!("lua/settle.lua")),
            timeout,
            prefix: config.key_prefix,
            addr,
            password,
        })
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), LimitError> {
        let mut conn = self.conn.clone();
        let fut = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        self.bounded(fut).await.map(|_| ())
    }

    /// Runs one Redis call within `timeout_ms`, mapping errors to password-free messages.
    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, LimitError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(LimitError::Backend(format!(
                "{}: no answer within {} ms",
                self.addr,
                self.timeout.as_millis()
            ))),
        }
    }

    fn error(&self, e: &redis::RedisError) -> LimitError {
        LimitError::Backend(scrub(
            &format!("{}: {e}", self.addr),
            self.password.as_deref(),
        ))
    }

    fn base_key(&self, key: &str) -> String {
        format!("{}{{{key}}}", self.prefix)
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
        inv.arg(now)
            .arg(cost.min(LUA_MAX_INT))
            .arg(spec.windows.len());
        let mut charges = Vec::with_capacity(spec.windows.len());
        for w in &spec.windows {
            let size = window::size_ms(w.size_secs);
            let width = window::width_ms(w.size_secs);
            let bucket = match kind {
                WindowType::Fixed => window::fixed_start(now, size),
                WindowType::Sliding => now / width,
            };
            inv.key(Self::window_key(&base, kind, w.size_secs, bucket));
            inv.arg(kind_arg(kind))
                .arg(size)
                .arg(w.limit.min(LUA_MAX_INT))
                .arg(bucket)
                .arg(width);
            charges.push(Charge {
                size_secs: w.size_secs,
                bucket,
            });
        }
        let mut conn = self.conn.clone();
        let (allowed, charged, lists): (i64, i64, Vec<Vec<i64>>) = self
            .bounded(async move { inv.invoke_async(&mut conn).await })
            .await?;
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
                    .map(|p| {
                        (
                            u64::try_from(p[0]).unwrap_or(0),
                            u64::try_from(p[1]).unwrap_or(0),
                        )
                    })
                    .collect();
                Snapshot::new(kind, buckets)
            })
            .collect();
        Ok((
            allowed == 1,
            u64::try_from(charged).unwrap_or(0),
            charges,
            snaps,
        ))
    }
}

fn kind_arg(kind: WindowType) -> &'static str {
    match kind {
        WindowType::Fixed => "f",
        WindowType::Sliding => "s",
    }
}

/// Removes the password from an error message, whatever the error carried.
fn scrub(msg: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => msg.replace(p, "<redacted>"),
        _ => msg.to_string(),
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn reserve(
        &self,
        key: &str,
        spec: &LimitSpec,
        cost: u64,
    ) -> Result<Decision, LimitError> {
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
                reservation: Some(Reservation {
                    charged,
                    window_type: spec.window_type,
                    charges,
                }),
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
        inv.arg(now)
            .arg(delta.to_string())
            .arg(reservation.charges.len());
        for c in &reservation.charges {
            inv.key(Self::window_key(&base, kind, c.size_secs, c.bucket));
            inv.arg(kind_arg(kind))
                .arg(window::size_ms(c.size_secs))
                .arg(c.bucket)
                .arg(window::width_ms(c.size_secs));
        }
        let mut conn = self.conn.clone();
        let _corrected: i64 = self
            .bounded(async move { inv.invoke_async(&mut conn).await })
            .await?;
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
        assert_eq!(
            scrub("auth failed for s3cret!", Some("s3cret")),
            "auth failed for <redacted>!"
        );
        assert_eq!(scrub("plain", None), "plain");
    }

    #[test]
    fn debug_redacts_password() {
        let cfg = RedisConfig {
            password: Some("hunter2".into()),
            ..RedisConfig::default()
        };
        let s = format!("{cfg:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("<redacted>"));
    }
}
