//! The caches every clone on this machine shares, outside the work tree: `$XDG_CACHE_HOME/graft`
//! (else `~/.cache/graft`). Everything in it is keyed by version or checksum, so a fresh clone
//! finds what another clone already built or fetched; `cargo xtask clean-cache` removes it.
//!
//! - `target/`: cargo's target folder for every cargo command xtask runs (unless
//!   `CARGO_TARGET_DIR` is set), so that compiled dependencies are reused by the next clone.
//! - `vendor/<crate>-<sha>/`: the vendored crates, copied once per content (see [`cargo`]).
//! - `tools/`, `weights/`, `npm/`, `wasm-finished/`: pinned tools, fetched and converted
//!   weights, npm packages by lockfile, wasm-bindgen and wasm-opt output by input.
//!
//! Why a shared target folder is safe here: cargo names a workspace crate's outputs by its path
//! relative to the workspace root and decides freshness by file times, so two clones building
//! into one folder would take each other's outputs for a file older than the other's build
//! (measured: a clone with an older, different file ran the other clone's binary). So xtask
//! gives every file of the work tree the time its content was first seen at its path
//! ([`align_file_times`], a list kept in the target folder): a file whose content the folder's
//! last build saw gets that build's time back (in a fresh clone of the same commit, cargo finds
//! every crate of ours fresh: 0 s instead of 4 to 5 min of recompiling), and any other gets
//! the time now (cargo rebuilds what reads it). Only xtask may build into the shared folder: a
//! plain `cargo` pointed at it bypasses the list. The vendored crate would otherwise be rebuilt
//! by every clone and take gemm and Candle with it: it is patched in from a copy named by its
//! checksum instead, whose files never change.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::util::{root, run, Result};

/// The vendored crates, patched over crates.io as `Cargo.toml`'s `[patch.crates-io]` says.
const VENDORED: [&str; 1] = ["gemm-f32"];

/// `$XDG_CACHE_HOME/graft`, else `$HOME/.cache/graft`, else `.cache/` in the work tree.
pub fn dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| PathBuf::from(home).join(".cache")));
    match base {
        Some(base) => base.join("graft"),
        None => root().join(".cache"),
    }
}

/// Cargo's target folder: `CARGO_TARGET_DIR` where set, else the shared one.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dir().join("target"),
    }
}

/// A `cargo` command that builds into [`target_dir`] with the vendored crates patched in from
/// their cached copies. Call [`prepare_target`] once before the first one.
pub fn cargo() -> Command {
    let mut cargo = Command::new("cargo");
    cargo.env("CARGO_TARGET_DIR", target_dir());
    for name in VENDORED {
        let copy = vendored_copy_dir(name);
        // A TOML string: the path is ours (the cache folder), quotes and backslashes escaped.
        let path = copy.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
        cargo.arg("--config").arg(format!("patch.crates-io.{name}.path=\"{path}\""));
    }
    cargo
}

/// [`cargo`] for the native release builds the tests use (the tests, the CLI the e2e tests run,
/// `import-weights`): integer overflow checks on in every crate, so that every test, the
/// hostile-input property tests among them, panics on an overflow that release would wrap.
/// One setting for all of them, so that they share one build of the dependencies (a profile
/// of its own built them all again: 51 s warm, every dependency cold). The site (wasm) and
/// `graft-bench` build without: their speed is the product's.
pub fn checked_cargo() -> Command {
    let mut cargo = cargo();
    cargo.args(["--config", "profile.release.overflow-checks=true"]);
    cargo
}

/// Makes the shared target folder safe for this work tree (see the module's header) and the
/// vendored copies current. Cheap when nothing changed: a file whose time is the listed one is
/// not read again.
pub fn prepare_target() -> Result {
    for name in VENDORED {
        vendored_copy(name)?;
    }
    let target = target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("could not create {}: {e}", target.display()))?;
    let here = root().canonicalize().unwrap_or_else(|_| root());
    align_file_times(&here, &target.join("graft-file-times.json"))
}

/// For each file under `tree`, its sha256 and the time given to that content.
type FileTimes = std::collections::BTreeMap<String, (String, u64)>;

/// Gives each file under `tree` (not `.git`, build output or installed packages) the time in
/// `list` when its content is the listed one, else the time now, and writes the list again
/// for this tree. Times are whole microseconds since 1970, which every file system here keeps.
fn align_file_times(tree: &Path, list: &Path) -> Result {
    let known: FileTimes =
        std::fs::read(list).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let now = micros(SystemTime::now());
    let mut seen = FileTimes::new();
    let mut changed = 0;
    for file in tree_files(tree)? {
        let relative = file.strip_prefix(tree).unwrap_or(&file).to_string_lossy().into_owned();
        let listed = known.get(&relative);
        let time = std::fs::metadata(&file).and_then(|m| m.modified()).map(micros).ok();
        let entry = match listed {
            Some((digest, listed_time)) if time == Some(*listed_time) => (digest.clone(), *listed_time),
            _ => {
                let digest = crate::util::sha256_file(&file)?;
                let time = match listed {
                    Some((listed_digest, listed_time)) if *listed_digest == digest => *listed_time,
                    _ => {
                        changed += 1;
                        now
                    }
                };
                set_time(&file, time);
                (digest, time)
            }
        };
        seen.insert(relative, entry);
    }
    if changed > 0 && !known.is_empty() {
        eprintln!(
            "xtask: {changed} files differ from what {} last built: cargo rebuilds what reads them",
            list.display()
        );
    }
    let text = serde_json::to_vec(&seen).map_err(|e| format!("could not list the file times: {e}"))?;
    std::fs::write(list, text).map_err(|e| format!("could not write {}: {e}", list.display()))
}

