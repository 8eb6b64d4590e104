//! Integration tests of the Redis backend against a real `redis-server` on loopback.
//! Each test starts its own server on a free port and kills it when done. Time is a
//! ManualClock passed to the scripts, so nothing sleeps to wait for a window.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_limit::{
    Decision, LimitError, LimitSpec, Limiter, ManualClock, RedisConfig, RedisLimiter, Window, WindowType,
};

const T0: u64 = 20_000 * 86_400_000;
const S: u64 = 1000;

/// A `redis-server` child process on 127.0.0.1, killed on drop.
struct RedisServer {
    port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Self {
        Self::start_with_password(None)
    }

    fn start_with_password(password: Option<&str>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port();
        let mut server = Self { port, password: password.map(str::to_string), child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = match cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed; these tests need a real Redis. \
                 Run `scripts/setup.sh --test` to install it."
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Whether something answers a RESP `PING` (or an auth error) on the port.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if n > 0)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: it keeps its connections
    /// open but answers nothing, the worst case for a client.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "kill {sig} {pid}");
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn config(&self) -> RedisConfig {
        RedisConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            password: self.password.clone(),
            timeout_ms: 500,
            key_prefix: "test:rl:".into(),
            ..RedisConfig::default()
        }
    }

    async fn limiter(&self, clock: &Arc<ManualClock>) -> RedisLimiter {
        RedisLimiter::connect(self.config(), clock.clone()).await.expect("connect to redis")
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spec(window_type: WindowType, windows: &[(u64, u64)]) -> LimitSpec {
    LimitSpec { window_type, windows: windows.iter().map(|&(size_secs, limit)| Window { size_secs, limit }).collect() }
}

fn remaining(d: &Decision) -> Vec<u64> {
    d.windows.iter().map(|w| w.remaining).collect()
}

async fn take(l: &RedisLimiter, key: &str, s: &LimitSpec, cost: u64) -> Decision {
    l.reserve(key, s, cost).await.expect("reserve")
}

async fn peek_remaining(l: &RedisLimiter, key: &str, s: &LimitSpec) -> Vec<u64> {
    l.peek(key, s).await.expect("peek").iter().map(|w| w.remaining).collect()
}

#[tokio::test]
async fn two_replicas_share_one_budget() {
    let redis = RedisServer::start();
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let clock = Arc::new(ManualClock::new(T0));
        let (a, b) = (redis.limiter(&clock).await, redis.limiter(&clock).await);
        let key = format!("consumer-{kind}");
        let s = spec(kind, &[(60, 1000), (3600, 5000)]);
        let d = take(&a, &key, &s, 600).await;
        assert!(d.allowed);
        assert_eq!(remaining(&d), [400, 4400]);
        let d = take(&b, &key, &s, 400).await;
        assert!(d.allowed);
        assert_eq!(remaining(&d), [0, 4000], "replica b sees replica a's usage");
        let d = take(&a, &key, &s, 1).await;
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, Some(60));
        assert_eq!(peek_remaining(&b, &key, &s).await, [0, 4000]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reservations_across_replicas_never_overshoot() {
    let redis = RedisServer::start();
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let clock = Arc::new(ManualClock::new(T0 + 30 * S));
        let replicas = [Arc::new(redis.limiter(&clock).await), Arc::new(redis.limiter(&clock).await)];
        let s = Arc::new(spec(kind, &[(60, 10_000), (86_400, 1_000_000)]));
        let key = Arc::new(format!("shared-{kind}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (l, s, key, barrier) = (replicas[i % 2].clone(), s.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    l.reserve(&key, &s, 1000).await.expect("reserve").allowed
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.expect("task"));
        }
        assert_eq!(admitted, 10, "{kind}");
        assert_eq!(peek_remaining(&replicas[0], &key, &s).await, [0, 990_000]);
    }
}

#[tokio::test]
async fn settle_corrects_the_reserved_buckets() {
    let redis = RedisServer::start();
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let clock = Arc::new(ManualClock::new(T0));
        let (a, b) = (redis.limiter(&clock).await, redis.limiter(&clock).await);
        let key = format!("settle-{kind}");
        let s = spec(kind, &[(60, 1000), (3600, 5000)]);

        // Lower: the unused part of the reservation comes back.
        let r = take(&a, &key, &s, 500).await.reservation.expect("reserved");
        clock.advance(5 * S);
        a.settle(&key, &s, &r, 200).await.expect("settle");
        assert_eq!(peek_remaining(&b, &key, &s).await, [800, 4800], "{kind}");

        // Higher: the extra usage is charged, even past the limit.
        let r = take(&b, &key, &s, 500).await.reservation.expect("reserved");
        b.settle(&key, &s, &r, 900).await.expect("settle");
        assert_eq!(peek_remaining(&a, &key, &s).await, [0, 3900], "{kind}");
        assert!(!take(&a, &key, &s, 1).await.allowed);

        // Never below zero (settling the same reservation again is misuse, but harmless).
        a.settle(&key, &s, &r, 0).await.expect("settle");
        a.settle(&key, &s, &r, 0).await.expect("settle");
        a.settle(&key, &s, &r, 0).await.expect("settle");
        let minute = match kind {
            WindowType::Fixed => 1000,  // one counter: 1100 - 3 * 500, clamped at 0
            WindowType::Sliding => 800, // the first 200 sit in another 1 s bucket, untouched
        };
        assert_eq!(peek_remaining(&a, &key, &s).await, [minute, 5000], "{kind}");

        // After the minute window moved on: only the hour window is corrected.
        clock.set(T0 + 30 * S);
        let r = take(&a, &key, &s, 100).await.reservation.expect("reserved");
        clock.set(T0 + 150 * S);
        a.settle(&key, &s, &r, 1100).await.expect("settle");
        assert_eq!(peek_remaining(&b, &key, &s).await, [1000, 3900], "{kind}");

        // A zero-cost reservation settled afterwards counts the real usage.
        let r = take(&a, &key, &s, 0).await.reservation.expect("reserved");
        a.settle(&key, &s, &r, 300).await.expect("settle");
        assert_eq!(peek_remaining(&b, &key, &s).await, [700, 3600], "{kind}");
    }
}

#[tokio::test]
async fn fixed_and_sliding_boundaries_match_the_local_backend() {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0 + 59 * S));
    let l = redis.limiter(&clock).await;
    let fixed = spec(WindowType::Fixed, &[(60, 100)]);
    let sliding = spec(WindowType::Sliding, &[(60, 100)]);
    assert!(take(&l, "f", &fixed, 100).await.allowed);
    assert!(take(&l, "s", &sliding, 100).await.allowed);

    clock.set(T0 + 61 * S);
    let d = take(&l, "f", &fixed, 1).await;
    assert!(d.allowed, "fixed admits again in the next window");
    assert_eq!(d.windows[0].reset_secs, 59);
    let d = take(&l, "s", &sliding, 1).await;
    assert!(!d.allowed, "sliding still counts the 100 of t=59 s");
    assert_eq!(d.retry_after_secs, Some(58));
    assert_eq!(d.windows[0].reset_secs, 58);
    clock.set(T0 + 119 * S);
    assert!(take(&l, "s", &sliding, 100).await.allowed, "the old bucket aged out");

    // Bucket by bucket.
    let s = sliding;
    clock.set(T0 + 1000 * S);
    take(&l, "b", &s, 30).await;
    clock.advance(10 * S);
    take(&l, "b", &s, 30).await;
    clock.advance(10 * S);
    take(&l, "b", &s, 40).await;
    clock.advance(10 * S);
    let d = take(&l, "b", &s, 50).await;
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, Some(40));
    assert_eq!(d.windows[0].reset_secs, 30);
}

