//! Drivers of the small training kernels: `gather.wgsl` (a batch's rows from resident
//! features), `mask.wgsl` (dropout, and the gradient through ReLU and dropout) and
//! `column_sum.wgsl` (a bias's gradient). Twins: Candle's `index_select`, `*` and `sum(0)`.

use super::flag;
use crate::gpu::program::{linear_workgroups, Access, Kernel, KernelCall};

pub static GATHER: Kernel = Kernel {
    name: "gather",
    source: include_str!("gather.wgsl"),
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub static MASK: Kernel = Kernel {
    name: "mask",
    source: include_str!("mask.wgsl"),
    bindings: &[Access::Read, Access::Read, Access::ReadWrite],
};

pub static COLUMN_SUM: Kernel = Kernel {
    name: "column_sum",
    source: include_str!("column_sum.wgsl"),
    bindings: &[Access::Read, Access::ReadWrite],
};

/// `output (rows, dim) = x[indices[r], :]`; `[x, indices, output]`.
pub fn gather<'a>(rows: usize, dim: usize, buffers: [&'a wgpu::Buffer; 3], max_workgroups: u32) -> KernelCall<'a> {
    KernelCall {
        kernel: &GATHER,
        constants: Vec::new(),
        params: [rows as u32, dim as u32, 0, 0, 0, 0, 0, 0],
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
        params: [len as u32, 0, 0, 0, 0, 0, 0, 0],
        buffers: buffers.to_vec(),
        workgroups: linear_workgroups(len as u64, 64, max_workgroups),
    }
}

/// `output (columns) = sum over rows of x (rows, columns)`; `[x, output]`.
pub fn column_sum<'a>(rows: usize, columns: usize, buffers: [&'a wgpu::Buffer; 2]) -> KernelCall<'a> {
    KernelCall {
        kernel: &COLUMN_SUM,
        constants: Vec::new(),
        params: [rows as u32, columns as u32, 0, 0, 0, 0, 0, 0],
        buffers: buffers.to_vec(),
        workgroups: [columns.div_ceil(64) as u32, 1, 1],
    }
}
