//! How the Redis backend reaches its data: one node, the master of a Sentinel-managed
//! group, or a Redis Cluster. The limiter only sees [`Conn`], a cheap clonable handle.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisConnectionInfo, RedisFuture, RedisResult,
    TlsMode, Value,
};

/// Which Redis deployment to talk to. `Single` uses `RedisConfig::host`/`port`.
#[derive(Clone, Debug, Default)]
pub enum RedisTopology {
    #[default]
    Single,
    Sentinel(SentinelTopology),
    Cluster(ClusterTopology),
}

/// A master found through Redis Sentinel (`sentinel_*` fields in Kong).
#[derive(Clone, Default)]
pub struct SentinelTopology {
    /// The name the sentinels monitor the master under.
    pub master: String,
    /// Sentinel addresses (host, port), tried in order.
    pub nodes: Vec<(String, u16)>,
    /// Credentials for the sentinels themselves; the master uses `RedisConfig`'s.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for SentinelTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelTopology")
            .field("master", &self.master)
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A Redis Cluster, discovered from any of its seed nodes.
#[derive(Clone, Debug)]
pub struct ClusterTopology {
    /// Seed nodes (ip, port); the rest of the cluster is discovered from them.
    pub nodes: Vec<(String, u16)>,
    /// How many MOVED/ASK redirections (and retries) one call may follow.
    pub max_redirections: u32,
}

/// Common connection settings, derived from `RedisConfig`.
pub(crate) struct Settings {
    pub ssl: bool,
    pub timeout: Duration,
    pub database: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Settings {
    fn redis_info(&self) -> RedisConnectionInfo {
        credentials(self.database, self.username.as_deref(), self.password.as_deref())
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            // Fail fast while Redis is down; every later call triggers a new attempt.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
    }

    fn addr(&self, host: &str, port: u16) -> ConnectionAddr {
        if self.ssl {
            install_crypto_provider();
            ConnectionAddr::TcpTls { host: host.to_string(), port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.to_string(), port)
        }
    }

    fn info(&self, host: &str, port: u16, redis: RedisConnectionInfo) -> RedisResult<ConnectionInfo> {
        Ok(self.addr(host, port).into_connection_info()?.set_redis_settings(redis))
    }
}

fn credentials(db: i64, user: Option<&str>, pass: Option<&str>) -> RedisConnectionInfo {
    let mut info = RedisConnectionInfo::default().set_db(db);
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        info = info.set_username(u);
    }
    if let Some(p) = pass.filter(|p| !p.is_empty()) {
        info = info.set_password(p);
    }
    info
}

/// rustls needs a process-wide crypto provider; install ring's unless the process
/// (e.g. Pingora) already chose one.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A live backend. Building one never contacts Redis.
pub(crate) enum Backend {
    /// Reconnects to the same address by itself.
    Single(ConnectionManager),
    /// Boxed: the sentinel client is much larger than the other variants.
    Sentinel(Box<SentinelMaster>),
    /// Follows MOVED/ASK and refreshes its slot map by itself.
    Cluster(ClusterConnection),
}

impl Backend {
    pub(crate) fn single(s: &Settings, host: &str, port: u16) -> RedisResult<Self> {
        let client = redis::Client::open(s.info(host, port, s.redis_info())?)?;
        Ok(Backend::Single(ConnectionManager::new_lazy_with_config(client, s.manager_config())?))
    }

    pub(crate) fn sentinel(s: &Settings, t: &SentinelTopology) -> RedisResult<Self> {
        let sentinel_auth = credentials(0, t.username.as_deref(), t.password.as_deref());
        let nodes =
            t.nodes.iter().map(|(h, p)| s.info(h, *p, sentinel_auth.clone())).collect::<RedisResult<Vec<_>>>()?;
        let mut master_info = SentinelNodeConnectionInfo::default().set_redis_connection_info(s.redis_info());
        if s.ssl {
            master_info = master_info.set_tls_mode(TlsMode::Secure);
        }
        let client = SentinelClient::build(nodes, &t.master, Some(master_info), SentinelServerType::Master)?;
        Ok(Backend::Sentinel(Box::new(SentinelMaster {
            client: tokio::sync::Mutex::new(client),
            current: Mutex::new(None),
            manager_config: s.manager_config(),
        })))
    }

    pub(crate) fn cluster(s: &Settings, t: &ClusterTopology) -> RedisResult<Self> {
        let nodes = t
            .nodes
            .iter()
            .map(|(h, p)| s.info(h, *p, RedisConnectionInfo::default()))
            .collect::<RedisResult<Vec<_>>>()?;
        let mut b = ClusterClientBuilder::new(nodes)
            .retries(t.max_redirections)
            .connection_timeout(s.timeout)
            .response_timeout(s.timeout);
        if let Some(u) = s.username.as_deref().filter(|u| !u.is_empty()) {
            b = b.username(u);
        }
        if let Some(p) = s.password.as_deref().filter(|p| !p.is_empty()) {
            b = b.password(p);
        }
        if s.ssl {
            install_crypto_provider();
            b = b.tls(TlsMode::Secure);
        }
        let client = b.build()?;
        let config =
            redis::cluster::ClusterConfig::new().set_connection_timeout(s.timeout).set_response_timeout(s.timeout);
        Ok(Backend::Cluster(client.get_pending_async_connection_with_config(config)))
    }

    /// A handle for one call.
    pub(crate) async fn conn(&self) -> RedisResult<Conn> {
        match self {
            Backend::Single(m) => Ok(Conn::Manager(m.clone())),
            Backend::Sentinel(s) => s.conn().await.map(Conn::Manager),
            Backend::Cluster(c) => Ok(Conn::Cluster(c.clone())),
        }
    }

    /// Called after a failed or timed-out call.
    pub(crate) fn failed(&self) {
        if let Backend::Sentinel(s) = self {
            s.forget();
        }
    }
}

/// The current master of a Sentinel group. A connection manager alone would keep
/// reconnecting to the old address after a failover (a dead node, or a demoted one that
/// answers writes with READONLY), so any failure makes the next call ask the sentinels
/// again; the sentinel client checks with `ROLE` that the node it returns is a master.
pub(crate) struct SentinelMaster {
    /// Serialises lookups so a burst of failures asks the sentinels once.
    client: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<ConnectionManager>>,
    manager_config: ConnectionManagerConfig,
}

impl SentinelMaster {
    fn cached(&self) -> Option<ConnectionManager> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    async fn conn(&self) -> RedisResult<ConnectionManager> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let mut sentinel = self.client.lock().await;
        // Another call may have looked the master up while this one waited.
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let client = sentinel.async_get_client().await?;
        let manager = ConnectionManager::new_lazy_with_config(client, self.manager_config.clone())?;
        if let Ok(mut cur) = self.current.lock() {
            *cur = Some(manager.clone());
        }
        Ok(manager)
    }

    fn forget(&self) {
        if let Ok(mut cur) = self.current.lock() {
            *cur = None;
        }
    }
}

/// One call's connection, whatever the topology.
#[derive(Clone)]
pub(crate) enum Conn {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Manager(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Manager(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
