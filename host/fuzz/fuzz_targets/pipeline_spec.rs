//! Fuzz target `pipeline_spec`: see `checks::pipeline_spec`.

#![no_main]

#[path = "../checks.rs"]
mod checks;
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::pipeline_spec(data, common::scratch()));
