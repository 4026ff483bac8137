//! Builds the static site into `pkg/`: both wasm binaries through wasm-bindgen and wasm-opt
//! (skipped when `GRAFT_SKIP_WASM_OPT` is set, for quick iterations), the worker a second time
//! with relaxed SIMD (`graft-worker-relaxed`, which the page starts where the browser has it),
//! the page's files from
//! `web/`, `static/` (weights included), and `sw.js`, the service worker, with its file list and a
//! cache name hashed from the files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup::{joined, wasm_bindgen, wasm_opts};
use crate::util::{print_step_times, root, run, timed, Result};

/// One wasm binary of graft-web: its name, wasm-bindgen's target for it, and whether it is built
/// with the page's modules (graft-web's `page` feature). The others are built without them, in a
/// cargo run of their own, so that a change to the page alone rebuilds nothing of theirs and
/// their cached wasm-opt output is reused (it is most of a rebuild's time otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    pub name: &'static str,
    pub bindgen_target: &'static str,
    pub page: bool,
}

/// The page is an ES module; the worker is loaded by gloo-worker's `importScripts` shim, which
/// needs the `no-modules` output.
const APP: Binary = Binary { name: "graft-app", bindgen_target: "web", page: true };
const WORKER: Binary = Binary { name: "graft-worker", bindgen_target: "no-modules", page: false };
const BINARIES: [Binary; 2] = [APP, WORKER];
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
            WasmFlavour::Simd128 => crate::cache::target_dir(),
            WasmFlavour::Relaxed => crate::cache::target_dir().join("relaxed"),
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

/// The worker built with relaxed SIMD (for browsers that have it) beside the SIMD128 one.
const RELAXED: [Binary; 1] = [WORKER];

/// The site into `pkg/`, once [`crate::setup::build_tools`] has run.
pub fn site() -> Result {
    let pkg = clear_pkg()?;
    timed("wasm build (SIMD128)", || cargo_build(&BINARIES, WasmFlavour::Simd128))?;
    // The SIMD128 binaries go through wasm-bindgen and wasm-opt (mostly one thread) while
    // cargo builds the relaxed worker beside them.
    std::thread::scope(|scope| {
        let finishing = scope.spawn(|| timed("wasm-opt (SIMD128)", || finish(&BINARIES, &pkg, WasmFlavour::Simd128)));
        let relaxed = timed("wasm build (relaxed SIMD)", || cargo_build(&RELAXED, WasmFlavour::Relaxed))
            .and_then(|()| timed("wasm-opt (relaxed SIMD)", || finish(&RELAXED, &pkg, WasmFlavour::Relaxed)));
        joined(finishing)?;
        relaxed
    })?;
    assemble(&pkg)
}

/// `build` and `serve` from a clean clone: the tools, the weights and the site, independent
/// steps side by side so that one's single-threaded stretches (linking, the largest crates,
/// wasm-opt) leave the other core to the next. The relaxed worker builds in its own target
/// folder from the start; the native build that converts the weights and the SIMD128 build
/// share `target/` (cargo runs them one after the other); wasm-bindgen installs meanwhile.
pub fn tools_and_site() -> Result {
    timed("wasm32 target", crate::setup::wasm_target)?;
    let pkg = clear_pkg()?;
    std::thread::scope(|scope| {
        let tools = scope.spawn(crate::setup::wasm_tools);
        let weights = scope.spawn(|| timed("weights", || crate::setup::weights(crate::setup::CliBuild::Alone)));
        let relaxed =
            scope.spawn(|| timed("wasm build (relaxed SIMD)", || cargo_build(&RELAXED, WasmFlavour::Relaxed)));
        let simd128 = timed("wasm build (SIMD128)", || cargo_build(&BINARIES, WasmFlavour::Simd128));
        joined(tools)?;
        simd128?;
        let finishing = scope.spawn(|| timed("wasm-opt (SIMD128)", || finish(&BINARIES, &pkg, WasmFlavour::Simd128)));
        joined(relaxed)?;
        let outcome = timed("wasm-opt (relaxed SIMD)", || finish(&RELAXED, &pkg, WasmFlavour::Relaxed));
        joined(finishing)?;
        joined(weights)?;
        outcome
    })?;
    assemble(&pkg)
}

fn clear_pkg() -> Result<PathBuf> {
    let pkg = root().join("pkg");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(|e| format!("could not clear pkg/: {e}"))?;
    }
    std::fs::create_dir_all(&pkg).map_err(|e| format!("could not create pkg/: {e}"))?;
    Ok(pkg)
}

