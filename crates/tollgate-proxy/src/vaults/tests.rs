use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate_clock::ManualClock;
use tollgate_config::vaults::{HcvVaultConfig, VaultKind};

use super::*;

/// A vault whose value and availability the test sets.
#[derive(Default)]
struct FakeVault {
    value: Mutex<Option<String>>,
    calls: AtomicUsize,
}

impl SecretFetcher for Arc<FakeVault> {
    fn fetch(&self, _: &Vault, _: &SecretAddress) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.value.lock().expect("lock").clone().ok_or_else(|| "127.0.0.1:1 could not be reached".to_string())
    }
}

fn hcv(ttl: u64, neg_ttl: u64, resurrect_ttl: u64) -> Vault {
    let config: HcvVaultConfig = serde_json::from_value(serde_json::json!({
        "token": "t", "ttl": ttl, "neg_ttl": neg_ttl, "resurrect_ttl": resurrect_ttl
    }))
    .expect("config");
    Vault {
        name: VaultKind::Hcv,
        prefix: "ai".into(),
        description: None,
        tags: vec![],
        config: VaultConfig::Hcv(Box::new(config)),
    }
}

fn address() -> SecretAddress {
    SecretAddress { resource: "openai".into(), key: Some("token".into()), version: None }
}

fn store(value: &str) -> (Arc<ManualClock>, Arc<FakeVault>, VaultStore) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let fake = Arc::new(FakeVault::default());
    *fake.value.lock().expect("lock") = Some(value.to_string());
    let store = VaultStore::new(clock.clone(), Box::new(fake.clone()));
    (clock, fake, store)
}

fn set(fake: &FakeVault, value: Option<&str>) {
    *fake.value.lock().expect("lock") = value.map(str::to_string);
}

#[test]
fn a_secret_is_fetched_once_and_refreshed_when_its_ttl_is_due() {
    let (clock, fake, store) = store("v1");
    let vault = hcv(10, 0, 60);
    assert_eq!(store.get(&vault, &address()).as_deref(), Ok("v1"));
    assert_eq!(store.get(&vault, &address()).as_deref(), Ok("v1"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "the second load is served from the cache");
    set(&fake, Some("v2"));
    clock.advance(9_999);
    assert!(!store.refresh_due(), "not due before the ttl");
    clock.advance(1);
    assert!(store.refresh_due(), "a rotated value is a change");
    assert_eq!(store.get(&vault, &address()).as_deref(), Ok("v2"));
    clock.advance(10_000);
    assert!(!store.refresh_due(), "the same value again is no change");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[test]
fn huge_ttls_saturate_instead_of_overflowing() {
    let (clock, fake, never) = store("v1");
    let vault = hcv(u64::MAX, u64::MAX, u64::MAX);
    assert_eq!(never.get(&vault, &address()).as_deref(), Ok("v1"));
    clock.advance(1_000_000_000);
    assert!(!never.refresh_due(), "due at the end of time");
    assert_eq!(after_secs(5, u64::MAX / 10), u64::MAX);
    assert_eq!(after_secs(5, 2), 2_005);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);

    let (clock, fake, failing) = store("v1");
    let vault = hcv(1, u64::MAX, u64::MAX);
    failing.get(&vault, &address()).expect("fetched");
    set(&fake, None);
    clock.advance(1_000);
    assert!(!failing.refresh_due(), "a failure is no change");
    clock.advance(1_000_000_000);
    assert!(!failing.refresh_due(), "the retry is at the end of time");
    assert_eq!(failing.get(&vault, &address()).as_deref(), Ok("v1"), "resurrect_ttl has not run out");
}

#[test]
fn ttl_zero_never_refreshes() {
    let (clock, fake, store) = store("v1");
    store.get(&hcv(0, 0, 60), &address()).expect("fetched");
    clock.advance(1_000_000_000);
    assert!(!store.refresh_due());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn an_outage_keeps_the_last_good_value_until_resurrect_ttl_ends() {
    let (clock, fake, store) = store("v1");
    let vault = hcv(10, 3, 60);
    store.get(&vault, &address()).expect("fetched");
    set(&fake, None);
    clock.advance(10_000);
    assert!(!store.refresh_due());
    assert_eq!(store.get(&vault, &address()).as_deref(), Ok("v1"), "the last good value");
    let status = store.status();
    assert_eq!(status[0]["errors_total"], 1);
    assert_eq!(status[0]["serving_last_good_value"][0], "openai");
    assert!(status[0]["last_error"].as_str().expect("error").contains("could not be reached"));
    let metrics = String::from_utf8(store.render_metrics()).expect("utf8");
    assert!(metrics.contains("tollgate_vault_errors_total{vault=\"ai\",name=\"hcv\"} 1"), "{metrics}");
    clock.advance(2_999);
    assert!(!store.refresh_due(), "neg_ttl not over");
    clock.advance(1);
    store.refresh_due();
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3, "retried after neg_ttl");
    // ttl + resurrect_ttl after the last success, the value is dropped.
    clock.set(1_000_000 + 70_000);
    store.refresh_due();
    assert_eq!(store.status()[0]["expired"][0], "openai");
    assert!(store.get(&vault, &address()).is_err(), "fetched again, and the vault is still down");
    set(&fake, Some("v2"));
    assert_eq!(store.get(&vault, &address()).as_deref(), Ok("v2"));
    assert_eq!(store.status()[0]["failing"], false);
}

#[test]
fn a_changed_vault_config_fetches_again_and_unused_secrets_are_forgotten() {
    let (_, fake, store) = store("v1");
    let recorder = store.recorder(false);
    recorder.fetch(&hcv(10, 0, 60), &address()).expect("fetched");
    let used = recorder.used();
    assert_eq!(used.len(), 1);
    store.get(&hcv(20, 0, 60), &address()).expect("fetched");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2, "another config is another vault");
    store.retain(&used);
    assert_eq!(store.status()[0]["secrets"], 1);
    store.retain(&HashSet::new());
    assert_eq!(store.status(), serde_json::json!([]));
    assert!(store.render_metrics().is_empty());
}

