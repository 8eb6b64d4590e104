//! A config file's text: parsed and checked, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tollgate_config::load_str(text, Path::new("fuzz.toml"), &|_| Some("v".to_string()));
    }
});
