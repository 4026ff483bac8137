//! `cargo xtask bench`: MobileNetV2 feature extraction (224x224 -> 1280), Graft against the
//! reference engines on the same inputs, same machine, same thread count.
//!
//! - Inputs: the first 24 photos of opencv-doc's samples, preprocessed once by the engine
//!   (`graft-bench prepare`) into `.cache/bench/inputs.f32`; every engine reads that file.
//! - Browser (headless Chromium, one page per thread count): Graft's wasm CPU path (SIMD128,
//!   one thread; then the relaxed-SIMD build, fused multiply-add, where the browser has it);
//!   Graft's embedding pool (one engine instance per Web Worker, batches of 8 from one queue);
//!   TensorFlow.js's wasm backend (XNNPACK; MobileNetV2 from tfjs-core fused ops with Graft's
//!   folded weights); onnxruntime-web (wasm EP) on an ONNX file exported from the app's own
//!   safetensors (tests/bench/torch_reference.py). The pool, tfjs and onnxruntime-web run at
//!   1 and 2 threads and at one per core; onnxruntime-web also at its default. All pinned in
//!   tests/bench/package.json.
//! - Browser, WebGPU (a second Chromium with `--enable-unsafe-webgpu`, SwiftShader unless
//!   `GRAFT_BENCH_SWIFTSHADER=0`): Graft's GPU executor, onnxruntime-web's WebGPU execution
//!   provider on the same ONNX file, and TensorFlow.js's WebGPU backend running MobileNetV2 built
//!   from tfjs-core fused ops with Graft's folded weights; batch 1, 8 and 32, the first run's
//!   time (pipeline compilation), features against Graft's CPU path.
//! - Native: Graft (`graft-bench native`) and PyTorch CPU (Debian's python3-torch,
//!   `torch.set_num_threads`), one thread each, then every core each; Graft's GPU executor on
//!   the native adapter (Vulkan; lavapipe where there is no GPU).
//! - Outputs compared: Graft's features against each reference's (max |diff|).
//!
//! Prints a table and writes everything to `.cache/bench/results.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::build::{copy, copy_dir, wasm_binaries, Binary, WasmFlavour};
use crate::setup::{apt_packages, build_tools, model_dir, test_tools, BENCH_ARCHITECTURE};
use crate::util::{root, run, Result};

const PHOTOS_DIR: &str = "/usr/share/doc/opencv-doc/examples/data";
const IMAGES: usize = 24;
const BENCH_APT_PACKAGES: [&str; 2] = ["python3-torch", "python3-torchvision"];
/// onnxruntime-web's files the page loads: the wasm-only bundle and its SIMD build.
const ORT_FILES: [&str; 8] = [
    "ort.wasm.min.mjs",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
    // The WebGPU execution provider's bundle and builds.
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.jsep.mjs",
    "ort-wasm-simd-threaded.jsep.wasm",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
];
/// TensorFlow.js's core, WebGPU and wasm backends (UMD builds the page loads as scripts), and
/// the wasm backend's three builds (plain, SIMD, threaded SIMD: it picks one).
const TFJS_FILES: [(&str, &str); 6] = [
    ("@tensorflow/tfjs-core", "tf-core.es2017.min.js"),
    ("@tensorflow/tfjs-backend-webgpu", "tf-backend-webgpu.es2017.min.js"),
    ("@tensorflow/tfjs-backend-wasm", "tf-backend-wasm.es2017.min.js"),
    ("@tensorflow/tfjs-backend-wasm", "tfjs-backend-wasm.wasm"),
    ("@tensorflow/tfjs-backend-wasm", "tfjs-backend-wasm-simd.wasm"),
    ("@tensorflow/tfjs-backend-wasm", "tfjs-backend-wasm-threaded-simd.wasm"),
];
const PYTHON: &str = "/usr/bin/python3";
/// Width of the table's label column.
const LABEL: usize = 50;

