//! Active health checks of LLM targets (`balancer.healthchecks.active`): the
//! pingora-load-balancing probes for a plugin's targets, and the background
//! service that runs each balancer's checks at its interval.
//!
//! A balancer lives as long as some config in force uses it (reloads share an
//! unchanged plugin's balancer through `Survivors`), so its checks are not a
//! Pingora service of their own: a freshly built balancer is [`schedule`]d, one
//! task per balancer runs a pass (`Balancer::run_health_check`) and sleeps the
//! interval, and the task ends at the first wake-up after the last config using
//! the balancer is gone. Probes never run on a request's path: a request only
//! reads the verdict.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use once_cell::sync::Lazy;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::upstreams::peer::{HttpPeer, ALPN};
use pingora_error::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use tollgate_balance::{ActiveChecks, Balancer, Probe, Resolve};
use tollgate_config::schema::ActiveHealthcheck;

use crate::upstream::tls::UpstreamTls;
use crate::upstream::{Endpoint, Resolver};

/// One resolver (and DNS cache) for every probe of the process.
static PROBE_DNS: Lazy<Arc<Resolver>> = Lazy::new(|| Arc::new(Resolver::default()));

#[async_trait]
impl Resolve for Resolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<SocketAddr> {
        Resolver::resolve(self, host, port).await
    }
}

/// `healthchecks.active` settings that cannot be probed with.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    #[error("healthchecks.active {what} {value} is not a duration")]
    NotADuration { what: &'static str, value: f64 },
    /// The probe's request cannot be built (a path or header not allowed).
    #[error("healthchecks.active: {0}")]
    Request(Box<Error>),
}

/// The probes of a plugin whose targets are at `targets` (endpoint and the TLS
/// settings of the plugin's service); `None` when probing is off. Targets at one
/// endpoint share a probe.
pub fn active_checks(
    h: &ActiveHealthcheck,
    targets: &[(&Endpoint, &UpstreamTls)],
) -> Result<Option<ActiveChecks>, HealthCheckError> {
    if !h.enabled() {
        return Ok(None);
    }
    let seconds = |value: f64, what: &'static str| {
        Duration::try_from_secs_f64(value).map_err(|_| HealthCheckError::NotADuration { what, value })
    };
    let timeout = seconds(h.timeout, "timeout")?;
    // Validation keeps the two intervals equal.
    let interval = seconds(h.healthy.interval.max(h.unhealthy.interval), "interval")?;
    let mut endpoints: Vec<(&Endpoint, &UpstreamTls)> = Vec::new();
    let mut probe_of = Vec::with_capacity(targets.len());
    for &(ep, tls) in targets {
        let same = |(e, _): &(&Endpoint, &UpstreamTls)| {
            (e.host.as_str(), e.port, e.tls) == (ep.host.as_str(), ep.port, ep.tls)
        };
        let p = match endpoints.iter().position(same) {
            Some(p) => p,
            None => {
                endpoints.push((ep, tls));
                endpoints.len() - 1
            }
        };
        probe_of.push(p);
    }
    let probes = endpoints
        .iter()
        .map(|&(ep, tls)| Ok(Probe { host: ep.host.clone(), port: ep.port, check: probe(h, ep, tls, timeout)? }))
        .collect::<Result<Vec<_>, HealthCheckError>>()?;
    Ok(Some(ActiveChecks {
        interval,
        timeout,
        successes: h.healthy.successes as usize,
        failures: h.unhealthy.threshold(&h.kind) as usize,
        parallel: h.concurrency > 1,
        probes,
        probe_of,
        resolver: PROBE_DNS.clone(),
    }))
}

