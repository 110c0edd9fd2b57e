//! Paths of the plugins built for tests and benchmarks by this crate's `build.rs`.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// Path of the committed echo plugin built against ABI 1.0.0 (must load in every host).
pub const ABI_1_0_0_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/abi-1.0.0/echo.wasm");
