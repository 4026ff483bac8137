//! The GPU cases of `common/gpu_cases.rs` in headless Chromium on WebGPU (SwiftShader there,
//! `--enable-unsafe-webgpu`), run in a dedicated worker as the app runs the engine
//! (`cargo xtask test wasm`). Without a WebGPU adapter they print why they skip, unless the
//! build had `GRAFT_REQUIRE_GPU` set (CI), where that is a failure.
#![cfg(target_arch = "wasm32")]

#[path = "common/gpu_cases.rs"]
#[macro_use]
mod cases;
#[path = "common/backbone.rs"]
mod random;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Runs a shared case on a fresh context, or skips it (see [`cases::gpu`]).
macro_rules! gpu_cases {
    ($($name:ident),* $(,)?) => {$(
        #[wasm_bindgen_test]
        async fn $name() {
            if let Some(context) = cases::gpu().await {
                cases::$name(context).await;
            }
        }
    )*};
}

every_gpu_case!(gpu_cases);
