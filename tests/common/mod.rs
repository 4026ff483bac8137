//! Helpers shared by the integration tests (each test file uses some of them).

#![allow(dead_code)]

use std::path::PathBuf;

/// The package's folder in the work tree that runs the tests: the one cargo (or xtask) names
/// when it starts them, before the one the test was compiled in, since a build in xtask's
/// shared target folder may come from another clone of the same files.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// The served model folder that `cargo xtask setup` fills.
pub fn model_dir() -> PathBuf {
    manifest_dir().join("static/models")
}

/// Returns `path` if it exists. Otherwise the test is skipped with a message, unless
/// `GRAFT_REQUIRE_FIXTURES` is set (as `cargo xtask test` and CI do), where it fails.
pub fn require(path: PathBuf, how_to_get_it: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!("{} is missing ({how_to_get_it})", path.display());
    if std::env::var_os("GRAFT_REQUIRE_FIXTURES").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}
