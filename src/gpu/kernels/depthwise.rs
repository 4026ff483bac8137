//! Driver of `depthwise.wgsl`: depthwise 3x3 or 5x5, stride 1 or 2, any padding inside the
//! window, bias and ReLU6 fused, over a batch. Twin: [`crate::kernels::depthwise`].

use crate::gpu::program::{kernel_params, linear_workgroups, Access, Kernel, KernelCall, Params, ParamsLayout};
use crate::kernels::depthwise::DepthwiseShape;

pub static KERNEL: Kernel = Kernel {
    name: "depthwise",
    source: include_str!("depthwise.wgsl"),
    params: ParamsLayout::of::<DepthwiseParams>(),
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

kernel_params! {
    /// A depthwise window over a batch (also the depthwise gradients' parameters).
    pub struct DepthwiseParams {
        batch: u32,
        in_height: u32,
        in_width: u32,
        channels4: u32,
        out_height: u32,
        out_width: u32,
        pad0: u32,
        pad1: u32,
    }
}

impl DepthwiseParams {
    pub fn new(shape: DepthwiseShape, batch: usize) -> Self {
        Self {
            batch: batch as u32,
            in_height: shape.height as u32,
            in_width: shape.width as u32,
            channels4: (shape.channels / 4) as u32,
            out_height: shape.out_height() as u32,
            out_width: shape.out_width() as u32,
            pad0: 0,
            pad1: 0,
        }
    }
}

/// Output columns per thread (the shader's `COLS`).
const COLUMNS_PER_THREAD: usize = 4;

pub fn supports(shape: DepthwiseShape) -> bool {
    shape.channels.is_multiple_of(4) && shape.window.is_supported()
}

/// `input (batch, H, W, C)` -> `output (batch, H', W', C)`; `taps ((ky, kx), C)`.
pub fn call<'a>(
    shape: DepthwiseShape,
    batch: usize,
    [input, taps, bias, output]: [&'a wgpu::Buffer; 4],
    max_workgroups: u32,
) -> KernelCall<'a> {
    let (out_height, out_width) = (shape.out_height(), shape.out_width());
    let threads = batch * out_height * out_width.div_ceil(COLUMNS_PER_THREAD) * (shape.channels / 4);
    KernelCall {
        kernel: &KERNEL,
        constants: window_constants(shape.window),
        params: Params::of(DepthwiseParams::new(shape, batch)),
        buffers: vec![input, taps, bias, output],
        workgroups: linear_workgroups(threads as u64, 64, max_workgroups),
    }
}

/// The pipeline constants of a window (`STRIDE`, `K`, `PAD`), shared by the depthwise kernels.
pub fn window_constants(window: crate::kernels::Window) -> Vec<(&'static str, f64)> {
    vec![("STRIDE", window.stride as f64), ("K", window.kernel as f64), ("PAD", window.pad as f64)]
}
