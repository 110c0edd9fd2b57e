//! Fuzz target `decode_output`: see `checks::decode_output`.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode_output(data));
