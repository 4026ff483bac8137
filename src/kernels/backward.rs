//! Training kernels of the unfrozen blocks (fine-tuning), NHWC like the inference kernels:
//! the forward products with many threads, and the backward passes of the pointwise and
//! depthwise convolutions.
//!
//! Pointwise, `y = x W + b`, `x: (P, C_in)`, `W: (C_in, C_out)`, `dy: (P, C_out)`:
//! `dx = dy W^T`, `dW = x^T dy`, `db = sum_p dy[p]` (the three products in `gemm`).
//! Depthwise k x k, stride `s`, `p` before ([`super::Window`]), one image `x: (H, W, C)`,
//! `taps: (k*k, C)`: `dx[s*i + ky - p, s*j + kx - p, c] += taps[ky*k + kx, c] * dy[i, j, c]`,
//! `dtaps[ky*k + kx, c] += dy[i, j, c] * x[s*i + ky - p, s*j + kx - p, c]` (padding skipped).
//! ReLU6's gradient is a mask of the output: it passes where `0 < y < 6`.
//! Each kernel has a naive twin and an equality test below.

use super::depthwise::DepthwiseShape;
use super::pointwise::PointwiseShape;

/// A row-major matrix operand of [`product`], or its transpose.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub data: &'a [f32],
    /// Rows and columns as stored.
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl Operand<'_> {
    /// `(rows, cols, row stride, column stride)` of the operand as used.
    fn view(&self) -> (usize, usize, isize, isize) {
        if self.transposed {
            (self.cols, self.rows, 1, self.cols as isize)
        } else {
            (self.rows, self.cols, self.cols as isize, 1)
        }
    }
}

/// `out (m x n) = lhs (m x k) rhs (k x n)` with either operand transposed, on every core
/// natively. Panics on operand sizes that disagree (a programming error).
pub fn product(lhs: Operand, rhs: Operand, out: &mut [f32]) {
    let (m, k, lhs_rs, lhs_cs) = lhs.view();
    let (k2, n, rhs_rs, rhs_cs) = rhs.view();
    assert!(k == k2 && lhs.data.len() == lhs.rows * lhs.cols && rhs.data.len() == rhs.rows * rhs.cols);
    assert_eq!(out.len(), m * n, "product output");
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "wasm32")]
    let parallelism = gemm::Parallelism::None;
    #[cfg(not(target_arch = "wasm32"))]
    let parallelism = gemm::Parallelism::Rayon(0);
    // SAFETY: the operands hold rows*cols elements each and `out` m*n (asserted above); the
    // strides describe exactly those row-major matrices (or their transposes), and `out` is
    // borrowed uniquely. `read_dst` is false, so `out`'s previous values are not read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Zeroes `grad` where the ReLU6 output `y` is clamped (`y <= 0` or `y >= 6`).
pub fn relu6_mask(grad: &mut [f32], y: &[f32]) {
    assert_eq!(grad.len(), y.len(), "relu6 mask");
    for (g, &v) in grad.iter_mut().zip(y) {
        if v <= 0.0 || v >= 6.0 {
            *g = 0.0;
        }
    }
}

/// Gradients of a pointwise convolution: `(dx (P, C_in), dW (C_in, C_out), db (C_out))`.
pub fn pointwise_backward(
    shape: PointwiseShape,
    input: &[f32],
    weight: &[f32],
    grad_out: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let PointwiseShape { pixels, in_channels, out_channels } = shape;
    let dy = Operand { data: grad_out, rows: pixels, cols: out_channels, transposed: false };
    let mut dx = vec![0f32; pixels * in_channels];
    let w_t = Operand { data: weight, rows: in_channels, cols: out_channels, transposed: true };
    product(dy, w_t, &mut dx);
    let mut dw = vec![0f32; in_channels * out_channels];
    let x_t = Operand { data: input, rows: pixels, cols: in_channels, transposed: true };
    product(x_t, dy, &mut dw);
    let mut db = vec![0f32; out_channels];
    for row in grad_out.chunks_exact(out_channels) {
        db.iter_mut().zip(row).for_each(|(acc, g)| *acc += g);
    }
    (dx, dw, db)
}

/// Gradients of a depthwise k x k convolution of one image: adds to `dx (H, W, C)` and
/// `dtaps (k*k, C)`.
pub fn depthwise_backward(
    shape: DepthwiseShape,
    input: &[f32],
    taps: &[f32],
    grad_out: &[f32],
    dx: &mut [f32],
    dtaps: &mut [f32],
) {
    let DepthwiseShape { height, width, channels: c, window } = shape;
    let (out_h, out_w, k) = (shape.out_height(), shape.out_width(), window.kernel);
    assert!(input.len() == height * width * c && dx.len() == input.len(), "depthwise backward input");
    assert!(taps.len() == window.taps() * c && dtaps.len() == taps.len(), "depthwise backward taps");
    assert_eq!(grad_out.len(), out_h * out_w * c, "depthwise backward gradient");
    for i in 0..out_h {
        for j in 0..out_w {
            let g = &grad_out[(i * out_w + j) * c..][..c];
            for ky in 0..k {
                let Some(y) = window.source(i, ky, height) else { continue };
                for kx in 0..k {
                    let Some(x) = window.source(j, kx, width) else { continue };
                    let at = (y * width + x) * c;
                    let tap = ky * k + kx;
                    let (w, dw) = (&taps[tap * c..][..c], &mut dtaps[tap * c..][..c]);
                    let (xin, dxin) = (&input[at..at + c], &mut dx[at..at + c]);
                    for ch in 0..c {
                        dxin[ch] += w[ch] * g[ch];
                        dw[ch] += g[ch] * xin[ch];
                    }
                }
            }
        }
    }
}

