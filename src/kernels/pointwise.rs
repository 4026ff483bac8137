//! Pointwise (1x1) convolution as one matrix product, with bias, residual and ReLU6 fused.
//!
//! `out[p, o] = act(bias[o] + residual[p, o] + sum_i input[p, i] * weight[i, o])`
//! `input: (P, C_in)`, `weight: (C_in, C_out)`, `bias: (C_out)`, `residual, out: (P, C_out)`,
//! P = pixels of all images, NHWC. Rows go in bands of about 64K outputs so that the
//! bias/residual fill and the ReLU6 pass touch memory the product just wrote (cache).
//!
//! The product: natively the `gemm` crate (runtime-dispatched AVX2/AVX-512/NEON). On wasm32
//! our own register tile, 4 rows x 8 columns of accumulators (`out[r, c..c+8] += in[r, i] *
//! weight[i, c..c+8]` over i, relaxed SIMD's fused multiply-add where built with it), with
//! direct calls only: gemm picks its microkernel through a table of function pointers, and
//! Chromium's speculative inlining of that `call_indirect` deoptimises whenever an edge tile
//! calls another kernel, leaving a worker in baseline code at 2.8x the time (measured in the
//! bench's pool: 56.5 against 20.4 ms per image; `--js-flags=--no-wasm-deopt` restores it).

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
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
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn matmul_accumulate(m: usize, k: usize, n: usize, lhs: &[f32], rhs: &[f32], out: &mut [f32]) {
    assert!(lhs.len() == m * k && rhs.len() == k * n && out.len() == m * n, "matmul operands");
    tiles::matmul_accumulate(MatmulShape { m, k, n }, lhs, rhs, out);
}

/// The operands' sizes: `lhs (m x k)`, `rhs (k x n)`, `out (m x n)`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Debug, Clone, Copy)]
struct MatmulShape {
    m: usize,
    k: usize,
    n: usize,
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod tiles {
    use core::arch::wasm32::*;

    use super::MatmulShape;
    use crate::kernels::multiply_add;

    /// Rows of one register tile; its columns are two vectors (8).
    const ROWS: usize = 4;
    const COLS: usize = 8;

    /// See [`super::matmul_accumulate`]; the operands' lengths are checked there.
    pub fn matmul_accumulate(shape: MatmulShape, lhs: &[f32], rhs: &[f32], out: &mut [f32]) {
        let MatmulShape { m, k, n } = shape;
        let full_rows = m / ROWS * ROWS;
        let full_cols = n / COLS * COLS;
        // SAFETY (every `tile` call): row + R <= m and col + COLS <= n, so the tile's rows of
        // `lhs` (k values each), its 8 columns of every row of `rhs` and of `out` are in bounds
        // of slices holding m*k, k*n and m*n values.
        // Wide outputs (expand layers): one strip of weights (k x 8) stays in L1 while the rows
        // pass; deep inputs (project layers): four rows of input stay while the weights pass.
        if n >= k {
            for col in (0..full_cols).step_by(COLS) {
                for row in (0..full_rows).step_by(ROWS) {
                    unsafe { tile::<ROWS>(shape, row, col, lhs, rhs, out) };
                }
            }
        } else {
            for row in (0..full_rows).step_by(ROWS) {
                for col in (0..full_cols).step_by(COLS) {
                    unsafe { tile::<ROWS>(shape, row, col, lhs, rhs, out) };
                }
            }
        }
        for row in full_rows..m {
            for col in (0..full_cols).step_by(COLS) {
                unsafe { tile::<1>(shape, row, col, lhs, rhs, out) };
            }
        }
        for row in 0..m {
            for col in full_cols..n {
                let products = (0..k).map(|i| lhs[row * k + i] * rhs[i * n + col]);
                out[row * n + col] += products.sum::<f32>();
            }
        }
    }

    /// `out[row..row+R, col..col+8] += lhs[row..row+R, ..] * rhs[.., col..col+8]`, in 2R
    /// vector accumulators.
    ///
    /// # Safety
    /// `row + R <= m` and `col + 8 <= n` for slices of m*k, k*n and m*n values.
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        shape: MatmulShape,
        row: usize,
        col: usize,
        lhs: &[f32],
        rhs: &[f32],
        out: &mut [f32],
    ) {
        let MatmulShape { k, n, .. } = shape;
        let target = out.as_mut_ptr().add(row * n + col);
        let mut acc = [[f32x4_splat(0.0); 2]; R];
        for (r, pair) in acc.iter_mut().enumerate() {
            let o = target.add(r * n);
            *pair = [v128_load(o as *const v128), v128_load(o.add(4) as *const v128)];
        }
        let a = lhs.as_ptr().add(row * k);
        let mut w = rhs.as_ptr().add(col);
        for i in 0..k {
            let (w0, w1) = (v128_load(w as *const v128), v128_load(w.add(4) as *const v128));
            for (r, pair) in acc.iter_mut().enumerate() {
                let x = f32x4_splat(*a.add(r * k + i));
                *pair = [multiply_add(x, w0, pair[0]), multiply_add(x, w1, pair[1])];
            }
            w = w.add(n);
        }
        for (r, pair) in acc.iter().enumerate() {
            let o = target.add(r * n);
            v128_store(o as *mut v128, pair[0]);
            v128_store(o.add(4) as *mut v128, pair[1]);
        }
    }
}

/// `out += lhs (m x k) * rhs (k x n)`, all row-major and contiguous.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
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
