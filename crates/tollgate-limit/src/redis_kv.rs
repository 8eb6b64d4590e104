//! Plain key-value calls on the limiter's Redis connection, for other
//! gateway state that replicas share (the answer cache, MCP's event log): one client per
//! Redis server, whatever uses it. Keys are used as given (no limiter
//! prefix); every call is bounded by the connection's timeout.

use std::sync::LazyLock;

use redis::Script;

use crate::{LimitError, RedisLimiter};

impl RedisLimiter {
    /// `GET key`.
    pub async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, LimitError> {
        let cmd = redis::cmd("GET").arg(key).clone();
        self.bounded(|mut conn| async move { cmd.query_async::<Option<Vec<u8>>>(&mut conn).await }).await
    }

    /// `SET key value PX ttl_ms`.
    pub async fn kv_set_px(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<(), LimitError> {
        let cmd = redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl_ms.max(1)).clone();
        self.bounded(|mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await
    }

    /// `DEL key`.
    pub async fn kv_del(&self, key: &str) -> Result<(), LimitError> {
        let cmd = redis::cmd("DEL").arg(key).clone();
        self.bounded(|mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await
    }

    /// `PEXPIRE key ttl_ms` (nothing when the key does not exist).
    pub async fn kv_pexpire(&self, key: &str, ttl_ms: u64) -> Result<(), LimitError> {
        let cmd = redis::cmd("PEXPIRE").arg(key).arg(ttl_ms.max(1)).clone();
        self.bounded(|mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await
    }

    /// Appends `entries` to the list `key`, keeps its last `max_len`, and
    /// sets its expiry to `ttl_ms`: one atomic round trip (MCP's event log).
    pub async fn kv_list_push(
        &self,
        key: &str,
        entries: &[Vec<u8>],
        max_len: usize,
        ttl_ms: u64,
    ) -> Result<(), LimitError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("RPUSH").arg(key).arg(entries).ignore();
        pipe.cmd("LTRIM").arg(key).arg(-i64::try_from(max_len.max(1)).unwrap_or(i64::MAX)).arg(-1).ignore();
        pipe.cmd("PEXPIRE").arg(key).arg(ttl_ms.max(1)).ignore();
        self.bounded(|mut conn| async move { pipe.query_async::<()>(&mut conn).await }).await
    }

    /// The first entry of the list `key`, and its entries from index `from`
    /// on, as many as fit in `max_bytes` (at least one, however large);
    /// `None` when the list does not exist. One script call, so the first
    /// entry says where the entries read sit even when the list is trimmed
    /// from the front concurrently.
    pub async fn kv_list_from(
        &self,
        key: &str,
        from: u64,
        max_bytes: usize,
    ) -> Result<Option<(Vec<u8>, Vec<Vec<u8>>)>, LimitError> {
        let mut inv = LIST_FROM.prepare_invoke();
        inv.key(key).arg(from).arg(max_bytes.max(1));
        let mut all = self.bounded(|mut conn| async move { inv.invoke_async::<Vec<Vec<u8>>>(&mut conn).await }).await?;
        if all.is_empty() {
            return Ok(None);
        }
        let head = all.remove(0);
        Ok(Some((head, all)))
    }

    /// Adds `field` (an entry key) and its vector to a semantic index: the
    /// hash `index.0` holds the vectors, the ZSET `index.1` their expiry, so
    /// expired fields are deleted and the index is cut to `max_entries` (the
    /// soonest to expire first) in the same script. Both keys must share a
    /// Cluster slot (a hash tag).
    pub async fn kv_index_put(
        &self,
        index: (&str, &str),
        field: &str,
        vector: &[u8],
        (expires_ms, now_ms): (u64, u64),
        max_entries: usize,
    ) -> Result<(), LimitError> {
        let mut inv = INDEX_PUT.prepare_invoke();
        inv.key(index.0).key(index.1).arg(field).arg(vector).arg(expires_ms).arg(now_ms);
        let ttl = expires_ms.saturating_sub(now_ms).max(1);
        inv.arg(max_entries.max(1)).arg(ttl);
        self.bounded(|mut conn| async move { inv.invoke_async::<i64>(&mut conn).await }).await.map(|_| ())
    }

    /// The live fields of a semantic index and their vectors; expired ones
    /// are deleted first, so they never hide a live match.
    pub async fn kv_index_live(&self, index: (&str, &str), now_ms: u64) -> Result<Vec<(String, Vec<u8>)>, LimitError> {
        let mut inv = INDEX_LIVE.prepare_invoke();
        inv.key(index.0).key(index.1).arg(now_ms);
        self.bounded(|mut conn| async move { inv.invoke_async::<Vec<(String, Vec<u8>)>>(&mut conn).await }).await
    }

    /// Removes `field` from a semantic index (its entry is gone).
    pub async fn kv_index_drop(&self, index: (&str, &str), field: &str) -> Result<(), LimitError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HDEL").arg(index.0).arg(field).ignore();
        pipe.cmd("ZREM").arg(index.1).arg(field).ignore();
        self.bounded(|mut conn| async move { pipe.query_async::<()>(&mut conn).await }).await
    }
}

static INDEX_PUT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/index_put.lua")));
static INDEX_LIVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/index_live.lua")));
static LIST_FROM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/list_from.lua")));