/// pingora's check for one endpoint: a TCP connection, or a GET of `http_path`
/// over TLS when the endpoint is https, verified as the service says.
fn probe(
    h: &ActiveHealthcheck,
    ep: &Endpoint,
    tls: &UpstreamTls,
    timeout: Duration,
) -> Result<Box<dyn HealthCheck + Send + Sync>, HealthCheckError> {
    if h.kind == "tcp" {
        let mut check = TcpHealthCheck::new();
        check.peer_template.options.connection_timeout = Some(timeout);
        return Ok(check);
    }
    // The address is a placeholder the check replaces with the resolved one;
    // given as a SocketAddr, HttpPeer::new does no DNS.
    let placeholder = SocketAddr::from(([0, 0, 0, 0], 1));
    let sni = h.https_sni.clone().unwrap_or_else(|| ep.host.clone());
    let mut peer = HttpPeer::new(placeholder, ep.tls, sni);
    peer.options.connection_timeout = Some(timeout);
    peer.options.read_timeout = Some(timeout);
    peer.options.write_timeout = Some(timeout);
    peer.options.alpn = ALPN::H1;
    tls.apply(&mut peer);
    if !h.https_verify_certificate {
        peer.options.verify_cert = false;
        peer.options.verify_hostname = false;
    }
    let e = HealthCheckError::Request;
    let mut req = RequestHeader::build("GET", h.http_path.as_bytes(), None).map_err(e)?;
    req.insert_header("host", ep.authority.as_str()).map_err(e)?;
    req.insert_header("user-agent", concat!("tollgate/", env!("CARGO_PKG_VERSION"), " health-check")).map_err(e)?;
    for (name, values) in &h.headers {
        for value in values {
            req.append_header(name.clone(), value.as_str()).map_err(e)?;
        }
    }
    // Probes do not reuse connections (a pooled one hides a dead listener).
    req.insert_header("connection", "close").map_err(e)?;
    let healthy = h.healthy.http_statuses.clone();
    // `new` only builds the default request for this literal host; everything
    // it sets is replaced below.
    let mut check = HttpHealthCheck::new("localhost", ep.tls);
    check.peer_template = peer;
    check.req = req;
    check.validator = Some(Box::new(move |resp: &ResponseHeader| {
        let status = resp.status.as_u16();
        if healthy.contains(&status) {
            Ok(())
        } else {
            // Kong ignores a status in neither list; a pass/fail probe cannot, and
            // an answer not listed as healthy is not a healthy one.
            Error::e_explain(ErrorType::CustomCode("unhealthy status", status), "health check answer")
        }
    }));
    Ok(Box::new(check))
}

/// Balancers waiting for their checks to start, and the wake-up of the service
/// that starts them.
struct Schedule {
    pending: Mutex<Vec<Weak<Balancer>>>,
    wake: tokio::sync::Notify,
}

static SCHEDULE: Lazy<Schedule> =
    Lazy::new(|| Schedule { pending: Mutex::new(Vec::new()), wake: tokio::sync::Notify::new() });

/// Starts `balancer`'s active checks (if it has any) once [`HealthChecker`] runs.
/// Call once per freshly built balancer.
pub fn schedule(balancer: &Arc<Balancer>) {
    if balancer.health_check_interval().is_none() {
        return;
    }
    if let Ok(mut pending) = SCHEDULE.pending.lock() {
        pending.push(Arc::downgrade(balancer));
    }
    SCHEDULE.wake.notify_one();
}

