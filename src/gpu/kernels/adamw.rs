//! Driver of `adamw.wgsl`: one AdamW step in place. Twin: `candle_nn::AdamW` (the CPU trainer).

use crate::gpu::program::{linear_workgroups, Access, Kernel, KernelCall, Params};

pub static KERNEL: Kernel = Kernel {
    name: "adamw",
    source: include_str!("adamw.wgsl"),
    bindings: &[Access::Read, Access::ReadWrite, Access::ReadWrite, Access::ReadWrite],
};

/// Candle's `ParamsAdamW` defaults for the moments.
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;

/// The parameters of step `t` (from 1) on `len` values.
pub fn params(len: usize, learning_rate: f64, weight_decay: f64, t: u32) -> Params {
    let scale_m = 1.0 / (1.0 - BETA1.powi(t as i32));
    let scale_v = 1.0 / (1.0 - BETA2.powi(t as i32));
    let bits = |v: f64| (v as f32).to_bits();
    [
        len as u32,
        bits(learning_rate),
        bits(weight_decay),
        bits(BETA1),
        bits(BETA2),
        bits(EPS),
        bits(scale_m),
        bits(scale_v),
    ]
}

/// `[grad, theta, m, v]`, all of `len` values.
pub fn call<'a>(params: Params, buffers: [&'a wgpu::Buffer; 4], max_workgroups: u32) -> KernelCall<'a> {
    KernelCall {
        kernel: &KERNEL,
        constants: Vec::new(),
        params,
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(params[0] as u64, 64, max_workgroups),
    }
}
