//! Driver of `conv3x3.wgsl`: a full 3x3 convolution (the stem) as an implicit-im2col product,
//! bias and ReLU6 fused. Twin: [`crate::kernels::im2col`] then [`crate::kernels::pointwise`].

use super::{flag, tile_workgroups};
use crate::gpu::program::{Access, Kernel, KernelCall};
use crate::kernels::depthwise::DepthwiseShape;

pub static KERNEL: Kernel = Kernel {
    name: "conv3x3",
    source: include_str!("conv3x3.wgsl"),
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

pub fn supports(shape: DepthwiseShape, out_channels: usize) -> bool {
    out_channels.is_multiple_of(4) && shape.window.kernel == 3 && shape.window.is_supported()
}

/// `input (batch, H, W, C_in)` -> `output (batch, H', W', C_out)`; `weight ((ky, kx, C_in), C_out)`.
/// `shape.channels` is `C_in`.
pub fn call<'a>(
    shape: DepthwiseShape,
    batch: usize,
    out_channels: usize,
    relu6: bool,
    [input, weight, bias, output]: [&'a wgpu::Buffer; 4],
) -> KernelCall<'a> {
    let (out_height, out_width) = (shape.out_height(), shape.out_width());
    let rows = batch * out_height * out_width;
    KernelCall {
        kernel: &KERNEL,
        constants: vec![
            ("STRIDE", shape.window.stride as f64),
            ("PAD", shape.window.pad as f64),
            ("RELU6", flag(relu6)),
        ],
        params: [
            rows as u32,
            (9 * shape.channels) as u32,
            out_channels as u32,
            shape.height as u32,
            shape.width as u32,
            shape.channels as u32,
            out_height as u32,
            out_width as u32,
        ],
        buffers: vec![input, weight, bias, output],
        workgroups: tile_workgroups(rows, out_channels),
    }
}