pub fn run_all() -> Result {
    build_tools(crate::setup::CliBuild::Alone)?;
    test_tools()?;
    apt_packages(&BENCH_APT_PACKAGES)?;
    let bench_js = root().join("tests/bench");
    let installed = ["onnxruntime-web", "@tensorflow/tfjs-backend-webgpu", "@tensorflow/tfjs-backend-wasm"];
    if installed.iter().any(|package| !bench_js.join("node_modules").join(package).exists()) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&bench_js))?;
    }
    let dir = root().join(".cache/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    prepare_inputs(&dir)?;
    let weights = model_dir().join(format!("{BENCH_ARCHITECTURE}.safetensors"));
    run(Command::new(PYTHON)
        .arg("tests/bench/torch_reference.py")
        .arg("export-onnx")
        .arg("--weights")
        .arg(&weights)
        .arg("--out")
        .arg(dir.join(onnx_file())))?;

    let graft_native = native_graft(&dir)?;
    let pytorch = native_pytorch(&dir, &weights, 1)?;
    let cores = graft_native["fast_all_cores"]["threads"].as_u64().unwrap_or(1);
    let pytorch_all_cores = if cores > 1 { native_pytorch(&dir, &weights, cores)? } else { Value::Null };
    let browser = browser(&dir)?;
    let native_diff = max_abs_diff(&dir.join("graft_native_features.f32"), &dir.join("torch_features.f32"))?;
    let mut results = json!({
        "images": IMAGES,
        "browser": browser,
        "native": {
            "graft": graft_native,
            "pytorch": pytorch,
            "pytorch_all_cores": pytorch_all_cores,
            "max_abs_feature_diff": native_diff,
        },
    });
    results["ratios"] = ratios(&results);
    let out = dir.join("results.json");
    std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap_or_default())
        .map_err(|e| format!("could not write {}: {e}", out.display()))?;
    println!("{}", table(&results));
    println!("{}", webgpu_table(&results));
    println!("All figures: {}", out.display());
    Ok(())
}

fn graft_bench() -> PathBuf {
    crate::cache::target_dir().join("release/graft-bench")
}

fn prepare_inputs(dir: &Path) -> Result {
    run(crate::cache::cargo().args(["build", "--release", "--package", "graft", "--bin", "graft-bench"]))?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(PHOTOS_DIR)
        .map_err(|e| format!("could not list {PHOTOS_DIR}: {e}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")))
        .collect();
    photos.sort();
    photos.truncate(IMAGES + 16);
    run(Command::new(graft_bench())
        .args(["prepare", "--count", &IMAGES.to_string(), "--out"])
        .arg(dir.join("inputs.f32"))
        .args(&photos))
}

fn native_graft(dir: &Path) -> Result<Value> {
    run(Command::new(graft_bench())
        .args(["native", "--inputs"])
        .arg(dir.join("inputs.f32"))
        .arg("--model-dir")
        .arg(model_dir())
        .arg("--out")
        .arg(dir.join("graft_native.json"))
        .arg("--features")
        .arg(dir.join("graft_native_features.f32"))
        .stdout(Stdio::null()))?;
    read_json(&dir.join("graft_native.json"))
}

/// PyTorch on `threads` threads; its features go to `torch_features.f32` (one thread) or
/// `torch_features_<threads>.f32`.
fn native_pytorch(dir: &Path, weights: &Path, threads: u64) -> Result<Value> {
    let suffix = if threads == 1 { String::new() } else { format!("_{threads}") };
    let report = dir.join(format!("torch{suffix}.json"));
    run(Command::new(PYTHON)
        .args(["tests/bench/torch_reference.py", "time", "--threads", &threads.to_string(), "--weights"])
        .arg(weights)
        .arg("--inputs")
        .arg(dir.join("inputs.f32"))
        .arg("--out")
        .arg(&report)
        .arg("--features")
        .arg(dir.join(format!("torch_features{suffix}.f32")))
        .stdout(Stdio::null()))?;
    read_json(&report)
}

/// Builds the benchmark page (Graft's bench module, onnxruntime-web, the ONNX file, the
/// inputs, the weights), serves it and drives it in headless Chromium.
/// The ONNX export of the backbone's features, for onnxruntime-web.
fn onnx_file() -> String {
    format!("{BENCH_ARCHITECTURE}_features.onnx")
}

