//! The GPU cases of `common/gpu_cases.rs` in headless Chromium on WebGPU (SwiftShader there,
//! `--enable-unsafe-webgpu`), run in a dedicated worker as the app runs the engine
//! (`cargo xtask test wasm`). Without a WebGPU adapter they print why they skip, unless the
//! build had `GRAFT_REQUIRE_GPU` set (CI), where that is a failure.
#![cfg(target_arch = "wasm32")]

#[path = "common/gpu_cases.rs"]
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

gpu_cases!(
    pointwise_matches_its_cpu_twin,
    depthwise_matches_its_cpu_twin,
    stem_convolution_matches_im2col_and_product,
    mean_matches_pooled,
    matmul_matches_a_triple_loop_with_every_transpose,
    backbone_features_and_boundary_activations_match_the_cpu_executor,
    a_batch_over_the_buffer_limit_is_cut_into_chunks,
    a_lost_device_hands_the_work_in_flight_to_the_cpu,
    a_plan_without_a_kernel_stays_on_the_cpu_and_says_why,
    a_shader_that_does_not_compile_is_a_typed_error,
    a_device_the_adapter_refuses_is_a_typed_error,
    explicit_cpu_and_auto_choices_are_honoured,
    head_training_on_the_gpu_matches_the_cpu_trainer,
    a_device_lost_mid_training_continues_on_the_cpu_from_the_best_weights,
);
