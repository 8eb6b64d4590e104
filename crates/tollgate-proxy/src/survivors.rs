//! State that outlives a config reload while the new config still wants it:
//! balancer statistics, issuers' key sets. Entries are weak, so a value lives
//! exactly as long as some snapshot holds it; a reload that keeps the entity
//! unchanged finds the old value still alive (the old snapshot is swapped out
//! only after the new one is built) and shares it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

pub struct Survivors<T> {
    alive: Mutex<HashMap<String, Weak<T>>>,
}

impl<T> Default for Survivors<T> {
    fn default() -> Self {
        Survivors { alive: Mutex::new(HashMap::new()) }
    }
}

impl<T> Survivors<T> {
    /// The live value under `key`, or a fresh one from `build`.
    pub fn get_or_build(&self, key: &str, build: impl FnOnce() -> T) -> Arc<T> {
        let Ok(mut alive) = self.alive.lock() else {
            return Arc::new(build());
        };
        alive.retain(|_, w| w.strong_count() > 0);
        if let Some(value) = alive.get(key).and_then(Weak::upgrade) {
            return value;
        }
        let fresh = Arc::new(build());
        alive.insert(key.to_string(), Arc::downgrade(&fresh));
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_shared_while_held_and_rebuilt_once_dropped() {
        let s = Survivors::default();
        let a = s.get_or_build("k", || 1);
        let b = s.get_or_build("k", || 2);
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        assert_eq!(*s.get_or_build("k", || 3), 3);
    }
}
