//! End-to-end tests of the `sluice` binary and library. One test binary, so linking happens once.

mod abi;
mod bad_input;
mod chain;
mod conformance;
mod contracts;
mod dagster;
mod determinism;
mod fuzz_replay;
mod harness;
mod hostile;
mod pinning;
mod plan;
mod plugins;
mod privacy;
mod provenance;
mod python_binding;
mod python_sdk;
mod quality;
mod recovery;
mod refusals;
mod schedulers;
mod tpch;
mod types;
mod util;
mod verify;
