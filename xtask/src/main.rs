//! `cargo xtask <command>`: everything beyond `cargo build`.
//!
//! - `setup`  install what building and testing need (wasm target, pinned tools into the cache,
//!   Chromium and the reference packages via apt-get, the weights into `static/models/`)
//! - `build`  build the static site into `pkg/`
//! - `serve`  set up, build and serve `pkg/` (prints the URL; `--port`, default 8080)
//! - `test`   set up, build and run every test: native, wasm in headless Chromium, end to end
//! - `bench`  Graft's backbone against onnxruntime-web (browser) and PyTorch (native)
//! - `clean-cache`  remove the cache every clone shares (`~/.cache/graft`, see `cache.rs`)

mod bench;
mod build;
mod cache;
mod serve;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    if command == Some("clean-cache") {
        return exit_code(cache::clean());
    }
    if let Err(message) = cache::prepare_target() {
        return exit_code(Err(message));
    }
    let result = match command {
        Some("setup") => setup::build_tools(setup::CliBuild::Alone).and_then(|()| setup::test_tools()),
        Some("build") => build::tools_and_site(),
        Some("serve") => serve::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run_all(),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|build|serve [--port N]|test [lint|native|wasm|e2e]...|bench|clean-cache>"
            );
            return ExitCode::from(2);
        }
    };
    exit_code(result)
}

fn exit_code(result: util::Result) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
