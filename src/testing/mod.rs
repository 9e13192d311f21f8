//! Test support, not gateway code, built for the crate's unit tests and, with the `testing`
//! feature, for its integration tests and benchmarks (never in a release build):
//! where the public reference data is, whether an independent oracle (`xmllint`, `xmlsec1`,
//! `openssl`, `curl`) is installed, and a small fleet with its register and broker keys
//! ([`fixture`]). Outside CI a missing oracle skips the test with a message; under `CI=true` it
//! fails the test, because the oracles must run there.

pub mod fixture;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The public reference data: `$DCCGW_ANCHORS`, else `<crate>/../shared/anchors`.
pub fn anchors_dir() -> PathBuf {
    match std::env::var_os("DCCGW_ANCHORS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/anchors"),
    }
}

/// Whether a missing oracle or missing anchors must fail the test rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The anchors directory, or `None` (said on stderr) when it is absent outside CI.
pub fn anchors() -> Option<PathBuf> {
    let dir = anchors_dir();
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "CI=true but the anchors are missing at {} (set DCCGW_ANCHORS)",
        dir.display()
    );
    eprintln!(
        "SKIPPED: no anchors at {} (set DCCGW_ANCHORS)",
        dir.display()
    );
    None
}

/// Whether `tool` runs (`tool <version_arg>` succeeds); `false` (said on stderr) outside CI.
pub fn have_tool(tool: &str, version_arg: &str) -> bool {
    let found = Command::new(tool)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(!in_ci(), "CI=true but {tool} is not installed");
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}