/// Every file under `tree`, not in `.git`, build output or installed packages.
fn tree_files(tree: &Path) -> Result<Vec<PathBuf>> {
    files_under(tree, &[".git", "target", "pkg", "node_modules", ".cache"])
}

/// Every file under `dir`, not in a folder named in `skip`.
fn files_under(dir: &Path, skip: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| format!("could not list {}: {e}", folder.display()))?;
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() && !skip.iter().any(|name| entry.file_name() == *name) => {
                    folders.push(entry.path())
                }
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    Ok(files)
}

fn micros(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Sets `file`'s modification time; where that fails, says so (cargo may then reuse or
/// rebuild wrongly for that file).
fn set_time(file: &Path, micros: u64) {
    let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(micros);
    let opened = std::fs::File::options().append(true).open(file);
    if let Err(e) = opened.and_then(|f| f.set_modified(time)) {
        eprintln!("xtask: could not set the time of {} ({e}): cargo may reuse another tree's build", file.display());
    }
}

fn vendored_copy_dir(name: &str) -> PathBuf {
    let source = root().join("vendor").join(name);
    let digest = tree_digest(&source).unwrap_or_else(|_| "unreadable".into());
    dir().join("vendor").join(format!("{name}-{}", &digest[..16.min(digest.len())]))
}

/// The cached copy of `vendor/<name>`, made once per content: its files keep their times, so
/// cargo keeps what it compiled from them, in any clone.
fn vendored_copy(name: &str) -> Result<PathBuf> {
    let source = root().join("vendor").join(name);
    let copy = vendored_copy_dir(name);
    if copy.is_dir() && tree_digest(&copy).ok() == tree_digest(&source).ok() {
        return Ok(copy);
    }
    let partial = copy.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    crate::build::copy_dir(&source, &partial)?;
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::rename(&partial, &copy).map_err(|e| format!("could not keep {}: {e}", copy.display()))?;
    Ok(copy)
}

/// The sha256 (hex) of every file's relative path and bytes under `dir`, in a stable order.
pub fn tree_digest(dir: &Path) -> Result<String> {
    let mut files = files_under(dir, &[])?;
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        let bytes = std::fs::read(&file).map_err(|e| format!("could not read {}: {e}", file.display()))?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The npm packages of `folder`'s `package-lock.json`, installed once per lockfile into the
/// cache and linked as `folder/node_modules`. A `node_modules` folder that is not such a link
/// (an older layout, or the user's own) is left as it is.
pub fn npm_packages(folder: &Path) -> Result {
    let lock = folder.join("package-lock.json");
    let digest = crate::util::sha256_file(&lock)?;
    let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let installed = dir().join("npm").join(format!("{name}-{}", &digest[..16]));
    if !installed.join("node_modules").is_dir() {
        let partial = installed.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| format!("could not create {}: {e}", partial.display()))?;
        for file in ["package.json", "package-lock.json"] {
            crate::build::copy(&folder.join(file), &partial.join(file))?;
        }
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefer-offline", "--prefix"]).arg(&partial))?;
        let _ = std::fs::remove_dir_all(&installed);
        std::fs::rename(&partial, &installed).map_err(|e| format!("could not keep {}: {e}", installed.display()))?;
    }
    let link = folder.join("node_modules");
    let wanted = installed.join("node_modules");
    match std::fs::read_link(&link) {
        Ok(current) if current == wanted => return Ok(()),
        Ok(_) => std::fs::remove_file(&link).map_err(|e| format!("could not replace {}: {e}", link.display()))?,
        Err(_) if link.exists() => return Ok(()),
        Err(_) => {}
    }
    symlink(&wanted, &link)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result {
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("could not link {}: {e}", link.display()))
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> Result {
    crate::build::copy_dir(target, link)
}

/// `cargo xtask clean-cache`: removes the shared cache (the work tree's own folders stay).
pub fn clean() -> Result {
    let dir = dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("could not remove {}: {e}", dir.display()))?;
    }
    eprintln!("xtask: removed {}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time_of(file: &Path) -> u64 {
        micros(std::fs::metadata(file).and_then(|m| m.modified()).unwrap())
    }

    /// Two clones in one target folder: the same content keeps the time of the build that saw
    /// it, other content gets a later time, so cargo rebuilds exactly what differs.
    #[test]
    fn a_file_keeps_its_time_only_while_its_content_is_the_listed_one() {
        let scratch = std::env::temp_dir().join(format!("graft-file-times-{}", std::process::id()));
        let (a, b, list) = (scratch.join("a"), scratch.join("b"), scratch.join("times.json"));
        for tree in [&a, &b] {
            std::fs::create_dir_all(tree.join("src")).unwrap();
            std::fs::write(tree.join("src/lib.rs"), "pub fn one() {}").unwrap();
        }
        std::fs::write(a.join("src/other.rs"), "a").unwrap();
        std::fs::write(b.join("src/other.rs"), "b").unwrap();
        align_file_times(&a, &list).unwrap();
        let (lib_a, other_a) = (time_of(&a.join("src/lib.rs")), time_of(&a.join("src/other.rs")));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(b.join("src/lib.rs"), "pub fn one() {}").unwrap();

        align_file_times(&b, &list).unwrap();
        assert_eq!(time_of(&b.join("src/lib.rs")), lib_a, "the same content gets the listed time back");
        assert!(time_of(&b.join("src/other.rs")) > other_a, "other content counts as changed");

        std::thread::sleep(std::time::Duration::from_millis(20));
        align_file_times(&a, &list).unwrap();
        assert_eq!(time_of(&a.join("src/lib.rs")), lib_a);
        assert!(
            time_of(&a.join("src/other.rs")) > time_of(&b.join("src/other.rs")),
            "back in tree a, a's file changed again"
        );
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