#[tokio::test]
async fn oversize_request_into_an_empty_window() {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0));
    let l = redis.limiter(&clock).await;
    let s = spec(WindowType::Sliding, &[(60, 100), (3600, 1000)]);
    let d = take(&l, "big", &s, 250).await;
    assert!(d.allowed);
    let r = d.reservation.clone().expect("reserved");
    assert_eq!(r.charged(), 100);
    assert_eq!(remaining(&d), [0, 900]);
    l.settle("big", &s, &r, 250).await.expect("settle");
    clock.set(T0 + 60 * S);
    let d = take(&l, "big", &s, 250).await;
    assert!(!d.allowed);
    assert_eq!(remaining(&d), [100, 750]);
    assert_eq!(d.retry_after_secs, Some(3540));
}

#[tokio::test]
async fn keys_are_hash_tagged_prefixed_and_expire() {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0 + 5 * S));
    let l = redis.limiter(&clock).await;
    take(&l, "alice", &spec(WindowType::Fixed, &[(60, 100), (3600, 1000)]), 1).await;
    take(&l, "alice", &spec(WindowType::Sliding, &[(60, 100)]), 1).await;
    let mut conn = redis.client().get_multiplexed_async_connection().await.expect("conn");
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.expect("keys");
    keys.sort();
    let start = (T0 / 1000).to_string();
    assert_eq!(
        keys,
        [
            format!("test:rl:{{alice}}:f:3600:{start}"),
            format!("test:rl:{{alice}}:f:60:{start}"),
            "test:rl:{alice}:s:60".to_string(),
        ]
    );
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query_async(&mut conn).await.expect("pttl");
        let size = if k.contains(":3600:") { 3600 } else { 60 };
        let width = if size == 3600 { 60 } else { 1 };
        assert!(ttl > 0 && ttl <= (size + width) * 1000, "{k}: ttl {ttl}");
    }
}

