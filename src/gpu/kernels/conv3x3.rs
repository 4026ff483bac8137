//! Driver of `conv3x3.wgsl`: a full 3x3 convolution (the stem) as an implicit-im2col product,
//! bias and ReLU6 fused. Twin: [`crate::kernels::im2col`] then [`crate::kernels::pointwise`].

use super::{flag, tile_workgroups};
use crate::gpu::program::{kernel_params, Access, Kernel, KernelCall, Params, ParamsLayout};
use crate::kernels::depthwise::DepthwiseShape;

pub static KERNEL: Kernel = Kernel {
    name: "conv3x3",
    source: include_str!("conv3x3.wgsl"),
    params: ParamsLayout::of::<Conv3x3Params>(),
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

kernel_params! {
    /// The implicit product `(rows, k) x (k, n)` and the image it reads.
    pub struct Conv3x3Params {
        rows: u32,
        k: u32,
        n: u32,
        in_height: u32,
        in_width: u32,
        in_channels: u32,
        out_height: u32,
        out_width: u32,
    }
}

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
        params: Params::of(Conv3x3Params {
            rows: rows as u32,
            k: (9 * shape.channels) as u32,
            n: out_channels as u32,
            in_height: shape.height as u32,
            in_width: shape.width as u32,
            in_channels: shape.channels as u32,
            out_height: out_height as u32,
            out_width: out_width as u32,
        }),
        buffers: vec![input, weight, bias, output],
        workgroups: tile_workgroups(rows, out_channels),
    }
}
