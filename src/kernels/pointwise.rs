//! Pointwise (1x1) convolution as one matrix product, with bias, residual and ReLU6 fused.
//!
//! `out[p, o] = act(bias[o] + residual[p, o] + sum_i input[p, i] * weight[i, o])`
//! `input: (P, C_in)`, `weight: (C_in, C_out)`, `bias: (C_out)`, `residual, out: (P, C_out)`,
//! P = pixels of all images, NHWC. The product runs in the `gemm` crate (runtime-dispatched
//! AVX2/AVX-512/NEON natively, SIMD128 on wasm32); rows go in bands of about 64K outputs so
//! that the bias/residual fill and the ReLU6 pass touch memory the product just wrote (cache).

use gemm::Parallelism;

use super::relu6_in_place;

/// Outputs per band: 256 KiB of f32, which stays in L2.
const BAND_OUTPUTS: usize = 64 * 1024;

/// Shape of one pointwise convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointwiseShape {
    pub pixels: usize,
    pub in_channels: usize,
    pub out_channels: usize,
}

/// Runs the fused pointwise convolution; see the module header. Panics only on slice
/// lengths that disagree with `shape` (a programming error, checked up front).
pub fn pointwise(
    shape: PointwiseShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
) {
    let PointwiseShape { pixels, in_channels: k, out_channels: n } = shape;
    assert_eq!(input.len(), pixels * k, "pointwise input");
    assert_eq!(weight.len(), k * n, "pointwise weight");
    assert_eq!(bias.len(), n, "pointwise bias");
    assert_eq!(out.len(), pixels * n, "pointwise output");
    if let Some(r) = residual {
        assert_eq!(r.len(), pixels * n, "pointwise residual");
    }
    let band_rows = (BAND_OUTPUTS / n.max(1)).max(1);
    for start in (0..pixels).step_by(band_rows) {
        let rows = band_rows.min(pixels - start);
        let band = &mut out[start * n..(start + rows) * n];
        for (row, out_row) in band.chunks_exact_mut(n).enumerate() {
            out_row.copy_from_slice(bias);
            if let Some(r) = residual {
                let r = &r[(start + row) * n..][..n];
                out_row.iter_mut().zip(r).for_each(|(o, r)| *o += r);
            }
        }
        matmul_accumulate(rows, k, n, &input[start * k..(start + rows) * k], weight, band);
        if relu {
            relu6_in_place(band);
        }
    }
}

/// `out += lhs (m x k) * rhs (k x n)`, all row-major and contiguous.
fn matmul_accumulate(m: usize, k: usize, n: usize, lhs: &[f32], rhs: &[f32], out: &mut [f32]) {
    assert!(lhs.len() == m * k && rhs.len() == k * n && out.len() == m * n, "matmul operands");
    // SAFETY: the three slices hold exactly m*k, k*n and m*n elements (asserted just above),
    // the strides below describe those row-major matrices, and `out` is borrowed uniquely.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// The reference twin: the same maths as three plain loops.
pub fn pointwise_reference(
    shape: PointwiseShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let PointwiseShape { pixels, in_channels: k, out_channels: n } = shape;
    let mut out = vec![0.0; pixels * n];
    for p in 0..pixels {
        for o in 0..n {
            let mut acc = bias[o] as f64;
            for i in 0..k {
                acc += input[p * k + i] as f64 * weight[i * n + o] as f64;
            }
            if let Some(r) = residual {
                acc += r[p * n + o] as f64;
            }
            out[p * n + o] = if relu { super::relu6(acc as f32) } else { acc as f32 };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{max_abs_diff, random_vec};

    #[test]
    fn matches_the_reference_over_shapes() {
        let shapes = [(1, 1, 1), (7, 3, 5), (49, 320, 1280), (3136, 24, 144), (200, 17, 9), (12544, 16, 96)];
        for (seed, (pixels, k, n)) in shapes.into_iter().enumerate() {
            let shape = PointwiseShape { pixels, in_channels: k, out_channels: n };
            let input = random_vec(pixels * k, seed as u64);
            let weight = random_vec(k * n, seed as u64 + 100);
            let bias = random_vec(n, seed as u64 + 200);
            let residual = random_vec(pixels * n, seed as u64 + 300);
            for (res, relu) in [(None, false), (Some(residual.as_slice()), false), (None, true)] {
                let mut out = vec![f32::NAN; pixels * n];
                pointwise(shape, &input, &weight, &bias, res, relu, &mut out);
                let twin = pointwise_reference(shape, &input, &weight, &bias, res, relu);
                let diff = max_abs_diff(&out, &twin);
                assert!(diff < 1e-3 * (k as f32).sqrt(), "{shape:?} relu {relu}: {diff}");
            }
        }
    }
}
