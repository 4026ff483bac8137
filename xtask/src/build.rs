//! Builds the static site into `pkg/`: both wasm binaries through wasm-bindgen and wasm-opt
//! (skipped when `GRAFT_SKIP_WASM_OPT` is set, for quick iterations), the page's files from
//! `web/`, and `static/` (weights included).

use std::path::Path;
use std::process::Command;

use crate::setup::{wasm_bindgen, wasm_opt};
use crate::util::{root, run, Result};

/// Each binary with its wasm-bindgen target: the page is an ES module; the worker is loaded by
/// gloo-worker's `importScripts` shim, which needs the `no-modules` output.
const BINARIES: [(&str, &str); 2] = [("graft-app", "web"), ("graft-worker", "no-modules")];
const PAGE_FILES: [&str; 4] = ["index.html", "app.js", "styles.css", "favicon.svg"];
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

pub fn site() -> Result {
    let root = root();
    let pkg = root.join("pkg");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(|e| format!("could not clear pkg/: {e}"))?;
    }
    wasm_binaries(&BINARIES, &pkg)?;
    for file in PAGE_FILES {
        copy(&root.join("web").join(file), &pkg.join(file))?;
    }
    copy_dir(&root.join("static"), &pkg)?;
    eprintln!("xtask: site built in {}", pkg.display());
    Ok(())
}

/// Builds binaries of the graft-web crate for wasm32 (release) and writes each one's
/// wasm-bindgen output, optimised by wasm-opt, into `out_dir`.
pub fn wasm_binaries(binaries: &[(&str, &str)], out_dir: &Path) -> Result {
    let mut cargo = Command::new("cargo");
    cargo.args(["build", "--release", "--target", "wasm32-unknown-unknown", "--package", "graft-web"]);
    for (binary, _) in binaries {
        cargo.args(["--bin", binary]);
    }
    run(&mut cargo)?;
    for (binary, target) in binaries {
        let wasm = root().join(format!("target/wasm32-unknown-unknown/release/{binary}.wasm"));
        run(Command::new(wasm_bindgen())
            .args(["--target", target, "--no-typescript", "--out-dir"])
            .arg(out_dir)
            .arg(&wasm))?;
        if std::env::var_os("GRAFT_SKIP_WASM_OPT").is_some() {
            continue;
        }
        let bindgen_wasm = out_dir.join(format!("{binary}_bg.wasm"));
        run(Command::new(wasm_opt()).arg("-O2").args(WASM_FEATURES).arg(&bindgen_wasm).arg("-o").arg(&bindgen_wasm))?;
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
