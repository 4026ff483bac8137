//! Driver of `adamw.wgsl`: one AdamW step in place. Twin: `candle_nn::AdamW` (the CPU trainer).

use crate::gpu::program::{kernel_params, linear_workgroups, Access, Kernel, KernelCall, Params, ParamsLayout};

pub static KERNEL: Kernel = Kernel {
    name: "adamw",
    source: include_str!("adamw.wgsl"),
    params: ParamsLayout::of::<AdamwParams>(),
    bindings: &[Access::Read, Access::ReadWrite, Access::ReadWrite, Access::ReadWrite],
};

/// Candle's `ParamsAdamW` defaults for the moments.
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;

kernel_params! {
    /// One step on `len` values; `scale_m` and `scale_v` are the bias corrections of step `t`.
    pub struct AdamwParams { len: u32, lr: f32, weight_decay: f32, beta1: f32, beta2: f32, eps: f32, scale_m: f32, scale_v: f32 }
}

/// The parameters of step `t` (from 1) on `len` values.
pub fn params(len: usize, learning_rate: f64, weight_decay: f64, t: u32) -> AdamwParams {
    AdamwParams {
        len: len as u32,
        lr: learning_rate as f32,
        weight_decay: weight_decay as f32,
        beta1: BETA1 as f32,
        beta2: BETA2 as f32,
        eps: EPS as f32,
        scale_m: (1.0 / (1.0 - BETA1.powi(t as i32))) as f32,
        scale_v: (1.0 / (1.0 - BETA2.powi(t as i32))) as f32,
    }
}

/// `[grad, theta, m, v]`, all of `len` values.
pub fn call<'a>(params: AdamwParams, buffers: [&'a wgpu::Buffer; 4], max_workgroups: u32) -> KernelCall<'a> {
    KernelCall {
        kernel: &KERNEL,
        constants: Vec::new(),
        params: Params::of(params),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(params.len as u64, 64, max_workgroups),
    }
}
