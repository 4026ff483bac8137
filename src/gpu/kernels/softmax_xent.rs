//! Driver of `softmax_xent.wgsl`: mean softmax cross-entropy with its gradient and each row's
//! loss and prediction. Twin: `candle_nn::loss::cross_entropy` (the CPU trainer).

use crate::gpu::program::{kernel_params, linear_workgroups, Access, Kernel, KernelCall, Params, ParamsLayout};

pub static KERNEL: Kernel = Kernel {
    name: "softmax_xent",
    source: include_str!("softmax_xent.wgsl"),
    params: ParamsLayout::of::<SoftmaxXentParams>(),
    bindings: &[Access::Read, Access::Read, Access::ReadWrite, Access::ReadWrite],
};

kernel_params! {
    pub struct SoftmaxXentParams {
        rows: u32,
        classes: u32,
        /// `1 / rows`: the mean's scale.
        scale: f32,
        pad: u32,
    }
}

/// `[logits (B, C), labels (B), grad (B, C), per_row (B, 2)]`; the gradient is of the mean
/// over the `rows` of the batch.
pub fn call<'a>(rows: usize, classes: usize, buffers: [&'a wgpu::Buffer; 4], max_workgroups: u32) -> KernelCall<'a> {
    let scale = 1.0 / rows.max(1) as f32;
    KernelCall {
        kernel: &KERNEL,
        constants: Vec::new(),
        params: Params::of(SoftmaxXentParams { rows: rows as u32, classes: classes as u32, scale, pad: 0 }),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(rows as u64, 64, max_workgroups),
    }
}