#[tokio::test]
async fn redis_down_fails_fast_and_the_same_limiter_reconnects() {
    let mut redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0));
    let l = redis.limiter(&clock).await;
    let s = spec(WindowType::Sliding, &[(60, 1000)]);
    assert!(take(&l, "k", &s, 100).await.allowed);

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = l.reserve("k", &s, 100).await.expect_err("redis is down");
        let elapsed = started.elapsed();
        assert!(matches!(err, LimitError::Backend(_)), "{err:?}");
        assert!(elapsed < Duration::from_millis(500 + 250), "took {elapsed:?}");
        assert!(l.peek("k", &s).await.is_err());
    }

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    let d = loop {
        match l.reserve("k", &s, 100).await {
            Ok(d) => break d,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the limiter did not reconnect: {e}"),
        }
    };
    assert!(d.allowed);
    // The restarted Redis is empty (no persistence) and the script cache was flushed:
    // EVALSHA falls back to EVAL.
    assert_eq!(remaining(&d), [900]);
}

#[tokio::test]
async fn a_hung_redis_is_bounded_by_the_timeout() {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(T0));
    let l = redis.limiter(&clock).await;
    let s = spec(WindowType::Fixed, &[(60, 1000)]);
    assert!(take(&l, "k", &s, 100).await.allowed);

    redis.signal("-STOP");
    let started = Instant::now();
    let err = l.reserve("k", &s, 100).await.expect_err("redis answers nothing");
    let elapsed = started.elapsed();
    redis.signal("-CONT");
    assert!(err.to_string().contains("500 ms") || err.to_string().contains("timed out"), "{err}");
    assert!(elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(800), "took {elapsed:?}");

    // Once Redis answers again, so does the limiter (answers stay matched to requests).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match l.reserve("k", &s, 100).await {
            Ok(d) => {
                assert!(d.allowed);
                // The timed-out call sat in the socket and ran when Redis woke up: a
                // timeout means "outcome unknown", and its charge stays (documented).
                assert_eq!(remaining(&d), [700]);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the limiter did not recover: {e}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_redis_fails_connect_within_the_timeout() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let cfg = RedisConfig { port, timeout_ms: 300, ..RedisConfig::default() };
    let started = Instant::now();
    let err = RedisLimiter::connect(cfg.clone(), Arc::new(ManualClock::new(T0))).await.expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_millis(600), "{:?}", started.elapsed());
    assert!(err.to_string().starts_with("redis: "), "{err}");
    // The lazy variant builds, then fails per call.
    let l = RedisLimiter::connect_lazy(cfg, Arc::new(ManualClock::new(T0))).expect("lazy");
    assert!(l.reserve("k", &spec(WindowType::Fixed, &[(60, 1)]), 1).await.is_err());
}

