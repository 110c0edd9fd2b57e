//! Fuzz target `source`: see `checks::source`.

#![no_main]

#[path = "../checks.rs"]
mod checks;
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::source(data, common::scratch()));
