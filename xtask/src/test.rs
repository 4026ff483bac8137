//! `cargo xtask test [lint] [native] [wasm] [e2e]`: every suite by default.
//! - lint:   `cargo fmt --check`, then clippy with `-D warnings` natively and for wasm32
//! - native: `cargo test` of the engine (parity with PyTorch included) and of xtask, then the
//!   parity tests again on gemm's portable kernels, and the hostile-input property tests with
//!   overflow checks on
//! - wasm:   the engine's wasm tests in headless Chromium (wasm-bindgen-test-runner + chromedriver),
//!   and the GPU cases on WebGPU (SwiftShader) in a dedicated worker
//! - e2e:    the built site in headless Chromium driven by Playwright (node's test runner)
//!
//! Each suite's time is printed after it (`xtask: times: ...`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::WasmFlavour;
use crate::setup::{build_tools, test_tools, wasm_bindgen_test_runner};
use crate::util::{self, root, Result};

fn run_suites(suites: &[&str]) -> Result {
    let mut times = Vec::new();
    let started = Instant::now();
    build_tools()?;
    test_tools()?;
    times.push(("set-up".to_string(), started.elapsed()));
    for suite in suites {
        let started = Instant::now();
        let outcome = match *suite {
            "lint" => lint(),
            "native" => native(),
            "wasm" => wasm(),
            "e2e" => e2e(),
            other => return Err(format!("unknown test suite {other} (lint, native, wasm, e2e)")),
        };
        times.push((suite.to_string(), started.elapsed()));
        print_times(&times);
        outcome?;
    }
    eprintln!("xtask: all test suites passed: {}", suites.join(", "));
    Ok(())
}

/// Each step's wall time so far (set-up, then each suite), so that a slow one shows.
fn print_times(times: &[(String, Duration)]) {
    let parts: Vec<String> = times.iter().map(|(name, time)| format!("{name} {:.0} s", time.as_secs_f64())).collect();
    let total: Duration = times.iter().map(|(_, time)| *time).sum();
    eprintln!("xtask: times: {} (total {:.1} min)", parts.join(", "), total.as_secs_f64() / 60.0);
}

pub fn run(args: &[String]) -> Result {
    let suites: Vec<&str> =
        if args.is_empty() { vec!["lint", "native", "wasm", "e2e"] } else { args.iter().map(String::as_str).collect() };
    run_suites(&suites)
}

/// Formatting and lints: every crate and target natively, and the crates that ship as wasm32
/// (the engine and the web app) for wasm32, where other code is compiled (SIMD128 kernels).
fn lint() -> Result {
    util::run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    util::run(Command::new("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    util::run(Command::new("cargo").args([
        "clippy",
        "--package",
        "graft",
        "--package",
        "graft-web",
        "--all-targets",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))
}

/// The tests that compare numbers with PyTorch's.
const PARITY_TESTS: [&str; 4] = ["finetune_parity", "backbone_parity", "dann_parity", "head_training"];
/// The property tests of what a hostile file reaches, run again with overflow checks on.
const HOSTILE_TESTS: [&str; 2] = ["hostile_inputs", "project_file"];

// Tests build in release so they share compiled dependencies with `import-weights` (native)
// and with the site (wasm): Candle compiles once per target instead of twice. The parity
// tests run twice: on the product kernels gemm picks for this processor (AVX2 with FMA on
// x86-64), then on its portable ones (`GRAFT_GEMM_KERNEL`, vendor/gemm-f32/GRAFT.md), which
// round differently, so that a bound another processor's rounding would break fails here.
// The hostile-input tests run once more with integer overflow checks on (profile `hostile`).
fn native() -> Result {
    let tests = ["test", "--release", "--package", "graft", "--package", "graft-web", "--package", "xtask"];
    util::run(with_gpu(&mut Command::new("cargo")).args(tests).env("GRAFT_REQUIRE_FIXTURES", "1"))?;
    eprintln!("xtask: the parity tests again on gemm's portable kernels (GRAFT_GEMM_KERNEL=portable)");
    let mut parity = Command::new("cargo");
    parity.args(["test", "--release", "--package", "graft"]);
    for test in PARITY_TESTS {
        parity.args(["--test", test]);
    }
    util::run(parity.env("GRAFT_REQUIRE_FIXTURES", "1").env("GRAFT_GEMM_KERNEL", "portable"))?;
    eprintln!("xtask: the hostile-input property tests with overflow checks on (profile hostile)");
    let mut hostile = Command::new("cargo");
    hostile.args(["test", "--profile", "hostile", "--package", "graft"]);
    for test in HOSTILE_TESTS {
        hostile.args(["--test", test]);
    }
    util::run(&mut hostile)
}

/// The set-up installed an adapter (lavapipe natively; Chromium's SwiftShader with
/// `--enable-unsafe-webgpu`, see webdriver.json), so a GPU test that finds none fails instead of
/// skipping. Mesa wants a runtime folder, which a CI shell may not have.
fn with_gpu(command: &mut Command) -> &mut Command {
    command.env("GRAFT_REQUIRE_GPU", "1");
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        command.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    command
}

/// The engine's wasm tests (`tests/wasm.rs`, on the page) and its GPU cases on WebGPU
/// (`tests/wasm_gpu.rs`, in a dedicated worker); then the page's tests again built with relaxed
/// SIMD (the kernels' twin tests on the fused multiply-add of `graft-worker-relaxed`).
fn wasm() -> Result {
    util::run(wasm_tests(WasmFlavour::Simd128).args(["--test", "wasm", "--test", "wasm_gpu"]))?;
    util::run(wasm_tests(WasmFlavour::Relaxed).args(["--test", "wasm"]).env("GRAFT_EXPECT_RELAXED_SIMD", "1"))
}

fn wasm_tests(flavour: WasmFlavour) -> Command {
    let mut cargo = Command::new("cargo");
    with_gpu(flavour.configure(&mut cargo))
        .args(["test", "--release", "--package", "graft", "--target", "wasm32-unknown-unknown"])
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", wasm_bindgen_test_runner())
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300");
    cargo
}

/// The built site, served, driven by the e2e tests; `graft predict` (the CLI, built here)
/// runs a model the page exported.
fn e2e() -> Result {
    crate::build::site()?;
    util::run(Command::new("cargo").args(["build", "--release", "--package", "graft", "--bin", "graft"]))?;
    let port = crate::serve::spawn(root().join("pkg"))?;
    util::run(
        Command::new("node")
            .args(["--test", "--test-concurrency=1", "tests/e2e/"])
            .env("GRAFT_URL", format!("http://127.0.0.1:{port}/"))
            .env("GRAFT_BIN", root().join("target/release/graft")),
    )
}
