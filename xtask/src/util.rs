//! Small helpers: the project root, running commands, checksums.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (the folder above `xtask/`): of the tree `cargo xtask` runs in, which
/// cargo names at run time, before the one this binary was compiled in (a build in the shared
/// target folder may come from another clone of the same files).
pub fn root() -> PathBuf {
    let xtask =
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    xtask.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `command` in the project root, echoing it; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result {
    command.current_dir(root());
    eprintln!("xtask: $ {}", describe(command));
    let status = command.status().map_err(|e| format!("could not start `{}`: {e}", describe(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(command)))
    }
}

/// Runs `command` quietly and returns its stdout, or `None` if it could not run or failed.
pub fn output(command: &mut Command) -> Option<String> {
    let out = command.current_dir(root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Fails with a message naming `path` unless its sha256 is `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result {
    let actual = sha256_file(path)?;
    if actual == expected {
        Ok(())
    } else {
        Err(format!("checksum mismatch for {}: expected sha256 {expected}, got {actual}", path.display()))
    }
}

/// `true` when `program` runs (`program --version` exits 0).
pub fn has_program(program: &str) -> bool {
    output(Command::new(program).arg("--version")).is_some()
}

/// The steps timed so far in this process, in the order they ended.
static STEP_TIMES: std::sync::Mutex<Vec<(String, std::time::Duration)>> = std::sync::Mutex::new(Vec::new());

/// Runs `step`, prints how long it took and records it for [`print_step_times`], so that a
/// slow set-up step shows.
pub fn timed<T>(name: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = std::time::Instant::now();
    let outcome = step();
    let elapsed = started.elapsed();
    eprintln!("xtask: step {name}: {:.1} s", elapsed.as_secs_f64());
    STEP_TIMES.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_string(), elapsed));
    outcome
}

/// Every step timed so far on one line (steps that ran side by side overlap).
pub fn print_step_times() {
    let times = STEP_TIMES.lock().unwrap_or_else(|e| e.into_inner());
    let parts: Vec<String> = times.iter().map(|(name, time)| format!("{name} {:.0} s", time.as_secs_f64())).collect();
    eprintln!("xtask: step times: {}", parts.join(", "));
}
