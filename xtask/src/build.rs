//! Builds the static site into `pkg/`: both wasm binaries through wasm-bindgen and wasm-opt
//! (skipped when `GRAFT_SKIP_WASM_OPT` is set, for quick iterations), the worker a second time
//! with relaxed SIMD (`graft-worker-relaxed`, which the page starts where the browser has it),
//! the page's files from
//! `web/`, `static/` (weights included), and `sw.js`, the service worker, with its file list and a
//! cache name hashed from the files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup::{wasm_bindgen, wasm_opt};
use crate::util::{root, run, Result};

/// Each binary with its wasm-bindgen target: the page is an ES module; the worker is loaded by
/// gloo-worker's `importScripts` shim, which needs the `no-modules` output.
const BINARIES: [(&str, &str); 2] = [("graft-app", "web"), ("graft-worker", "no-modules")];
const PAGE_FILES: [&str; 7] =
    ["index.html", "app.js", "styles.css", "favicon.svg", "manifest.webmanifest", "icon-192.png", "icon-512.png"];
/// The wasm features rustc's wasm32 target enables by default, plus SIMD128.
const WASM_FEATURES: [&str; 7] = [
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// How the engine's wasm is compiled: SIMD128, which every browser Graft supports has, or with
/// relaxed SIMD's fused multiply-add too (`f32x4_relaxed_madd` in the pointwise products and
/// the depthwise kernel), for browsers that have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmFlavour {
    Simd128,
    Relaxed,
}

impl WasmFlavour {
    /// Cargo's target folder: the relaxed build has its own, so that neither rebuilds the other.
    pub fn target_dir(self) -> PathBuf {
        match self {
            WasmFlavour::Simd128 => root().join("target"),
            WasmFlavour::Relaxed => root().join("target/relaxed"),
        }
    }

    /// Points `cargo` at this flavour's target folder and target features.
    pub fn configure(self, cargo: &mut Command) -> &mut Command {
        if self == WasmFlavour::Relaxed {
            cargo
                .env("CARGO_TARGET_DIR", self.target_dir())
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", "-C target-feature=+simd128,+relaxed-simd");
        }
        cargo
    }

    /// Appended to the output's name.
    fn suffix(self) -> &'static str {
        match self {
            WasmFlavour::Simd128 => "",
            WasmFlavour::Relaxed => "-relaxed",
        }
    }
}

pub fn site() -> Result {
    let root = root();
    let pkg = root.join("pkg");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(|e| format!("could not clear pkg/: {e}"))?;
    }
    wasm_binaries(&BINARIES, &pkg, WasmFlavour::Simd128)?;
    wasm_binaries(&[("graft-worker", "no-modules")], &pkg, WasmFlavour::Relaxed)?;
    for file in PAGE_FILES {
        copy(&root.join("web").join(file), &pkg.join(file))?;
    }
    copy_dir(&root.join("static"), &pkg)?;
    write_service_worker(&root.join("web/sw.js"), &pkg)?;
    eprintln!("xtask: site built in {}", pkg.display());
    Ok(())
}

/// Every file under `dir`, as paths relative to it with `/`, sorted.
fn site_files(dir: &Path, prefix: &str, files: &mut Vec<String>) -> Result {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("could not list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            site_files(&entry.path(), &format!("{name}/"), files)?;
        } else {
            files.push(name);
        }
    }
    files.sort();
    Ok(())
}

/// `sw.js` with the site's file list and a cache name from the sha256 of every file: a new
/// build caches anew, and the service worker deletes the old cache when it activates.
fn write_service_worker(template: &Path, pkg: &Path) -> Result {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    site_files(pkg, "", &mut files)?;
    let mut hash = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(pkg.join(file)).map_err(|e| format!("could not read {file}: {e}"))?;
        hash.update(file.as_bytes());
        hash.update(Sha256::digest(&bytes));
    }
    let digest: String = hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let mut listed = vec!["./".to_string()];
    listed.extend(files);
    let source =
        std::fs::read_to_string(template).map_err(|e| format!("could not read {}: {e}", template.display()))?;
    let source = source
        .replace("__GRAFT_CACHE__", &format!("graft-{digest}"))
        .replace("__GRAFT_FILES__", &serde_json::to_string(&listed).map_err(|e| e.to_string())?);
    std::fs::write(pkg.join("sw.js"), source).map_err(|e| format!("could not write sw.js: {e}"))
}

/// Builds binaries of the graft-web crate for wasm32 (release) as `flavour` and writes each
/// one's wasm-bindgen output (named `<binary><suffix>`), optimised by wasm-opt, into `out_dir`.
pub fn wasm_binaries(binaries: &[(&str, &str)], out_dir: &Path, flavour: WasmFlavour) -> Result {
    let mut cargo = Command::new("cargo");
    cargo.args(["build", "--release", "--target", "wasm32-unknown-unknown", "--package", "graft-web"]);
    for (binary, _) in binaries {
        cargo.args(["--bin", binary]);
    }
    run(flavour.configure(&mut cargo))?;
    for (binary, target) in binaries {
        let wasm = flavour.target_dir().join(format!("wasm32-unknown-unknown/release/{binary}.wasm"));
        let name = format!("{binary}{}", flavour.suffix());
        run(Command::new(wasm_bindgen())
            .args(["--target", target, "--no-typescript", "--out-name", &name, "--out-dir"])
            .arg(out_dir)
            .arg(&wasm))?;
        if std::env::var_os("GRAFT_SKIP_WASM_OPT").is_some() {
            continue;
        }
        let bindgen_wasm = out_dir.join(format!("{name}_bg.wasm"));
        let relaxed = (flavour == WasmFlavour::Relaxed).then_some("--enable-relaxed-simd");
        run(Command::new(wasm_opt())
            .arg("-O2")
            .args(WASM_FEATURES)
            .args(relaxed)
            .arg(&bindgen_wasm)
            .arg("-o")
            .arg(&bindgen_wasm))?;
    }
    Ok(())
}

pub fn copy(from: &Path, to: &Path) -> Result {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("could not copy {} to {}: {e}", from.display(), to.display()))
}

pub fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|e| format!("could not create {}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("could not list {}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}
