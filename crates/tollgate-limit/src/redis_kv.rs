//! Plain key-value calls on the limiter's Redis connection, for other
//! gateway state that replicas share (the answer cache): one client per
//! Redis server, whatever uses it. Keys are used as given (no limiter
//! prefix); every call is bounded by the connection's timeout.

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

    /// `HSET key field value` then `PEXPIRE key ttl_ms`: the hash lives as
    /// long as its latest field needs.
    pub async fn kv_hset_px(&self, key: &str, field: &str, value: &[u8], ttl_ms: u64) -> Result<(), LimitError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg(key).arg(field).arg(value).ignore();
        pipe.cmd("PEXPIRE").arg(key).arg(ttl_ms.max(1)).ignore();
        self.bounded(|mut conn| async move { pipe.query_async::<()>(&mut conn).await }).await
    }

    /// `HGETALL key`.
    pub async fn kv_hgetall(&self, key: &str) -> Result<Vec<(String, Vec<u8>)>, LimitError> {
        let cmd = redis::cmd("HGETALL").arg(key).clone();
        self.bounded(|mut conn| async move { cmd.query_async::<Vec<(String, Vec<u8>)>>(&mut conn).await }).await
    }

    /// `HDEL key field`.
    pub async fn kv_hdel(&self, key: &str, field: &str) -> Result<(), LimitError> {
        let cmd = redis::cmd("HDEL").arg(key).arg(field).clone();
        self.bounded(|mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await
    }
}
