//! Driver of `mean.wgsl`: the global spatial mean, `(B, H, W, C) -> (B, C)`.
//! Twin: [`crate::exec::FeatureMap::pooled`].

use crate::gpu::program::{linear_workgroups, Access, Kernel, KernelCall};

pub static KERNEL: Kernel =
    Kernel { name: "mean", source: include_str!("mean.wgsl"), bindings: &[Access::Read, Access::ReadWrite] };

pub fn call<'a>(
    batch: usize,
    pixels: usize,
    channels: usize,
    [input, output]: [&'a wgpu::Buffer; 2],
    max_workgroups: u32,
) -> KernelCall<'a> {
    KernelCall {
        kernel: &KERNEL,
        constants: Vec::new(),
        params: [batch as u32, pixels as u32, (channels / 4) as u32, 0, 0, 0, 0, 0],
        buffers: vec![input, output],
        workgroups: linear_workgroups((batch * channels / 4) as u64, 64, max_workgroups),
    }
}
