//! What the vault store shows: /status's `vaults` and its Prometheus series,
//! rendered at scrape time. Labels are vault prefixes from the config; no
//! value, token or secret is ever part of either.

use std::fmt::Write;

use serde_json::{json, Value};

use super::VaultStore;

fn secs(ms: Option<u64>) -> Option<u64> {
    ms.map(|ms| ms / 1000)
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl VaultStore {
    /// One object per vault with secrets in use: its counts, last success and
    /// last error, and the secrets served from a last good value.
    pub fn status(&self) -> Value {
        let stats = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        let entries = self.entries.lock();
        let mut out: Vec<Value> = stats
            .iter()
            .map(|(prefix, s)| {
                let (mut secrets, mut stale, mut expired) = (0, Vec::new(), Vec::new());
                if let Ok(entries) = &entries {
                    for ((p, resource, _), e) in entries.iter() {
                        if p != prefix {
                            continue;
                        }
                        secrets += 1;
                        match (&e.error, &e.value) {
                            (Some(_), Some(_)) => stale.push(resource.clone()),
                            (Some(_), None) => expired.push(resource.clone()),
                            _ => {}
                        }
                    }
                }
                json!({
                    "prefix": prefix,
                    "name": s.kind,
                    "secrets": secrets,
                    "fetches_total": s.fetches,
                    "errors_total": s.errors,
                    "last_refresh_at_unix": secs(s.last_ok_ms),
                    "last_error": s.last_error,
                    "last_error_at_unix": secs(s.last_error_ms),
                    "failing": !stale.is_empty() || !expired.is_empty(),
                    "serving_last_good_value": stale,
                    "expired": expired,
                })
            })
            .collect();
        out.sort_by(|a, b| a["prefix"].as_str().cmp(&b["prefix"].as_str()));
        Value::Array(out)
    }

    /// `tollgate_vault_fetches_total`, `tollgate_vault_errors_total` and
    /// `tollgate_vault_last_refresh_timestamp_seconds`, per vault.
    pub fn render_metrics(&self) -> Vec<u8> {
        let stats = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        if stats.is_empty() {
            return Vec::new();
        }
        let mut prefixes: Vec<&String> = stats.keys().collect();
        prefixes.sort();
        let mut fetches = String::new();
        let mut errors = String::new();
        let mut last = String::new();
        for prefix in prefixes {
            let s = &stats[prefix];
            let labels = format!("vault=\"{}\",name=\"{}\"", escape(prefix), s.kind);
            let _ = writeln!(fetches, "tollgate_vault_fetches_total{{{labels}}} {}", s.fetches);
            let _ = writeln!(errors, "tollgate_vault_errors_total{{{labels}}} {}", s.errors);
            if let Some(ms) = s.last_ok_ms {
                let _ = writeln!(last, "tollgate_vault_last_refresh_timestamp_seconds{{{labels}}} {}", ms / 1000);
            }
        }
        let mut out = String::new();
        for (name, kind, help, body) in [
            ("tollgate_vault_fetches_total", "counter", "Secret fetches from remote vaults", fetches),
            ("tollgate_vault_errors_total", "counter", "Failed secret fetches from remote vaults", errors),
            (
                "tollgate_vault_last_refresh_timestamp_seconds",
                "gauge",
                "Unix time of the last successful secret fetch",
                last,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            out.push_str(&body);
        }
        out.into_bytes()
    }
}
