//! `cargo xtask test [lint] [native [NAME...]] [wasm [GROUP...]] [e2e [FILE...]]`: every suite
//! by default; names after a suite narrow it (README, "Developing").
//! - lint:   `cargo fmt --check`, then clippy with `-D warnings` natively and for wasm32
//! - native: `cargo test` of the engine (parity with PyTorch included) and of xtask, then the
//!   parity tests again on gemm's portable kernels; integer overflow checks on in every crate
//! - wasm:   the engine's wasm tests in headless Chromium (wasm-bindgen-test-runner + chromedriver),
//!   and the GPU cases on WebGPU (SwiftShader) in a dedicated worker
//! - e2e:    the built site in headless Chromium driven by Playwright (node's test runner)
//!
//! Each suite's time is printed after it (`xtask: times: ...`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::WasmFlavour;
use crate::setup::{build_tools, test_tools, wasm_bindgen_test_runner, CliBuild};
use crate::util::{self, root, Result};

/// The suites, in the order they run by default.
const SUITES: [&str; 4] = ["lint", "native", "wasm", "e2e"];

/// A suite and the names that narrow it (none: all of it).
struct Suite<'a> {
    name: &'a str,
    only: Vec<&'a str>,
}

fn run_suites(suites: &[Suite]) -> Result {
    let mut times = Vec::new();
    let started = Instant::now();
    // The test tools (apt, npm, rustup) mostly wait on the network and the disk: beside the build.
    std::thread::scope(|scope| {
        let tools = scope.spawn(|| util::timed("test tools", test_tools));
        let built = build_tools(CliBuild::WithTests);
        crate::setup::joined(tools)?;
        built
    })?;
    times.push(("set-up".to_string(), started.elapsed()));
    for suite in suites {
        let started = Instant::now();
        let outcome = match suite.name {
            "lint" if suite.only.is_empty() => lint(),
            "lint" => Err("the lint suite takes no names".into()),
            "native" => native(&suite.only),
            "wasm" => wasm(&suite.only),
            _ => e2e(&suite.only, suites.iter().any(|s| s.name == "native" && s.only.is_empty())),
        };
        times.push((suite.name.to_string(), started.elapsed()));
        util::print_step_times();
        print_times(&times);
        outcome?;
    }
    let names: Vec<&str> = suites.iter().map(|s| s.name).collect();
    eprintln!("xtask: all test suites passed: {}", names.join(", "));
    Ok(())
}

/// Each step's wall time so far (set-up, then each suite), so that a slow one shows.
fn print_times(times: &[(String, Duration)]) {
    let parts: Vec<String> = times.iter().map(|(name, time)| format!("{name} {:.0} s", time.as_secs_f64())).collect();
    let total: Duration = times.iter().map(|(_, time)| *time).sum();
    eprintln!("xtask: times: {} (total {:.1} min)", parts.join(", "), total.as_secs_f64() / 60.0);
}

pub fn run(args: &[String]) -> Result {
    run_suites(&parse_suites(args)?)
}

/// `lint native gpu e2e pool` -> lint, native (gpu), e2e (pool).
fn parse_suites(args: &[String]) -> Result<Vec<Suite<'_>>> {
    if args.is_empty() {
        return Ok(SUITES.iter().map(|&name| Suite { name, only: Vec::new() }).collect());
    }
    let mut suites: Vec<Suite> = Vec::new();
    for arg in args.iter().map(String::as_str) {
        match (SUITES.contains(&arg), suites.last_mut()) {
            (true, _) => suites.push(Suite { name: arg, only: Vec::new() }),
            (false, Some(suite)) => suite.only.push(arg),
            (false, None) => return Err(format!("unknown test suite {arg} ({})", SUITES.join(", "))),
        }
    }
    Ok(suites)
}

/// Formatting and lints: every crate and target natively, and the crates that ship as wasm32
/// (the engine and the web app) for wasm32, where other code is compiled (SIMD128 kernels).
/// Clippy runs in the release profile with the settings of the builds that follow (natively
/// the tests' overflow checks, for wasm32 the site's), so that the proc macros and build
/// scripts it compiles are theirs: in the dev profile every proc macro was compiled at
/// opt-level 3 (`[profile.dev.package."*"]`), twice (natively and beside wasm32), which was
/// most of a cold lint's 465 s on 2 cores.
fn lint() -> Result {
    util::run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    let clippy = ["clippy", "--release", "--all-targets"];
    let deny = ["--", "-D", "warnings"];
    util::run(crate::cache::checked_cargo().args(clippy).arg("--workspace").args(deny))?;
    let wasm32 = ["--package", "graft", "--package", "graft-web", "--target", "wasm32-unknown-unknown"];
    util::run(crate::cache::cargo().args(clippy).args(wasm32).args(deny))
}

