//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The served model folder that `cargo xtask setup` fills.
pub fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/models")
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
