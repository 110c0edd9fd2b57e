//! The ABI is frozen: the 1.0.0 and 1.1.0 WIT texts (and sluice:kernels 1.0.0) are pinned, and a plugin built against
//! 1.0.0 is committed and must keep loading and running in every later host.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_test_artifacts as art;

use crate::util::*;

/// Assert that `path` (from the repository root) still has the sha256 it was released with.
fn assert_frozen(path: &str, sha256: &str, message: &str) {
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&text)), sha256, "{message}");
}

/// sha256 of `wit/transform.wit` as released in 1.0.0.
const WIT_1_0_0_SHA256: &str = "1f90f15d7b53d8a1728473dcc3ab1363027afa36db18be6415676286fd885caf";

#[test]
fn wit_1_0_0_text_is_frozen() {
    assert_frozen(
        "wit/transform.wit",
        WIT_1_0_0_SHA256,
        "wit/transform.wit changed. The 1.0.0 ABI is frozen: do not edit it. Add the new items in a \
         new minor version (package sluice:transform@1.1.0) in a new file, keep 1.0.0 loading, and \
         pin the new file in its own test.",
    );
}

/// sha256 of `wit/1.1/transform.wit` as released in 1.1.0 (column plans).
const WIT_1_1_0_SHA256: &str = "3d650dfd2ceeb7df6832b0924adc6a22d02765615cdb84e467439416c14b5251";

#[test]
fn wit_1_1_0_text_is_frozen() {
    assert_frozen(
        "wit/1.1/transform.wit",
        WIT_1_1_0_SHA256,
        "wit/1.1/transform.wit changed. The 1.1.0 ABI is frozen: do not edit it. Add the new items in a \
         new minor version (package sluice:transform@1.2.0) in a new file, keep 1.0 and 1.1 loading, and \
         pin the new file in its own test.",
    );
}

#[test]
fn committed_1_0_0_plugin_still_loads_and_runs() {
    let rt = runtime();
    let p = rt.load_plugin(Path::new(art::ABI_1_0_0_FIXTURE)).unwrap();
    assert_eq!(p.info().abi_version, "1.0.0");
    assert_eq!(p.info().name, "echo");
    let b = orders();
    let mut t = p.open(&[], &b.schema(), None, &Default::default()).unwrap();
    assert_eq!(t.output_schema(), &b.schema());
    let out = t.process(&b).unwrap();
    assert_eq!(out, vec![b.clone()]);
    assert!(t.finish().unwrap().is_empty());
    let _ = Arc::clone(t.output_schema());
}

#[test]
fn freshly_built_echo_matches_the_fixture_behaviour() {
    // The fixture is a frozen copy of this plugin: both must behave the same.
    let rt = runtime();
    let b = orders();
    for path in [art::ECHO, art::ABI_1_0_0_FIXTURE] {
        let p = rt.load_plugin(Path::new(path)).unwrap();
        let mut t = p.open(&[], &b.schema(), None, &Default::default()).unwrap();
        assert_eq!(t.process(&b).unwrap(), vec![b.clone()], "{path}");
    }
}

/// sha256 of `wit/kernels/kernels.wit` as released in sluice:kernels 1.0.0.
const KERNELS_1_0_0_SHA256: &str = "c5b2bdcefcda3b26a47260434d20b712405c1f9aefa6bb28c1791b3aa0a0aa42";

#[test]
fn kernels_1_0_0_text_is_frozen() {
    assert_frozen(
        "wit/kernels/kernels.wit",
        KERNELS_1_0_0_SHA256,
        "wit/kernels/kernels.wit changed. sluice:kernels 1.0.0 is frozen: do not edit it. Add new \
         kernels in a new minor version (package sluice:kernels@1.1.0) in a new file, keep providing \
         1.0.0, and pin the new file in its own test.",
    );
}