fn browser(dir: &Path) -> Result<Value> {
    let site = dir.join("site");
    if site.exists() {
        std::fs::remove_dir_all(&site).map_err(|e| format!("could not clear {}: {e}", site.display()))?;
    }
    for flavour in [WasmFlavour::Simd128, WasmFlavour::Relaxed] {
        let bench = Binary { name: "graft-bench-web", bindgen_target: "web", page: false };
        wasm_binaries(&[bench], &site, flavour)?;
    }
    copy_dir(&root().join("tests/bench/page"), &site)?;
    copy_dir(&model_dir(), &site.join("models"))?;
    let ort_dist = root().join("tests/bench/node_modules/onnxruntime-web/dist");
    std::fs::create_dir_all(site.join("ort")).map_err(|e| e.to_string())?;
    for file in ORT_FILES {
        copy(&ort_dist.join(file), &site.join("ort").join(file))?;
    }
    std::fs::create_dir_all(site.join("tfjs")).map_err(|e| e.to_string())?;
    for (package, file) in TFJS_FILES {
        let dist = root().join("tests/bench/node_modules").join(package).join("dist");
        copy(&dist.join(file), &site.join("tfjs").join(file))?;
    }
    for file in ["inputs.f32".to_string(), onnx_file()] {
        copy(&dir.join(&file), &site.join(&file))?;
    }
    // What the page loads: the backbone's manifest and the ONNX export of the same weights.
    let config = json!({ "manifest": format!("models/{BENCH_ARCHITECTURE}.json"), "onnx": onnx_file() });
    std::fs::write(site.join("bench-config.json"), config.to_string()).map_err(|e| e.to_string())?;
    let port = crate::serve::spawn(site)?;
    let url = format!("http://127.0.0.1:{port}/");
    eprintln!("xtask: $ node tests/bench/browser.mjs {url}");
    let out = Command::new("node")
        .arg("tests/bench/browser.mjs")
        .arg(&url)
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start node: {e}"))?;
    if !out.status.success() {
        return Err(format!("the browser benchmark failed ({})", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the browser benchmark printed no JSON: {e}"))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn max_abs_diff(a: &Path, b: &Path) -> Result<f64> {
    let (a, b) = (read_f32(a)?, read_f32(b)?);
    if a.len() != b.len() || a.is_empty() {
        return Err(format!("feature files differ in length: {} and {}", a.len(), b.len()));
    }
    Ok(a.iter().zip(&b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max))
}

/// `median / p90` of a timing summary.
fn cell(timing: &Value) -> String {
    match (timing["median_ms"].as_f64(), timing["p90_ms"].as_f64()) {
        (Some(m), Some(p)) => format!("{m:7.1} / {p:5.1}"),
        _ => "      -        ".into(),
    }
}

fn ratio(ours: &Value, reference: &Value) -> String {
    match (ours["median_ms"].as_f64(), reference["median_ms"].as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:7.2}x        ", a / b),
        _ => "      -        ".into(),
    }
}

/// The benchmark page's results: the one-thread page, then the threaded ones.
fn browser_pages(results: &Value) -> impl Iterator<Item = &Value> {
    let browser = &results["browser"];
    std::iter::once(&browser["single"]).chain(browser["threaded"].as_array().into_iter().flatten())
}

/// The batch-8 median of every engine `name` ran, over the one-thread page and the threaded
/// ones, with the thread count of each: `(threads, ms)`.
fn browser_batch8(results: &Value, name: &str) -> Vec<(u64, f64)> {
    browser_pages(results)
        .filter_map(|page| {
            let engine = &page[name];
            let threads = engine["threads"].as_u64().or(engine["workers"].as_u64())?;
            Some((threads, engine["batch8"]["median_ms"].as_f64()?))
        })
        .collect()
}

/// The headline ratios at batch 8 (below 1: Graft is faster): Graft's best wasm build on one
/// thread against the faster of onnxruntime-web and TensorFlow.js on one thread; Graft's pool
/// on every core against the fastest of the two at any thread count; Graft natively against
/// PyTorch, one thread each. `null` where a figure is missing.
pub fn ratios(results: &Value) -> Value {
    let median = |timing: &Value| timing["batch8"]["median_ms"].as_f64();
    let single = &results["browser"]["single"];
    let graft_web = [&single["graft_relaxed"], &single["graft"]].into_iter().find_map(median);
    let quotient = |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
    let peers: Vec<(u64, f64)> = ["ort", "tfjs"].iter().flat_map(|name| browser_batch8(results, name)).collect();
    let fastest = |one_thread: bool| {
        peers.iter().filter(|(threads, _)| !one_thread || *threads == 1).map(|(_, ms)| *ms).reduce(f64::min)
    };
    let cores = single["hardware_concurrency"].as_u64().unwrap_or(1);
    let pool_all_cores = browser_batch8(results, "pool").into_iter().find(|(workers, _)| *workers == cores);
    json!({
        "browser_1_thread_b8": quotient(graft_web, fastest(true)),
        "browser_all_cores_b8": quotient(pool_all_cores.map(|(_, ms)| ms), fastest(false)),
        "native_1_thread_b8": quotient(median(&results["native"]["graft"]["fast"]), median(&results["native"]["pytorch"])),
    })
}

/// Rows of the multi-threaded engines of each page: onnxruntime-web, TensorFlow.js's wasm
/// backend and Graft's pool, and the pool against the faster of the two at that count.
fn threaded_rows(results: &Value) -> Vec<String> {
    let mut rows = Vec::new();
    for page in browser_pages(results) {
        let threads = |engine: &Value| engine["threads"].as_u64().unwrap_or(0);
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let (ort, tfjs, pool) = (&page["ort"], &page["tfjs"], &page["pool"]);
        if page.get("graft").is_none() {
            let which = if ort["default_threads"].as_bool() == Some(true) { ", default" } else { "" };
            let n = threads(ort);
            rows.push(row(
                &format!("browser  onnxruntime-web wasm, {n} thread{}{which}", plural(n)),
                &ort["batch1"],
                &ort["batch8"],
            ));
        }
        if tfjs.is_object() {
            let n = threads(tfjs);
            let asked = match tfjs["requested_threads"].as_u64() {
                Some(asked) if asked != n => format!(" (of {asked} asked)"),
                _ => String::new(),
            };
            let label = format!("browser  TensorFlow.js wasm (XNNPACK), {n} thread{}{asked}", plural(n));
            rows.push(row(&label, &tfjs["batch1"], &tfjs["batch8"]));
        }
        if pool.is_object() {
            let n = pool["workers"].as_u64().unwrap_or(0);
            rows.push(row(&format!("browser  Graft pool, {n} worker{}", plural(n)), &Value::Null, &pool["batch8"]));
            let faster =
                [&ort["batch8"], &tfjs["batch8"]].into_iter().filter(|t| t["median_ms"].is_number()).min_by(|a, b| {
                    a["median_ms"].as_f64().unwrap_or(f64::MAX).total_cmp(&b["median_ms"].as_f64().unwrap_or(f64::MAX))
                });
            if let Some(faster) = faster {
                let label = format!("browser  ratio Graft pool / faster peer, {n} thread{}", plural(n));
                rows.push(format!(
                    "{label:<LABEL$} {} {}",
                    ratio(&Value::Null, &Value::Null),
                    ratio(&pool["batch8"], faster)
                ));
            }
            let features = match pool["max_abs_diff_to_one_worker"].as_f64() {
                Some(diff) => format!("max |pool - one worker| = {diff:.1e}"),
                None => format!(
                    "max |pool - onnxruntime-web| = {:.1e}",
                    pool["max_abs_diff_to_ort"].as_f64().unwrap_or(f64::NAN)
                ),
            };
            rows.push(format!(
                "browser  Graft pool of {n}: {:.1} MB of wasm memory, features {features}",
                mb(&pool["pool_memory_bytes"])
            ));
        }
    }
    rows
}

/// The summary table: per-image milliseconds (median / p90) at batch 1 and 8, and ratios.
pub fn table(results: &Value) -> String {
    let single = &results["browser"]["single"];
    let (graft_web, ort, relaxed) = (&single["graft"], &single["ort"], &single["graft_relaxed"]);
    let (graft_native, torch) = (&results["native"]["graft"]["fast"], &results["native"]["pytorch"]);
    let mut rows = vec![
        format!("{:<LABEL$} {:<16} {:<16}", "MobileNetV2 features, ms per image", "batch 1 med/p90", "batch 8 med/p90"),
        row("browser  Graft wasm, 1 thread", &graft_web["batch1"], &graft_web["batch8"]),
        row("browser  onnxruntime-web wasm, 1 thread", &ort["batch1"], &ort["batch8"]),
        format!(
            "{:<LABEL$} {} {}",
            "browser  ratio Graft / onnxruntime-web",
            ratio(&graft_web["batch1"], &ort["batch1"]),
            ratio(&graft_web["batch8"], &ort["batch8"])
        ),
    ];
    if relaxed.is_object() {
        rows.extend([
            row("browser  Graft wasm, relaxed SIMD, 1 thread", &relaxed["batch1"], &relaxed["batch8"]),
            format!(
                "{:<LABEL$} {} {}",
                "browser  ratio Graft relaxed SIMD / onnxruntime-web",
                ratio(&relaxed["batch1"], &ort["batch1"]),
                ratio(&relaxed["batch8"], &ort["batch8"])
            ),
            format!(
                "{:<LABEL$} {} {}",
                "browser  ratio Graft relaxed SIMD / SIMD128",
                ratio(&relaxed["batch1"], &graft_web["batch1"]),
                ratio(&relaxed["batch8"], &graft_web["batch8"])
            ),
        ]);
    }
    rows.extend(threaded_rows(results));
    rows.extend([
        row("browser  Graft, Candle ops (before)", &graft_web["candle_batch1"], &Value::Null),
        row("native   Graft, 1 thread", &graft_native["batch1"], &graft_native["batch8"]),
        row(
            &format!("native   PyTorch {} CPU, 1 thread", torch["version"].as_str().unwrap_or("")),
            &torch["batch1"],
            &torch["batch8"],
        ),
        format!(
            "{:<LABEL$} {} {}",
            "native   ratio Graft / PyTorch",
            ratio(&graft_native["batch1"], &torch["batch1"]),
            ratio(&graft_native["batch8"], &torch["batch8"])
        ),
        row(
            "native   Graft, Candle ops (before; all cores)",
            &results["native"]["graft"]["candle"]["batch1"],
            &Value::Null,
        ),
    ]);
    let (graft_cores, torch_cores) =
        (&results["native"]["graft"]["fast_all_cores"], &results["native"]["pytorch_all_cores"]);
    if torch_cores.is_object() {
        let threads = &torch_cores["threads"];
        rows.extend([
            row(
                &format!("native   Graft, {threads} threads (images in parallel)"),
                &graft_cores["batch1"],
                &graft_cores["batch8"],
            ),
            row(&format!("native   PyTorch CPU, {threads} threads"), &torch_cores["batch1"], &torch_cores["batch8"]),
            format!(
                "{:<LABEL$} {} {}",
                format!("native   ratio Graft / PyTorch, {threads} threads"),
                ratio(&graft_cores["batch1"], &torch_cores["batch1"]),
                ratio(&graft_cores["batch8"], &torch_cores["batch8"])
            ),
        ]);
    }
    rows.extend([
        format!(
            "features: max |Graft - reference| = {:.2e} (browser, vs onnxruntime-web), {:.2e} (native, vs PyTorch)",
            single["max_abs_feature_diff"].as_f64().unwrap_or(f64::NAN),
            results["native"]["max_abs_feature_diff"].as_f64().unwrap_or(f64::NAN)
        ),
        format!(
            "memory: Graft wasm linear memory {:.1} MB after load, {:.1} MB after batch-8 forward; native forward peak (batch 8, heap) {:.1} MB, PyTorch RSS growth {:.1} MB",
            mb(&graft_web["wasm_memory_bytes"]["after_load"]),
            mb(&graft_web["wasm_memory_bytes"]["after_forward"]),
            mb(&results["native"]["graft"]["fast"]["peak_forward_bytes_batch8"]),
            mb(&torch["peak_rss_growth_bytes"]),
        ),
    ]);
    let headline = results["ratios"].as_object().into_iter().flatten();
    let parts: Vec<String> =
        headline.map(|(name, v)| format!("{name} {}", v.as_f64().map_or("-".into(), |v| format!("{v:.2}")))).collect();
    if !parts.is_empty() {
        rows.push(format!("ratios (below 1: Graft faster): {}", parts.join(", ")));
    }
    for (label, profile) in [
        ("browser", &graft_web["profile_ms_per_image"]),
        ("native ", &results["native"]["graft"]["fast"]["profile_ms_per_image"]),
    ] {
        if let Some(kinds) = profile.as_object() {
            let parts: Vec<String> =
                kinds.iter().map(|(k, v)| format!("{k} {:.1}", v.as_f64().unwrap_or(f64::NAN))).collect();
            rows.push(format!("profile {label} Graft, ms per image by unit: {}", parts.join(", ")));
        }
    }
    rows.join("\n")
}

/// The WebGPU section: per-image milliseconds at batch 1, 8 and 32, the first run, and each
/// engine's features against Graft's CPU path; which adapter ran them, and whether it is a
/// software one (then the figures are for correctness, not speed).
pub fn webgpu_table(results: &Value) -> String {
    let webgpu = &results["browser"]["webgpu"];
    let adapter = &webgpu["adapter"];
    let software = adapter["fallback"].as_bool() == Some(true);
    let mut rows = vec![format!(
        "{:<LABEL$} {:<16} {:<16} {:<16} {:>10} {:>9}",
        format!(
            "WebGPU, ms per image ({} {}{})",
            adapter["vendor"].as_str().unwrap_or("?"),
            adapter["architecture"].as_str().unwrap_or("?"),
            if software { ", software adapter: correctness figures, not speed" } else { "" }
        ),
        "batch 1 med/p90",
        "batch 8 med/p90",
        "batch 32 med/p90",
        "first run",
        "max|diff|"
    )];
    let labels = [
        ("graft-webgpu", "browser  Graft WebGPU"),
        ("onnxruntime-web-webgpu", "browser  onnxruntime-web WebGPU EP"),
        ("tfjs-webgpu", "browser  TensorFlow.js WebGPU (fused ops)"),
    ];
    for engine in webgpu["engines"].as_array().into_iter().flatten() {
        let name = engine["engine"].as_str().unwrap_or("");
        let label = labels.iter().find(|(n, _)| *n == name).map_or(name, |(_, l)| l);
        rows.push(gpu_row(label, engine, &engine["max_abs_diff_vs_graft_cpu"]));
    }
    let native = &results["native"]["graft"]["webgpu"];
    match native["unavailable"].as_str() {
        Some(reason) => rows.push(format!("native   Graft wgpu: no adapter ({reason})")),
        None if native.is_object() => {
            rows.push(gpu_row("native   Graft wgpu, Vulkan", native, &native["max_abs_diff_vs_cpu"]));
            rows.push(format!("native   adapter: {}", native["adapter"].as_str().unwrap_or("?")));
        }
        None => {}
    }
    let engines = webgpu["engines"].as_array().cloned().unwrap_or_default();
    let batch8 =
        |name: &str| engines.iter().find(|e| e["engine"] == name).map_or(&Value::Null, |e| &e["batch8"]).clone();
    let graft = batch8("graft-webgpu");
    let peers = [batch8("onnxruntime-web-webgpu"), batch8("tfjs-webgpu")];
    let fastest = peers.iter().filter(|p| p["median_ms"].is_number()).min_by(|a, b| {
        a["median_ms"].as_f64().unwrap_or(f64::MAX).total_cmp(&b["median_ms"].as_f64().unwrap_or(f64::MAX))
    });
    if let Some(fastest) = fastest {
        rows.push(format!(
            "{:<LABEL$} {}",
            "browser  ratio Graft WebGPU / faster peer, batch 8",
            ratio(&graft, fastest).trim_end()
        ));
    }
    rows.join("\n")
}

fn gpu_row(label: &str, engine: &Value, diff: &Value) -> String {
    format!(
        "{label:<LABEL$} {} {} {} {:>7.0} ms {:>9.1e}",
        cell(&engine["batch1"]),
        cell(&engine["batch8"]),
        cell(&engine["batch32"]),
        engine["first_run_ms"].as_f64().unwrap_or(f64::NAN),
        diff.as_f64().unwrap_or(f64::NAN)
    )
}

fn row(label: &str, batch1: &Value, batch8: &Value) -> String {
    format!("{label:<LABEL$} {} {}", cell(batch1), cell(batch8))
}

fn mb(bytes: &Value) -> f64 {
    bytes.as_f64().unwrap_or(f64::NAN) / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_medians_and_their_ratios() {
        let timing = |median: f64| json!({ "median_ms": median, "p90_ms": median + 1.0, "runs": 24 });
        let results = json!({
            "browser": { "single": {
                "hardware_concurrency": 2,
                "graft": { "batch1": timing(30.0), "batch8": timing(20.0) },
                "graft_relaxed": { "batch1": timing(24.0), "batch8": timing(16.0) },
                "ort": { "threads": 1, "batch1": timing(40.0), "batch8": timing(40.0) },
                "tfjs": { "threads": 1, "batch1": timing(35.0), "batch8": timing(32.0) },
                "pool": { "workers": 1, "batch8": timing(17.0), "pool_memory_bytes": 40e6, "max_abs_diff_to_one_worker": 0.0 },
                "max_abs_feature_diff": 1e-5,
            }, "threaded": [
                { "ort": { "threads": 2, "default_threads": true, "batch1": timing(15.0), "batch8": timing(12.0) } },
                { "ort": { "threads": 2, "batch1": timing(16.0), "batch8": timing(13.0) },
                  "tfjs": { "threads": 2, "batch1": timing(18.0), "batch8": timing(16.0) },
                  "pool": { "workers": 2, "batch8": timing(9.0), "pool_memory_bytes": 80e6, "max_abs_diff_to_one_worker": 0.0 } },
            ] },
            "native": {
                "graft": { "fast": { "batch1": timing(10.0), "batch8": timing(9.0) } },
                "pytorch": { "version": "1.13", "batch1": timing(20.0), "batch8": timing(18.0) },
                "max_abs_feature_diff": 2e-5,
            },
        });
        let text = table(&results);
        let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap_or_default().to_string();
        assert!(line("browser  ratio").contains("0.75x") && line("browser  ratio").contains("0.50x"), "{text}");
        assert!(line("native   ratio").contains("0.50x"), "{text}");
        let relaxed = line("browser  ratio Graft relaxed SIMD / SIMD128");
        assert!(relaxed.contains("0.80x"), "{text}");
        assert!(line("browser  ratio Graft relaxed SIMD / onnx").contains("0.40x"), "{text}");
        assert!(line("browser  Graft wasm").contains("30.0 /  31.0"), "{text}");
        assert!(text.contains("1.00e-5") && text.contains("2.00e-5"), "{text}");
        assert!(line("browser  onnxruntime-web wasm, 2 threads, default").contains("15.0 /  16.0"), "{text}");
        assert!(line("browser  TensorFlow.js wasm (XNNPACK), 2 threads").contains("16.0 /  17.0"), "{text}");
        assert!(line("browser  ratio Graft pool / faster peer, 2 threads").contains("0.69x"), "{text}");
        assert!(line("browser  Graft pool of 2").contains("80.0 MB"), "{text}");
        // The relaxed build is Graft's best on one thread here, tfjs the faster peer: 16 / 32;
        // the pool of 2 (every core) against onnxruntime-web's default 2 threads: 9 / 12.
        let expected = json!({ "browser_1_thread_b8": 0.5, "browser_all_cores_b8": 0.75, "native_1_thread_b8": 0.5 });
        assert_eq!(ratios(&results), expected);
    }

    #[test]
    fn webgpu_table_names_the_adapter_and_compares_with_the_faster_peer() {
        let timing = |median: f64| json!({ "median_ms": median, "p90_ms": median + 1.0, "runs": 4 });
        let engine = |name: &str, b8: f64| {
            json!({ "engine": name, "batch1": timing(b8 * 2.0), "batch8": timing(b8), "batch32": timing(b8 / 2.0),
                    "first_run_ms": 900.0, "max_abs_diff_vs_graft_cpu": 3e-6 })
        };
        let results = json!({
            "browser": { "webgpu": {
                "adapter": { "vendor": "google", "architecture": "swiftshader", "fallback": true },
                "engines": [engine("graft-webgpu", 30.0), engine("onnxruntime-web-webgpu", 60.0), engine("tfjs-webgpu", 40.0)],
            } },
            "native": { "graft": { "webgpu": { "adapter": "WebGPU · llvmpipe", "first_run_ms": 50.0,
                "batch1": timing(80.0), "batch8": timing(70.0), "batch32": timing(65.0), "max_abs_diff_vs_cpu": 1e-6 } } },
        });
        let text = webgpu_table(&results);
        let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap_or_default().to_string();
        assert!(text.lines().next().unwrap().contains("google swiftshader, software adapter"), "{text}");
        assert!(
            line("browser  Graft WebGPU").contains("30.0 /  31.0") && line("browser  Graft WebGPU").contains("15.0"),
            "{text}"
        );
        assert!(line("browser  ratio Graft WebGPU").contains("0.75x"), "{text}");
        assert!(line("native   Graft wgpu, Vulkan").contains("65.0"), "{text}");
        assert!(line("native   adapter").contains("llvmpipe"), "{text}");
    }
}
