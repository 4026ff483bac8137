//! Drivers of the small training kernels: `gather.wgsl` (a batch's rows from resident
//! features), `mask.wgsl` (dropout, and the gradient through ReLU and dropout) and
//! `column_sum.wgsl` (a bias's gradient), `reversal.wgsl` (DANN's gradient reversal meeting
//! the label gradient). Twins: Candle's `index_select`, `*` and `sum(0)`, and
//! [`reversal_reference`].

use super::backward::LinearParams;
use super::flag;
use crate::gpu::program::{kernel_params, linear_workgroups, Access, Kernel, KernelCall, Params, ParamsLayout};

pub static GATHER: Kernel = Kernel {
    name: "gather",
    source: include_str!("gather.wgsl"),
    params: ParamsLayout::of::<GatherParams>(),
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub static MASK: Kernel = Kernel {
    name: "mask",
    source: include_str!("mask.wgsl"),
    params: ParamsLayout::of::<LinearParams>(),
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub static COLUMN_SUM: Kernel = Kernel {
    name: "column_sum",
    source: include_str!("column_sum.wgsl"),
    params: ParamsLayout::of::<ColumnSumParams>(),
    bindings: &[Access::Read, Access::ReadWrite],
};

pub static REVERSAL: Kernel = Kernel {
    name: "reversal",
    source: include_str!("reversal.wgsl"),
    params: ParamsLayout::of::<ReversalParams>(),
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

kernel_params! {
    pub struct GatherParams { rows: u32, dim: u32, pad0: u32, pad1: u32 }
}

kernel_params! {
    pub struct ColumnSumParams { rows: u32, columns: u32, pad0: u32, pad1: u32 }
}

kernel_params! {
    pub struct ReversalParams {
        len: u32,
        y_len: u32,
        /// `-lambda`: written before each step, as lambda follows the schedule.
        scale: f32,
        pad: u32,
    }
}

/// `output (rows, dim) = x[indices[r], :]`; `[x, indices, output]`.
pub fn gather<'a>(rows: usize, dim: usize, buffers: [&'a wgpu::Buffer; 3], max_workgroups: u32) -> KernelCall<'a> {
    KernelCall {
        kernel: &GATHER,
        constants: Vec::new(),
        params: Params::of(GatherParams { rows: rows as u32, dim: dim as u32, pad0: 0, pad1: 0 }),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups((rows * dim) as u64, 64, max_workgroups),
    }
}

/// `x *= mask`, and with `relu_out`, zero where the ReLU's output is not positive;
/// `[mask, relu_out (any buffer when None), x]`.
pub fn mask<'a>(len: usize, relu_of: bool, buffers: [&'a wgpu::Buffer; 3], max_workgroups: u32) -> KernelCall<'a> {
    KernelCall {
        kernel: &MASK,
        constants: vec![("RELU_OF", flag(relu_of))],
        params: Params::of(LinearParams::new(len)),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(len as u64, 64, max_workgroups),
    }
}

/// `output (columns) = sum over rows of x (rows, columns)`; `[x, output]`.
pub fn column_sum<'a>(rows: usize, columns: usize, buffers: [&'a wgpu::Buffer; 2]) -> KernelCall<'a> {
    KernelCall {
        kernel: &COLUMN_SUM,
        constants: Vec::new(),
        params: Params::of(ColumnSumParams { rows: rows as u32, columns: columns as u32, pad0: 0, pad1: 0 }),
        buffers: buffers.to_vec(),
        workgroups: [columns.div_ceil(64) as u32, 1, 1],
    }
}

/// `x = (scale x + y) * [relu_out > 0]`, `y` only over its first `y_len` entries:
/// `[y, relu_out, x]` (see `reversal.wgsl`).
pub fn reversal<'a>(
    (len, y_len): (usize, usize),
    scale: f32,
    buffers: [&'a wgpu::Buffer; 3],
    max_workgroups: u32,
) -> KernelCall<'a> {
    KernelCall {
        kernel: &REVERSAL,
        constants: Vec::new(),
        params: Params::of(reversal_params((len, y_len), scale)),
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(len as u64, 64, max_workgroups),
    }
}

/// The params of [`reversal`], to write again when `scale` changes.
pub fn reversal_params((len, y_len): (usize, usize), scale: f32) -> ReversalParams {
    ReversalParams { len: len as u32, y_len: y_len as u32, scale, pad: 0 }
}

/// The CPU twin of [`reversal`]: `x` updated in place.
pub fn reversal_reference(x: &mut [f32], y: &[f32], relu_out: &[f32], scale: f32) {
    for (i, value) in x.iter_mut().enumerate() {
        let sum = scale * *value + y.get(i).copied().unwrap_or(0.0);
        *value = if relu_out[i] > 0.0 { sum } else { 0.0 };
    }
}
