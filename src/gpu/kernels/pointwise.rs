//! Driver of `pointwise.wgsl`: a 1x1 convolution (or any product with a bias) over `pixels`
//! rows, bias, residual and ReLU6 fused. Twin: [`crate::kernels::pointwise`].

use super::{flag, tile_workgroups};
use crate::gpu::program::{kernel_params, Access, Kernel, KernelCall, Params, ParamsLayout};
use crate::kernels::pointwise::PointwiseShape;

pub static KERNEL: Kernel = Kernel {
    name: "pointwise",
    source: include_str!("pointwise.wgsl"),
    params: ParamsLayout::of::<PointwiseParams>(),
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

kernel_params! {
    /// A `(rows, k) x (k, n)` product.
    pub struct PointwiseParams { rows: u32, k: u32, n: u32, pad: u32 }
}

/// The buffers of one pointwise call.
pub struct PointwiseBuffers<'a> {
    pub input: &'a wgpu::Buffer,
    pub weight: &'a wgpu::Buffer,
    pub bias: &'a wgpu::Buffer,
    /// Added before the activation; `None` binds `unused` in its place.
    pub residual: Option<&'a wgpu::Buffer>,
    pub unused: &'a wgpu::Buffer,
    pub output: &'a wgpu::Buffer,
}

/// Whether the kernel takes this shape (it reads channels as `vec4`).
pub fn supports(shape: PointwiseShape) -> bool {
    shape.in_channels.is_multiple_of(4) && shape.out_channels.is_multiple_of(4)
}

pub fn call<'a>(shape: PointwiseShape, relu6: bool, buffers: PointwiseBuffers<'a>) -> KernelCall<'a> {
    let PointwiseShape { pixels, in_channels, out_channels } = shape;
    KernelCall {
        kernel: &KERNEL,
        constants: vec![("RELU6", flag(relu6)), ("RESIDUAL", flag(buffers.residual.is_some()))],
        params: Params::of(PointwiseParams {
            rows: pixels as u32,
            k: in_channels as u32,
            n: out_channels as u32,
            pad: 0,
        }),
        buffers: vec![
            buffers.input,
            buffers.weight,
            buffers.bias,
            buffers.residual.unwrap_or(buffers.unused),
            buffers.output,
        ],
        workgroups: tile_workgroups(pixels, out_channels),
    }
}
