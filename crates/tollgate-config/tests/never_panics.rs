//! Whatever the file holds, loading it gives a config or errors, never a panic,
//! and every error points inside the file.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use proptest::prelude::*;

const SEED: &str = include_str!("../../../conf/tollgate.toml");

fn load(text: &str) -> Result<tollgate_config::Config, tollgate_config::ConfigErrors> {
    tollgate_config::load_str(text, Path::new("t.toml"), &|_| Some("v".to_string()))
}

fn check(text: &str) {
    if let Err(errors) = load(text) {
        let lines = text.lines().count().max(1);
        for e in errors.iter() {
            assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}: {e}", e.line);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn mutated_configs_never_panic(cut in 0usize..SEED.len(), insert in "[a-z\\[\\]{}=\"., 0-9\n]{0,12}") {
        let mut cut = cut;
        while !SEED.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = format!("{}{}{}", &SEED[..cut], insert, &SEED[cut..]);
        check(&text);
    }

    #[test]
    fn truncated_configs_never_panic(cut in 0usize..SEED.len()) {
        let mut cut = cut;
        while !SEED.is_char_boundary(cut) {
            cut -= 1;
        }
        check(&SEED[..cut]);
    }
}

#[test]
fn the_default_config_loads() {
    assert!(load(SEED).is_ok());
}