/// The tests that compare numbers with PyTorch's.
const PARITY_TESTS: [&str; 4] = ["finetune_parity", "backbone_parity", "dann_parity", "head_training"];

// Tests build in release so they share compiled dependencies with `import-weights` (native)
// and with the site (wasm): Candle compiles once per target instead of twice. The parity
// tests run twice: on the product kernels gemm picks for this processor (AVX2 with FMA on
// x86-64), then on its portable ones (`GRAFT_GEMM_KERNEL`, vendor/gemm-f32/GRAFT.md), which
// round differently, so that a bound another processor's rounding would break fails here. The
// second run starts the first run's executables again: gemm reads the variable when it runs,
// and a `cargo test` of fewer packages would build the engine again with other features.
// Every native test runs with integer overflow checks on (`cache::checked_cargo`).
fn native(only: &[&str]) -> Result {
    if !only.is_empty() {
        return only.iter().try_for_each(|name| native_one(name));
    }
    util::run(&mut native_tests())?;
    eprintln!("xtask: the parity tests again on gemm's portable kernels (GRAFT_GEMM_KERNEL=portable)");
    for executable in test_executables(&PARITY_TESTS)? {
        let mut rerun = Command::new(executable);
        // What cargo would name: this tree's package folder (the binary may come from another clone).
        rerun.env("CARGO_MANIFEST_DIR", root()).env("GRAFT_REQUIRE_FIXTURES", "1").env("GRAFT_GEMM_KERNEL", "portable");
        util::run(with_gpu(&mut rerun))?;
    }
    Ok(())
}

/// `cargo test` of the engine, the page's crate and xtask in release, with the GPU required
/// (which a GPU case reads when it is compiled, too), overflow checks on.
pub(crate) fn native_tests() -> Command {
    let mut cargo = crate::cache::checked_cargo();
    with_gpu(&mut cargo)
        .args(["test", "--release", "--package", "graft", "--package", "graft-web", "--package", "xtask"])
        .env("GRAFT_REQUIRE_FIXTURES", "1");
    cargo
}

/// The executables [`native_tests`] built for the test targets `names`, from cargo's messages.
fn test_executables(names: &[&str]) -> Result<Vec<std::path::PathBuf>> {
    let listed = util::output(native_tests().args(["--no-run", "--message-format=json"]))
        .ok_or("`cargo test --no-run` failed: the test executables could not be listed")?;
    let executables: Vec<std::path::PathBuf> = listed
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["kind"][0] == "test")
        .filter(|message| names.contains(&message["target"]["name"].as_str().unwrap_or_default()))
        .filter_map(|message| message["executable"].as_str().map(std::path::PathBuf::from))
        .collect();
    if executables.len() != names.len() {
        return Err(format!("found {} of the test executables {}", executables.len(), names.join(", ")));
    }
    Ok(executables)
}

/// One test target of the engine (`tests/<name>.rs`), or else the tests of every crate whose
/// name contains `name`.
fn native_one(name: &str) -> Result {
    if root().join("tests").join(format!("{name}.rs")).is_file() {
        let mut cargo = crate::cache::checked_cargo();
        with_gpu(&mut cargo).env("GRAFT_REQUIRE_FIXTURES", "1");
        util::run(cargo.args(["test", "--release", "--package", "graft", "--test", name]))
    } else {
        util::run(native_tests().args(["--", name]))
    }
}