#[test]
fn a_reload_fetches_anew_and_falls_back_to_the_last_good_value() {
    let (_, fake, store) = store("v1");
    let vault = hcv(0, 0, 60);
    let load = |fresh| {
        let recorder = store.recorder(fresh);
        let first = recorder.fetch(&vault, &address());
        let again = recorder.fetch(&vault, &address());
        assert_eq!(first, again);
        first
    };
    assert_eq!(load(true).as_deref(), Ok("v1"));
    set(&fake, Some("v2"));
    assert_eq!(load(false).as_deref(), Ok("v1"), "a rebuild uses the cache");
    assert_eq!(load(true).as_deref(), Ok("v2"), "a reload sees the rotation, ttl 0 or not");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2, "one fetch per reload, however often referenced");
    set(&fake, None);
    assert_eq!(load(true).as_deref(), Ok("v2"), "the vault is down: the last good value");
    assert_eq!(store.status()[0]["serving_last_good_value"][0], "openai");
    store.retain(&HashSet::new());
    assert!(load(true).is_err(), "nothing to fall back to");
}

/// Answers `old` to the refresh, after a reload (run from inside that fetch,
/// as a SIGHUP landing while the refresh waits on the network) fetched `new`.
struct RacingFetcher {
    store: std::sync::OnceLock<std::sync::Weak<VaultStore>>,
    reload_vault: Vault,
    calls: AtomicUsize,
}

impl SecretFetcher for Arc<RacingFetcher> {
    fn fetch(&self, _: &Vault, address: &SecretAddress) -> Result<String, String> {
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => Ok("first".into()),
            1 => {
                let store = self.store.get().and_then(std::sync::Weak::upgrade).expect("store");
                assert_eq!(store.get_fresh(&self.reload_vault, address).as_deref(), Ok("new"));
                Ok("old".into())
            }
            _ => Ok("new".into()),
        }
    }
}

#[test]
fn a_refresh_never_puts_an_older_value_over_a_reload() {
    for reload_vault in [hcv(10, 0, 60), hcv(20, 0, 60)] {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let fetcher = Arc::new(RacingFetcher { store: Default::default(), reload_vault, calls: AtomicUsize::new(0) });
        let store = Arc::new(VaultStore::new(clock.clone(), Box::new(fetcher.clone())));
        fetcher.store.set(Arc::downgrade(&store)).expect("set once");
        let vault = hcv(10, 0, 60);
        assert_eq!(store.get(&vault, &address()).as_deref(), Ok("first"));
        clock.advance(10_000);
        store.refresh_due();
        let reloaded = fetcher.reload_vault.clone();
        assert_eq!(store.get(&reloaded, &address()).as_deref(), Ok("new"), "the reload's value stays");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 3);
    }
}

/// A vault taking 20 s per answer on the test's clock, answering `<resource>-<n>`
/// for its nth fetch, or timing out when given less than that.
struct SlowVault {
    clock: Arc<ManualClock>,
    calls: AtomicUsize,
}

impl SecretFetcher for Arc<SlowVault> {
    fn fetch(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String> {
        self.fetch_within(vault, address, Duration::MAX)
    }

    fn fetch_within(&self, _: &Vault, address: &SecretAddress, limit: Duration) -> Result<String, String> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if limit < Duration::from_secs(20) {
            self.clock.advance(limit.as_millis() as u64);
            return Err("no answer within the deadline".into());
        }
        self.clock.advance(20_000);
        Ok(format!("{}-{n}", address.resource))
    }
}

#[test]
fn a_load_waits_on_slow_vaults_for_one_deadline_in_all() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let slow = Arc::new(SlowVault { clock: clock.clone(), calls: AtomicUsize::new(0) });
    let store = VaultStore::new(clock.clone(), Box::new(slow.clone()));
    let vault = hcv(0, 0, 60);
    let at = |resource: &str| SecretAddress { resource: resource.into(), key: None, version: None };
    assert_eq!(store.get(&vault, &at("a")).as_deref(), Ok("a-0"));
    assert_eq!(store.get(&vault, &at("b")).as_deref(), Ok("b-1"));

    let reload = store.recorder(true);
    assert_eq!(reload.fetch(&vault, &at("a")).as_deref(), Ok("a-2"), "20 of the 30 s");
    assert_eq!(reload.fetch(&vault, &at("b")).as_deref(), Ok("b-1"), "10 s left: the last good value");
    let error = reload.fetch(&vault, &at("c")).expect_err("no time left, nothing cached");
    assert!(error.contains("30 s"), "{error}");
    assert_eq!(slow.calls.load(Ordering::SeqCst), 4, "c was not fetched once the deadline passed");
}