#[tokio::test]
async fn passwords_work_and_never_appear_in_errors() {
    let redis = RedisServer::start_with_password(Some("pw-Zx81-secret"));
    let clock = Arc::new(ManualClock::new(T0));
    let l = redis.limiter(&clock).await;
    assert!(take(&l, "k", &spec(WindowType::Fixed, &[(60, 10)]), 1).await.allowed);

    let wrong = RedisConfig { password: Some("wrong-pw-Q7".into()), ..redis.config() };
    let err = RedisLimiter::connect(wrong, clock.clone()).await.expect_err("wrong password");
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("wrong-pw-Q7") && !msg.contains("pw-Zx81-secret"), "{msg}");
    assert!(matches!(err, LimitError::Backend(_)));

    let none = RedisConfig { password: None, ..redis.config() };
    let l = RedisLimiter::connect_lazy(none, clock).expect("lazy");
    let err = l.reserve("k", &spec(WindowType::Fixed, &[(60, 10)]), 1).await.expect_err("no password");
    assert!(!err.to_string().contains("pw-Zx81-secret"));
}

#[tokio::test]
async fn ssl_against_a_plain_server_is_an_error_not_a_panic() {
    let redis = RedisServer::start();
    let cfg = RedisConfig { ssl: true, ..redis.config() };
    let started = Instant::now();
    let res = RedisLimiter::connect(cfg, Arc::new(ManualClock::new(T0))).await;
    assert!(matches!(res, Err(LimitError::Backend(_))), "{res:?}");
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
}

#[tokio::test]
async fn lists_are_read_from_an_index_within_a_byte_budget() {
    let redis = RedisServer::start();
    let l = redis.limiter(&Arc::new(ManualClock::new(T0))).await;
    assert_eq!(l.kv_list_from("log", 0, 100).await.unwrap(), None, "no list");
    let entries: Vec<Vec<u8>> = (0..200).map(|i| format!("{i:03}").into_bytes()).collect();
    l.kv_list_push("log", &entries, 150, 60_000).await.unwrap();
    let (head, got) = l.kv_list_from("log", 0, 9).await.unwrap().unwrap();
    assert_eq!(head, b"050", "trimmed to the last 150");
    assert_eq!(got, [b"050", b"051", b"052"], "three 3-byte entries fit in 9 bytes");
    let (_, got) = l.kv_list_from("log", 147, 1000).await.unwrap().unwrap();
    assert_eq!(got, [b"197", b"198", b"199"], "from an index to the end, across script chunks");
    let (_, got) = l.kv_list_from("log", 10, 300).await.unwrap().unwrap();
    assert_eq!((got.len(), got[0].as_slice(), got[99].as_slice()), (100, &b"060"[..], &b"159"[..]), "300 bytes");
    let (_, got) = l.kv_list_from("log", 150, 1000).await.unwrap().unwrap();
    assert!(got.is_empty(), "nothing after the last");
    l.kv_list_push("log", &[vec![b'x'; 500]], 150, 60_000).await.unwrap();
    let (_, got) = l.kv_list_from("log", 149, 10).await.unwrap().unwrap();
    assert_eq!(got.len(), 1, "one entry over the budget is still read");
}
