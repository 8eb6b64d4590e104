//! Tests of the pingora-load-balancing side: the selector as a `BackendSelection`
//! inside pingora's own `LoadBalancer`, targets as `Backends`, and availability
//! from active health checks (probes scripted, no network, no sleeps).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_error::{Error, ErrorType};
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::{Backend, Backends, LoadBalancer};

use crate::health::{ActiveChecks, LiteralResolver, Probe, Resolve};
use crate::pool::Pool;
use crate::selector::{target_backend, Selector, TargetIndex};
use crate::{Algorithm, Balancer, BreakerConfig, ManualClock, TargetInfo};

/// What a scripted endpoint answers, by port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    Refused,
    Status(u16),
    Hang,
}

#[derive(Default)]
struct Script {
    answers: Mutex<HashMap<u16, Answer>>,
    calls: AtomicUsize,
}

impl Script {
    fn set(&self, port: u16, answer: Answer) {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).insert(port, answer);
    }
}

/// A pingora `HealthCheck` answering from the script by the probed port.
struct Scripted(Arc<Script>);

#[async_trait]
impl HealthCheck for Scripted {
    async fn check(&self, target: &Backend) -> pingora_error::Result<()> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let port = target.addr.as_inet().map(|a| a.port()).unwrap_or(0);
        let answer = self.0.answers.lock().unwrap_or_else(|e| e.into_inner()).get(&port).copied();
        match answer.unwrap_or(Answer::Ok) {
            Answer::Ok => Ok(()),
            Answer::Refused => Error::e_explain(ErrorType::ConnectRefused, "refused"),
            Answer::Status(s) => Error::e_explain(ErrorType::CustomCode("unhealthy status", s), "probe"),
            Answer::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }

    fn health_threshold(&self, _success: bool) -> usize {
        // Ignored: the balancer's own thresholds apply.
        99
    }
}

fn targets(n: usize) -> Vec<TargetInfo> {
    (0..n).map(|i| TargetInfo::new(format!("t{i}"), 1)).collect()
}

/// Active checks over endpoints `127.0.0.1:port` for `ports[i]` (targets with the
/// same port share a probe).
fn checks(script: &Arc<Script>, ports: &[u16], successes: usize, failures: usize) -> ActiveChecks {
    let mut distinct: Vec<u16> = ports.to_vec();
    distinct.dedup();
    ActiveChecks {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(50),
        successes,
        failures,
        parallel: true,
        probes: distinct
            .iter()
            .map(|&port| Probe { host: "127.0.0.1".into(), port, check: Box::new(Scripted(Arc::clone(script))) })
            .collect(),
        probe_of: ports.iter().map(|p| distinct.iter().position(|d| d == p).unwrap_or(0)).collect(),
        resolver: Arc::new(LiteralResolver),
    }
}

