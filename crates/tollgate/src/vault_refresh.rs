//! Re-fetches remote vault secrets whose `ttl` is due (`VaultStore::refresh_due`)
//! and, when one changed, builds the config in force again with it and swaps
//! the snapshot as a reload does: new requests use the new secret, requests in
//! flight finish on the snapshot they started with.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tollgate_proxy::vaults::VaultStore;

use crate::reload::Reloader;

/// How often due secrets are looked for; ttls are whole seconds.
const TICK: Duration = Duration::from_secs(1);

pub struct VaultRefresher {
    pub reloader: Reloader,
}

#[async_trait]
impl BackgroundService for VaultRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Fetching and building block: off the async threads.
                    let reloader = self.reloader.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if VaultStore::shared().refresh_due() {
                            reloader.rebuild_pending.store(true, Ordering::SeqCst);
                        }
                        // Until a build with the new value is installed: the
                        // store holds it already, so no later refresh would
                        // report it as a change again.
                        if reloader.rebuild_pending.load(Ordering::SeqCst) {
                            reloader.rebuild_kept("vault refresh");
                        }
                    })
                    .await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