/// The set-up installed an adapter (lavapipe natively; Chromium's SwiftShader with
/// `--enable-unsafe-webgpu`, see webdriver.json), so a GPU test that finds none fails instead of
/// skipping. Mesa wants a runtime folder, which a CI shell may not have. The CLI the tests run
/// reads this tree's models (its default is the folder of the tree that compiled it).
fn with_gpu(command: &mut Command) -> &mut Command {
    command.env("GRAFT_REQUIRE_GPU", "1").env("GRAFT_MODEL_DIR", root().join("static/models"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        command.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    command
}

/// The engine's wasm tests (`tests/wasm.rs`, on the page) and its GPU cases on WebGPU
/// (`tests/wasm_gpu.rs`, in a dedicated worker), one runner per group of cases so that none
/// nears the runner's limit; then the page's tests again built with relaxed SIMD (the kernels'
/// twin tests on the fused multiply-add of `graft-worker-relaxed`).
fn wasm(only: &[&str]) -> Result {
    let groups = gpu_case_groups()?;
    if let Some(unknown) = only.iter().find(|name| **name != "page" && !groups.iter().any(|g| g == *name)) {
        return Err(format!("no wasm test group {unknown} (page, {})", groups.join(", ")));
    }
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    if wanted("page") {
        util::timed("wasm page tests", || util::run(wasm_tests(WasmFlavour::Simd128).args(["--test", "wasm"])))?;
    }
    for group in groups.iter().filter(|group| wanted(group)) {
        // The runner names a test by its path within the test crate: `kernels::pointwise_...`.
        let filter = format!("{group}::");
        let listed =
            util::output(wasm_tests(WasmFlavour::Simd128).args(["--test", "wasm_gpu", "--", "--list", &filter]));
        let cases = listed.as_deref().unwrap_or_default().lines().filter(|l| l.ends_with(": test")).count();
        if cases == 0 {
            return Err(format!(
                "the wasm GPU group {group} lists no test (the runner's filter {filter} matched none)"
            ));
        }
        util::timed(&format!("wasm GPU cases {group} ({cases})"), || {
            util::run(wasm_tests(WasmFlavour::Simd128).args(["--test", "wasm_gpu", "--", "--nocapture", &filter]))
        })?;
    }
    if !wanted("page") {
        return Ok(());
    }
    util::timed("wasm page tests (relaxed SIMD)", || {
        util::run(wasm_tests(WasmFlavour::Relaxed).args(["--test", "wasm"]).env("GRAFT_EXPECT_RELAXED_SIMD", "1"))
    })
}

/// The groups of `every_gpu_case!` (`$each!(group: ...)` lines in `tests/common/gpu_cases.rs`).
fn gpu_case_groups() -> Result<Vec<String>> {
    let path = root().join("tests/common/gpu_cases.rs");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    let groups: Vec<String> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("$each!(")?.strip_suffix(':').map(str::to_string))
        .collect();
    if groups.is_empty() {
        return Err(format!("no `$each!(group:` line in {}", path.display()));
    }
    Ok(groups)
}

/// The runner's limit for one run in Chromium: 4.5 times the slowest measured (the EfficientNet
/// fine-tuning case on SwiftShader, 88.6 s on 2 cores in a whole run at three epochs of 21
/// samples; 32 s alone now; ARCHITECTURE.md).
const WASM_TEST_TIMEOUT_S: &str = "400";

/// `cargo test` of the engine for wasm32. The page's crate is selected too, though it has no
/// wasm test: cargo then resolves every shared dependency with the features the site's build
/// gives it (checked with `cargo tree -e features`), so that the site reuses the tests' build of
/// Candle, wgpu, web-sys and the rest instead of compiling them again for each flavour
/// (wasm-bindgen's `default` feature alone, which the page's dependencies ask for, differed).
fn wasm_tests(flavour: WasmFlavour) -> Command {
    let mut cargo = crate::cache::cargo();
    let packages = ["--package", "graft", "--package", "graft-web"];
    with_gpu(flavour.configure(&mut cargo))
        .args(["test", "--release", "--target", "wasm32-unknown-unknown"])
        .args(packages)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", wasm_bindgen_test_runner())
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", WASM_TEST_TIMEOUT_S);
    cargo
}

/// The built site, served, driven by the e2e tests; `graft predict` (the CLI, built here)
/// runs a model the page exported.
/// Every file of `tests/e2e/`, or the named ones (`pool` is `tests/e2e/pool.test.mjs`).
/// After the whole native suite, the CLI is the one its `cargo test` built: a `cargo build` of
/// it resolves the dependencies' features without the tests' and compiled the engine again
/// (35 s of a fresh clone's run).
fn e2e(only: &[&str], after_native: bool) -> Result {
    let files: Vec<String> = only.iter().map(|name| format!("tests/e2e/{name}.test.mjs")).collect();
    if let Some(missing) = files.iter().find(|file| !root().join(file).is_file()) {
        return Err(format!("no e2e test file {missing}"));
    }
    crate::build::site()?;
    if after_native {
        util::run(native_tests().arg("--no-run"))?;
    } else {
        util::run(crate::cache::checked_cargo().args(["build", "--release", "--package", "graft", "--bin", "graft"]))?;
    }
    let port = crate::serve::spawn(root().join("pkg"))?;
    let mut node = Command::new("node");
    node.args(["--test", "--test-concurrency=1"]);
    match files.is_empty() {
        true => node.arg("tests/e2e/"),
        false => node.args(&files),
    };
    util::run(
        node.env("GRAFT_URL", format!("http://127.0.0.1:{port}/"))
            .env("GRAFT_MODEL_DIR", root().join("static/models"))
            .env("GRAFT_BIN", crate::cache::target_dir().join("release/graft")),
    )
}