fn checked(n: usize, ports: &[u16], s: usize, f: usize) -> (Balancer, Arc<Script>) {
    let script = Arc::new(Script::default());
    let b = Balancer::with_active_checks(
        targets(n),
        Algorithm::RoundRobin,
        BreakerConfig::default(),
        Arc::new(ManualClock::new(0)),
        checks(&script, ports, s, f),
    )
    .expect("valid checks");
    (b, script)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn picks(b: &Balancer, n: usize) -> Vec<usize> {
    (0..n).filter_map(|_| b.pick(None, &[]).map(|p| p.index())).collect()
}

/// pingora's active health, read from its registry, agrees with what the balancer
/// selects by.
fn assert_mirrors_pingora(b: &Balancer) {
    for (i, st) in b.stats().iter().enumerate() {
        let backend = b
            .backends()
            .get_backend()
            .iter()
            .find(|x| x.ext.get::<TargetIndex>() == Some(&TargetIndex(i)))
            .cloned()
            .expect("backend");
        assert_eq!(st.active_healthy, Some(b.backends().ready(&backend)), "target {i}");
    }
}

#[test]
fn the_selector_runs_inside_pingoras_own_load_balancer() {
    // Weights 3:1 through pingora's LoadBalancer and our BackendSelection: smooth,
    // A A B A, not pingora's repeated-index bursts.
    let a = Backend::new_with_weight("10.0.0.1:80", 3).expect("addr");
    let b = Backend::new_with_weight("10.0.0.2:80", 1).expect("addr");
    let set = BTreeSet::from([a.clone(), b.clone()]);
    let lb = LoadBalancer::<Selector>::from_backends(Backends::new(Static::new(set)));
    rt().block_on(lb.update()).expect("update");
    let order: Vec<Backend> = (0..8).filter_map(|_| lb.select(b"", 4)).collect();
    assert_eq!(order, [&a, &a, &b, &a, &a, &a, &b, &a].map(Clone::clone));
}

#[test]
fn a_configured_selector_yields_each_pool_target_once_per_pick() {
    let clock = Arc::new(ManualClock::new(0));
    let weights: Box<[u32]> = [1, 1, 1].into();
    let ids: Vec<Vec<u8>> = (0..3).map(|i| vec![i]).collect();
    let pool = Arc::new(Pool::new(weights, &ids, Algorithm::RoundRobin, clock));
    let set: BTreeSet<Backend> = (0..3).map(|i| target_backend(i, 1)).collect();
    let lb =
        LoadBalancer::<Selector>::from_backends_with_config(Backends::new(Static::new(set)), Some(Arc::clone(&pool)));
    rt().block_on(lb.update()).expect("update");
    // Rejecting every backend walks all three, each once.
    let seen = Mutex::new(Vec::new());
    let none = lb.select_with(b"", 10, |b, _| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(b.ext.get::<TargetIndex>().map(|t| t.0));
        false
    });
    assert!(none.is_none());
    let mut seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
    seen.sort();
    assert_eq!(seen, [Some(0), Some(1), Some(2)]);
}

#[test]
fn targets_sharing_an_address_are_distinct_backends() {
    let b = Balancer::new(
        vec![TargetInfo::new("openai/gpt-4o", 1), TargetInfo::new("openai/gpt-4o", 1)],
        Algorithm::RoundRobin,
        BreakerConfig::default(),
        Arc::new(ManualClock::new(0)),
    );
    let found = b.backends().get_backend();
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|x| b.backends().ready(x)));
    assert_eq!(picks(&b, 4), [0, 1, 0, 1]);
    assert_eq!(b.health_check_interval(), None);
    assert_eq!(b.stats()[0].active_healthy, None);
}

#[test]
fn a_target_failing_its_active_check_is_out_of_rotation_until_it_recovers() {
    let (b, script) = checked(3, &[1, 2, 3], 2, 2);
    let rt = rt();
    assert_eq!(b.health_check_interval(), Some(Duration::from_secs(1)));
    script.set(2, Answer::Status(503));
    rt.block_on(b.run_health_check());
    // One failure of two: still in.
    assert_eq!(b.stats()[1].active_healthy, Some(true));
    assert_eq!(picks(&b, 3), [0, 1, 2]);
    rt.block_on(b.run_health_check());
    let st = &b.stats()[1];
    assert_eq!((st.active_healthy, st.healthy), (Some(false), false));
    assert_eq!(st.probes.map(|p| (p.successes, p.http_failures)), Some((0, 2)));
    assert!(!b.is_available(1));
    assert_mirrors_pingora(&b);
    assert_eq!(picks(&b, 6), [0, 2, 0, 2, 0, 2]);
    assert!(b.pick(None, &[0, 2]).is_none());

    // Two passing probes bring it back.
    script.set(2, Answer::Ok);
    rt.block_on(b.run_health_check());
    assert!(!b.is_available(1));
    rt.block_on(b.run_health_check());
    assert!(b.is_available(1));
    assert_mirrors_pingora(&b);
    assert_eq!(b.stats()[1].probes.map(|p| p.successes), Some(2));
    assert!(picks(&b, 3).contains(&1));
}

