//! Fuzz target `journal`: see `checks::journal`.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::journal(data));