/// Twin of [`depthwise_backward`]: the same sums, tap by tap over whole channels.
pub fn depthwise_backward_reference(
    shape: DepthwiseShape,
    input: &[f32],
    taps: &[f32],
    grad_out: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let DepthwiseShape { height, width, channels: c, window } = shape;
    let (out_h, out_w, k) = (shape.out_height(), shape.out_width(), window.kernel);
    let (stride, pad) = (window.stride as isize, window.pad as isize);
    let (mut dx, mut dtaps) = (vec![0f32; input.len()], vec![0f32; taps.len()]);
    for ch in 0..c {
        for tap in 0..window.taps() {
            let (ky, kx) = ((tap / k) as isize, (tap % k) as isize);
            for i in 0..out_h as isize {
                for j in 0..out_w as isize {
                    let (y, x) = (i * stride + ky - pad, j * stride + kx - pad);
                    if y < 0 || x < 0 || y >= height as isize || x >= width as isize {
                        continue;
                    }
                    let at = (y as usize * width + x as usize) * c + ch;
                    let g = grad_out[(i as usize * out_w + j as usize) * c + ch];
                    dx[at] += taps[tap * c + ch] * g;
                    dtaps[tap * c + ch] += g * input[at];
                }
            }
        }
    }
    (dx, dtaps)
}

/// Twin of [`pointwise_backward`]: three loops per product.
pub fn pointwise_backward_reference(
    shape: PointwiseShape,
    input: &[f32],
    weight: &[f32],
    grad_out: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let PointwiseShape { pixels, in_channels: ci, out_channels: co } = shape;
    let (mut dx, mut dw, mut db) = (vec![0f32; pixels * ci], vec![0f32; ci * co], vec![0f32; co]);
    for p in 0..pixels {
        for o in 0..co {
            let g = grad_out[p * co + o];
            db[o] += g;
            for i in 0..ci {
                dx[p * ci + i] += g * weight[i * co + o];
                dw[i * co + o] += input[p * ci + i] * g;
            }
        }
    }
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize, a: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * a).sin() * 1.5).collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    }

    #[test]
    fn pointwise_gradients_match_the_loops() {
        for (pixels, ci, co) in [(1, 1, 1), (7, 3, 5), (49, 16, 24), (200, 33, 70)] {
            let shape = PointwiseShape { pixels, in_channels: ci, out_channels: co };
            let (x, w, g) = (wave(pixels * ci, 0.37), wave(ci * co, 0.11), wave(pixels * co, 0.53));
            let ours = pointwise_backward(shape, &x, &w, &g);
            let twin = pointwise_backward_reference(shape, &x, &w, &g);
            close(&ours.0, &twin.0, "dx");
            close(&ours.1, &twin.1, "dw");
            close(&ours.2, &twin.2, "db");
        }
    }

    #[test]
    fn depthwise_gradients_match_the_loops() {
        for (height, width, channels) in [(1, 1, 1), (5, 7, 3), (8, 8, 17), (14, 14, 32), (7, 6, 5)] {
            for window in crate::kernels::Window::all_used() {
                let shape = DepthwiseShape { height, width, channels, window };
                let n_out = shape.out_height() * shape.out_width() * channels;
                let x = wave(height * width * channels, 0.29);
                let (taps, g) = (wave(window.taps() * channels, 0.7), wave(n_out, 0.41));
                let (mut dx, mut dtaps) = (vec![0f32; x.len()], vec![0f32; taps.len()]);
                depthwise_backward(shape, &x, &taps, &g, &mut dx, &mut dtaps);
                let twin = depthwise_backward_reference(shape, &x, &taps, &g);
                close(&dx, &twin.0, "dx");
                close(&dtaps, &twin.1, "dtaps");
            }
        }
    }

    #[test]
    fn the_relu6_mask_passes_only_the_linear_part() {
        let mut grad = vec![1.0; 5];
        relu6_mask(&mut grad, &[-1.0, 0.0, 3.0, 6.0, 7.0]);
        assert_eq!(grad, [0.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn products_take_either_operand_transposed() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 x 3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 x 2
        let mut out = vec![0.0; 4];
        let op = |data, rows, cols, transposed| Operand { data, rows, cols, transposed };
        product(op(&a, 2, 3, false), op(&b, 3, 2, false), &mut out);
        assert_eq!(out, [4.0, 5.0, 10.0, 11.0]);
        let mut out = vec![0.0; 9];
        product(op(&a, 2, 3, true), op(&a, 2, 3, false), &mut out); // a^T a: 3 x 3
        assert_eq!(out, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
    }
}
