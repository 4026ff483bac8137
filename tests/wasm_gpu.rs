//! The GPU cases of `common/gpu_cases.rs` in headless Chromium on WebGPU (SwiftShader there,
//! `--enable-unsafe-webgpu`), run in a dedicated worker as the app runs the engine
//! (`cargo xtask test wasm`, one runner per group of cases, each case's time printed). Without a WebGPU adapter they print why they skip, unless the
//! build had `GRAFT_REQUIRE_GPU` set (CI), where that is a failure.
#![cfg(target_arch = "wasm32")]

#[path = "common/gpu_cases.rs"]
#[macro_use]
mod cases;
#[path = "common/backbone.rs"]
mod random;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Runs a shared case on a fresh context, or skips it (see [`cases::gpu`]), and logs its time
/// (the runner shows it with `--nocapture`).
macro_rules! gpu_cases {
    ($group:ident: $($name:ident),* $(,)?) => {
        mod $group {
            use super::*;
            $(
                #[wasm_bindgen_test]
                async fn $name() {
                    let started = js_sys::Date::now();
                    if let Some(context) = cases::gpu().await {
                        cases::$name(context).await;
                    }
                    let seconds = (js_sys::Date::now() - started) / 1000.0;
                    console_log!("case time: {}::{} {seconds:.1} s", stringify!($group), stringify!($name));
                }
            )*
        }
    };
}

every_gpu_case!(gpu_cases);
