//! Driver of `matmul.wgsl`: `out = op(a) op(b) [+ bias] [ReLU | ReLU6]` for training, any shape.
//! Twin: a triple loop ([`matmul_reference`]) and Candle's matmul (the CPU trainer).

use super::{flag, tile_workgroups};
use crate::gpu::program::{kernel_params, Access, Kernel, KernelCall, Params, ParamsLayout};

pub static KERNEL: Kernel = Kernel {
    name: "matmul",
    source: include_str!("matmul.wgsl"),
    params: ParamsLayout::of::<MatmulParams>(),
    bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

kernel_params! {
    pub struct MatmulParams { m: u32, n: u32, k: u32, pad: u32 }
}

/// `(M, N, K)` of the product, and how its operands are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// `a` is stored `(K, M)`.
    pub trans_a: bool,
    /// `b` is stored `(N, K)`.
    pub trans_b: bool,
}

/// What follows the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epilogue {
    pub bias: bool,
    pub relu: bool,
    /// Clamp to `[0, 6]` (a pointwise conv of an unfrozen block).
    pub relu6: bool,
}

/// `[a, b, bias, output]`; `bias` is any buffer when the epilogue has none.
pub fn call<'a>(shape: MatmulShape, epilogue: Epilogue, buffers: [&'a wgpu::Buffer; 4]) -> KernelCall<'a> {
    KernelCall {
        kernel: &KERNEL,
        constants: vec![
            ("TRANS_A", flag(shape.trans_a)),
            ("TRANS_B", flag(shape.trans_b)),
            ("BIAS", flag(epilogue.bias)),
            ("RELU", flag(epilogue.relu)),
            ("RELU6", flag(epilogue.relu6)),
        ],
        params: Params::of(MatmulParams { m: shape.m as u32, n: shape.n as u32, k: shape.k as u32, pad: 0 }),
        buffers: buffers.to_vec(),
        workgroups: tile_workgroups(shape.m, shape.n),
    }
}

/// The twin: a plain triple loop in f64.
pub fn matmul_reference(shape: MatmulShape, epilogue: Epilogue, a: &[f32], b: &[f32], bias: &[f32]) -> Vec<f32> {
    let MatmulShape { m, n, k, trans_a, trans_b } = shape;
    let mut out = vec![0f32; m * n];
    for row in 0..m {
        for col in 0..n {
            let mut acc = if epilogue.bias { bias[col] as f64 } else { 0.0 };
            for i in 0..k {
                let x = if trans_a { a[i * m + row] } else { a[row * k + i] };
                let y = if trans_b { b[col * k + i] } else { b[i * n + col] };
                acc += x as f64 * y as f64;
            }
            if epilogue.relu {
                acc = acc.max(0.0);
            }
            if epilogue.relu6 {
                acc = acc.clamp(0.0, 6.0);
            }
            out[row * n + col] = acc as f32;
        }
    }
    out
}
