//! The WGSL kernels, each beside its driver: the override constants and parameters a dispatch
//! needs, and its workgroup count. Drivers only describe calls ([`KernelCall`]); recording and
//! running them is [`super::program`]'s. Every kernel has a CPU twin and a parity test
//! (`tests/gpu.rs`).
//!
//! Inference (NHWC activations, channel counts multiples of 4, read as `vec4`):
//! [`pointwise`], [`depthwise`], [`conv3x3`], [`mean`]. Training (any shape, row-major):
//! [`matmul`], [`softmax_xent`], [`elementwise`], [`adamw`], and the unfrozen blocks' [`backward`].

pub mod adamw;
pub mod backward;
pub mod conv3x3;
pub mod depthwise;
pub mod elementwise;
pub mod matmul;
pub mod mean;
pub mod pointwise;
pub mod softmax_xent;

/// Workgroups of the 32x32-tile product kernels for a `rows x columns` output.
pub(crate) fn tile_workgroups(rows: usize, columns: usize) -> [u32; 3] {
    [columns.div_ceil(32) as u32, rows.div_ceil(32) as u32, 1]
}

/// `true`/`false` as a pipeline-overridable constant.
pub(crate) fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}
