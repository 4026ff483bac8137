//! `cargo xtask <command>`: everything beyond `cargo build`.
//!
//! - `setup`  install what building and testing need (wasm target, pinned tools into `.tools/`,
//!   Chromium and the reference packages via apt-get, the weights into `static/models/`)
//! - `build`  build the static site into `pkg/`
//! - `serve`  set up, build and serve `pkg/` (prints the URL; `--port`, default 8080)
//! - `test`   set up, build and run every test: native, wasm in headless Chromium, end to end
//! - `bench`  Graft's backbone against onnxruntime-web (browser) and PyTorch (native)

mod bench;
mod build;
mod serve;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::build_tools().and_then(|()| setup::test_tools()),
        Some("build") => setup::build_tools().and_then(|()| build::site()),
        Some("serve") => serve::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run_all(),
        _ => {
            eprintln!("usage: cargo xtask <setup|build|serve [--port N]|test [native|wasm|e2e]...|bench>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
