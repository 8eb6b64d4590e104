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
        match self.get_or_try_build(key, || Ok::<T, std::convert::Infallible>(build())) {
            Ok((value, _)) => value,
            Err(never) => match never {},
        }
    }

    /// The live value under `key` (`false`), or a fresh one from `build` (`true`),
    /// so the caller can start what a new value needs (a balancer's health checks).
    pub fn get_or_try_build<E>(&self, key: &str, build: impl FnOnce() -> Result<T, E>) -> Result<(Arc<T>, bool), E> {
        let Ok(mut alive) = self.alive.lock() else {
            return Ok((Arc::new(build()?), true));
        };
        alive.retain(|_, w| w.strong_count() > 0);
        if let Some(value) = alive.get(key).and_then(Weak::upgrade) {
            return Ok((value, false));
        }
        let fresh = Arc::new(build()?);
        alive.insert(key.to_string(), Arc::downgrade(&fresh));
        Ok((fresh, true))
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

    #[test]
    fn a_failed_build_stores_nothing_and_fresh_values_say_so() {
        let s = Survivors::default();
        assert_eq!(s.get_or_try_build("k", || Err::<u8, _>("no")).map(|_| ()), Err("no"));
        let (a, fresh) = s.get_or_try_build("k", || Ok::<_, ()>(1)).expect("built");
        assert!(fresh);
        let (b, fresh) = s.get_or_try_build("k", || Ok::<_, ()>(2)).expect("kept");
        assert!(!fresh && Arc::ptr_eq(&a, &b));
    }
}