/// The Pingora background service that runs every scheduled balancer's checks.
pub struct HealthChecker;

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let fresh = SCHEDULE.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
            for balancer in fresh {
                tasks.spawn(run(balancer));
            }
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                _ = SCHEDULE.wake.notified() => {}
                // Dropping the set aborts every pass in progress.
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// One balancer's checks: a pass, then the interval, while the balancer lives.
async fn run(balancer: Weak<Balancer>) {
    loop {
        let Some(b) = balancer.upgrade() else { return };
        let Some(interval) = b.health_check_interval() else { return };
        b.run_health_check().await;
        // Not held while asleep, so a reload that drops the plugin frees it.
        drop(b);
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_balance::{Algorithm, BreakerConfig, MonotonicClock, TargetInfo};
    use tollgate_config::schema::{ActiveHealthy, ActiveUnhealthy};

    fn config(kind: &str) -> ActiveHealthcheck {
        ActiveHealthcheck {
            kind: kind.into(),
            timeout: 1.0,
            http_path: "/health".into(),
            healthy: ActiveHealthy { interval: 0.05, successes: 1, ..ActiveHealthy::default() },
            unhealthy: ActiveUnhealthy {
                interval: 0.05,
                http_failures: 1,
                tcp_failures: 1,
                timeouts: 1,
                ..ActiveUnhealthy::default()
            },
            ..ActiveHealthcheck::default()
        }
    }

    #[test]
    fn probing_off_builds_nothing_and_targets_at_one_endpoint_share_a_probe() {
        let a = Endpoint::parse("http://127.0.0.1:9001/v1/chat/completions").expect("url");
        let b = Endpoint::parse("http://127.0.0.1:9001/v1/embeddings").expect("url");
        let c = Endpoint::parse("https://api.example.com/v1").expect("url");
        let tls = UpstreamTls::default();
        let targets = [(&a, &tls), (&b, &tls), (&c, &tls)];
        assert!(active_checks(&ActiveHealthcheck::default(), &targets).expect("ok").is_none());
        let checks = active_checks(&config("http"), &targets).expect("ok").expect("on");
        assert_eq!(checks.probe_of, [0, 0, 1]);
        assert_eq!(checks.probes.len(), 2);
        assert_eq!((checks.probes[1].host.as_str(), checks.probes[1].port), ("api.example.com", 443));
        assert_eq!((checks.successes, checks.failures, checks.interval), (1, 1, Duration::from_millis(50)));
    }

    /// A real HTTP probe against a listener on loopback: 200 passes, 503 fails,
    /// a closed port fails; pingora's registry flips the target each time.
    #[tokio::test]
    async fn http_probes_take_a_target_out_and_back() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let (st, sn) = (status.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if let Ok(mut v) = sn.lock() {
                    v.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
                let code = st.load(std::sync::atomic::Ordering::SeqCst);
                let answer = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/v1/chat/completions")).expect("url");
        let tls = UpstreamTls::default();
        let mut h = config("http");
        h.headers.insert("x-probe".into(), vec!["yes".into()]);
        let checks = active_checks(&h, &[(&ep, &tls)]).expect("ok").expect("on");
        let b = Balancer::with_active_checks(
            vec![TargetInfo::new("openai/gpt-4o", 1)],
            Algorithm::RoundRobin,
            BreakerConfig::default(),
            Arc::new(MonotonicClock::new()),
            checks,
        )
        .expect("valid");
        b.run_health_check().await;
        assert_eq!(b.stats()[0].active_healthy, Some(true));
        let request = seen.lock().map(|v| v[0].clone()).unwrap_or_default();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        assert!(request.to_ascii_lowercase().contains(&format!("host: 127.0.0.1:{port}\r\n")), "{request}");
        assert!(request.contains("x-probe: yes\r\n"), "{request}");

        status.store(503, std::sync::atomic::Ordering::SeqCst);
        b.run_health_check().await;
        let st = &b.stats()[0];
        assert_eq!((st.active_healthy, st.healthy), (Some(false), false));
        assert_eq!(st.probes.map(|p| p.http_failures), Some(1));
        assert!(b.pick(None, &[]).is_none());

        status.store(200, std::sync::atomic::Ordering::SeqCst);
        b.run_health_check().await;
        assert_eq!(b.stats()[0].active_healthy, Some(true));
        assert!(b.pick(None, &[]).is_some());
    }

    #[tokio::test]
    async fn tcp_probes_fail_on_a_closed_port() {
        // Bind and drop: the port is (almost certainly) closed afterwards.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        let tls = UpstreamTls::default();
        let checks = active_checks(&config("tcp"), &[(&ep, &tls)]).expect("ok").expect("on");
        let b = Balancer::with_active_checks(
            vec![TargetInfo::new("t", 1)],
            Algorithm::RoundRobin,
            BreakerConfig::default(),
            Arc::new(MonotonicClock::new()),
            checks,
        )
        .expect("valid");
        b.run_health_check().await;
        let st = &b.stats()[0];
        assert_eq!(st.active_healthy, Some(false));
        assert_eq!(st.probes.map(|p| p.tcp_failures), Some(1));
    }
}