#[test]
fn targets_at_one_endpoint_share_one_probe_and_one_health() {
    let (b, script) = checked(3, &[7, 7, 8], 1, 1);
    let rt = rt();
    script.set(7, Answer::Refused);
    rt.block_on(b.run_health_check());
    assert_eq!(script.calls.load(Ordering::SeqCst), 2, "one probe per endpoint");
    let st = b.stats();
    assert_eq!(st.iter().map(|s| s.active_healthy).collect::<Vec<_>>(), [Some(false), Some(false), Some(true)]);
    assert_eq!(st[0].probes.map(|p| p.tcp_failures), Some(1));
    assert_eq!(st[1].probes.map(|p| p.tcp_failures), Some(1));
    assert_mirrors_pingora(&b);
    assert_eq!(picks(&b, 2), [2, 2]);
}

#[test]
fn a_probe_without_an_answer_times_out() {
    let (b, script) = checked(1, &[9], 1, 1);
    script.set(9, Answer::Hang);
    rt().block_on(b.run_health_check());
    let st = &b.stats()[0];
    assert_eq!(st.active_healthy, Some(false));
    assert_eq!(st.probes.map(|p| p.timeouts), Some(1));
}

#[test]
fn an_unresolvable_host_is_a_tcp_failure() {
    struct Nowhere;
    #[async_trait]
    impl Resolve for Nowhere {
        async fn resolve(&self, host: &str, _port: u16) -> std::io::Result<std::net::SocketAddr> {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: no address")))
        }
    }
    let script = Arc::new(Script::default());
    let mut c = checks(&script, &[1], 1, 1);
    c.resolver = Arc::new(Nowhere);
    let b = Balancer::with_active_checks(
        targets(1),
        Algorithm::RoundRobin,
        BreakerConfig::default(),
        Arc::new(ManualClock::new(0)),
        c,
    )
    .expect("valid");
    rt().block_on(b.run_health_check());
    assert_eq!(b.stats()[0].probes.map(|p| p.tcp_failures), Some(1));
    assert_eq!(script.calls.load(Ordering::SeqCst), 0, "nothing to probe without an address");
}

#[test]
fn active_health_and_the_circuit_breaker_are_independent() {
    let script = Arc::new(Script::default());
    let clock = Arc::new(ManualClock::new(0));
    let b = Balancer::with_active_checks(
        targets(2),
        Algorithm::RoundRobin,
        BreakerConfig { max_fails: 1, fail_timeout: Duration::from_secs(10) },
        clock.clone(),
        checks(&script, &[1, 2], 1, 1),
    )
    .expect("valid");
    let rt = rt();
    // An open circuit stays open while the active check passes.
    b.failure(0);
    rt.block_on(b.run_health_check());
    assert!(!b.is_available(0));
    // A closed circuit does not let an actively unhealthy target in.
    clock.advance(10_000);
    script.set(1, Answer::Refused);
    rt.block_on(b.run_health_check());
    assert!(!b.is_available(0));
    let trial_due = b.stats()[0].circuit_open;
    assert!(trial_due, "the circuit is still half-open, waiting for a trial");
    assert_eq!(picks(&b, 2), [1, 1]);
}

#[test]
fn unusable_checks_are_refused() {
    let script = Arc::new(Script::default());
    let build = |c: ActiveChecks| {
        Balancer::with_active_checks(
            targets(2),
            Algorithm::RoundRobin,
            BreakerConfig::default(),
            Arc::new(ManualClock::new(0)),
            c,
        )
        .map(|_| ())
        .map_err(|e| e.0)
    };
    assert!(build(checks(&script, &[1, 2], 1, 1)).is_ok());
    assert!(build(checks(&script, &[1, 2], 0, 1)).is_err());
    assert!(build(checks(&script, &[1, 2], 1, 0)).is_err());
    assert!(build(checks(&script, &[1], 1, 1)).is_err(), "a target without a probe");
    let mut c = checks(&script, &[1, 2], 1, 1);
    c.interval = Duration::ZERO;
    assert!(build(c).is_err());
    let mut c = checks(&script, &[1, 2], 1, 1);
    c.probe_of[1] = 5;
    assert!(build(c).is_err());
}
