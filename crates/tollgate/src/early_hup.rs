//! SIGHUP before the reloader listens. The reloader starts listening only once
//! the config is read, the listeners are bound and the services run (tens of
//! milliseconds, longer with `run --upgrade`), and until then SIGHUP's default
//! action would end the process: a supervisor that edits the file and signals
//! as the gateway starts would kill it. `catch` runs first in `main`; the
//! reloader takes over with `hand_over` and reloads once if a signal came.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;
use signal_hook::consts::SIGHUP;
use signal_hook::SigId;

static CAUGHT: Lazy<Arc<AtomicBool>> = Lazy::new(|| Arc::new(AtomicBool::new(false)));
static ACTION: Mutex<Option<SigId>> = Mutex::new(None);

/// Remember SIGHUP instead of dying of it, until `hand_over`.
pub fn catch() {
    match signal_hook::flag::register(SIGHUP, CAUGHT.clone()) {
        Ok(id) => {
            if let Ok(mut slot) = ACTION.lock() {
                *slot = Some(id);
            }
        }
        Err(e) => eprintln!("tollgate: cannot catch SIGHUP during start-up: {e}"),
    }
}

/// Called once the reloader listens for SIGHUP itself: stops remembering, and
/// says whether a SIGHUP came in the meantime (so the reloader reloads once).
pub fn hand_over() -> bool {
    if let Ok(mut slot) = ACTION.lock() {
        if let Some(id) = slot.take() {
            signal_hook::low_level::unregister(id);
        }
    }
    CAUGHT.swap(false, Ordering::SeqCst)
}