/// The page's files, the models and the service worker beside the built binaries.
fn assemble(pkg: &Path) -> Result {
    let root = root();
    for file in PAGE_FILES {
        copy(&root.join("web").join(file), &pkg.join(file))?;
    }
    copy_dir(&root.join("static"), pkg)?;
    write_service_worker(&root.join("web/sw.js"), pkg)?;
    eprintln!("xtask: site built in {}", pkg.display());
    print_step_times();
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
pub fn wasm_binaries(binaries: &[Binary], out_dir: &Path, flavour: WasmFlavour) -> Result {
    cargo_build(binaries, flavour)?;
    finish(binaries, out_dir, flavour)
}

/// One cargo run per binary: cargo unifies the features of the binaries one run builds.
fn cargo_build(binaries: &[Binary], flavour: WasmFlavour) -> Result {
    for binary in binaries {
        let mut cargo = crate::cache::cargo();
        cargo.args(["build", "--release", "--target", "wasm32-unknown-unknown", "--package", "graft-web"]);
        cargo.args(["--bin", binary.name]);
        if !binary.page {
            cargo.arg("--no-default-features");
        }
        run(flavour.configure(&mut cargo))?;
    }
    Ok(())
}

/// wasm-bindgen, then wasm-opt, for each built binary. Their output is kept under
/// the shared cache's `wasm-finished/`, keyed by the sha256 of cargo's binary and of the commands, so
/// that a rebuild after a change to the page alone reuses the worker's (wasm-opt is most of a
/// rebuild's time otherwise).
fn finish(binaries: &[Binary], out_dir: &Path, flavour: WasmFlavour) -> Result {
    for binary in binaries {
        let wasm = flavour.target_dir().join(format!("wasm32-unknown-unknown/release/{}.wasm", binary.name));
        let name = format!("{}{}", binary.name, flavour.suffix());
        let bindgen = [
            vec![
                "--target".to_string(),
                binary.bindgen_target.to_string(),
                "--no-typescript".into(),
                "--out-name".into(),
                name.clone(),
            ],
            vec!["--out-dir".into()],
        ];
        let optimise = std::env::var_os("GRAFT_SKIP_WASM_OPT").is_none();
        let wasm_opts = wasm_opts(flavour == WasmFlavour::Relaxed);
        let mut opt_args: Vec<String> = ["-O2"].into_iter().chain(WASM_FEATURES).map(String::from).collect();
        if flavour == WasmFlavour::Relaxed {
            opt_args.push("--enable-relaxed-simd".into());
        }
        let recipe = format!("{bindgen:?} {optimise} {wasm_opts:?} {opt_args:?}");
        let cache = crate::cache::dir().join("wasm-finished").join(cache_key(&wasm, &recipe)?);
        let outputs = [format!("{name}_bg.wasm"), format!("{name}.js")];
        if cache.is_dir() {
            eprintln!("xtask: {name}: unchanged, wasm-bindgen and wasm-opt output reused");
        } else {
            // Made beside the cache and renamed into it once complete, so that an interrupted
            // or failed step leaves nothing to reuse.
            let partial = cache.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            run(Command::new(wasm_bindgen()).args(bindgen.concat()).arg(&partial).arg(&wasm))?;
            if optimise {
                optimise_wasm(&wasm_opts, &opt_args, &partial.join(&outputs[0]))?;
            }
            std::fs::rename(&partial, &cache).map_err(|e| format!("could not keep {}: {e}", cache.display()))?;
        }
        // The whole folder: wasm-bindgen may write `snippets/` beside the two files.
        copy_dir(&cache, out_dir)?;
    }
    Ok(())
}

/// wasm-opt on `wasm` in place with the first of `tools` that can read it (a native binaryen too
/// old for some instruction fails at once, without writing; the next one takes over).
fn optimise_wasm(tools: &[PathBuf], args: &[String], wasm: &Path) -> Result {
    let mut failures = Vec::new();
    for tool in tools {
        match run(Command::new(tool).args(args).arg(wasm).arg("-o").arg(wasm)) {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("xtask: {} could not optimise {}: trying the next wasm-opt", tool.display(), wasm.display());
                failures.push(e);
            }
        }
    }
    Err(format!("no wasm-opt could optimise {}: {}", wasm.display(), failures.join("; ")))
}

/// A folder name from the sha256 of `wasm` and of `recipe` (the tools and their arguments).
fn cache_key(wasm: &Path, recipe: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(wasm).map_err(|e| format!("could not read {}: {e}", wasm.display()))?;
    let digest = Sha256::new().chain_update(&bytes).chain_update(recipe.as_bytes()).finalize();
    Ok(digest.iter().take(12).map(|b| format!("{b:02x}")).collect())
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
