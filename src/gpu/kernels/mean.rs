//! Driver of `mean.wgsl`: the global spatial mean, `(B, H, W, C) -> (B, C)`.
//! Twin: [`crate::exec::FeatureMap::pooled`].

use crate::gpu::program::{kernel_params, linear_workgroups, Access, Kernel, KernelCall, Params, ParamsLayout};

pub static KERNEL: Kernel = Kernel {
    name: "mean",
    source: include_str!("mean.wgsl"),
    params: ParamsLayout::of::<MeanParams>(),
    bindings: &[Access::Read, Access::ReadWrite],
};

kernel_params! {
    pub struct MeanParams { batch: u32, pixels: u32, channels4: u32, pad: u32 }
}

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
        params: Params::of(MeanParams {
            batch: batch as u32,
            pixels: pixels as u32,
            channels4: (channels / 4) as u32,
            pad: 0,
        }),
        buffers: vec![input, output],
        workgroups: linear_workgroups((batch * channels / 4) as u64, 64, max_workgroups),
    }
}
