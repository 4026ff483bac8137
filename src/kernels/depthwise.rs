//! Depthwise k x k convolution (k = 3 or 5) in NHWC with bias and ReLU6 fused.
//!
//! `out[i, j, c] = relu6(bias[c] + sum_{ky, kx} taps[ky*k + kx, c] * x[s*i + ky - p, s*j + kx - p, c])`
//! `x: (H, W, C)`, zero outside, `p` rows (columns) of padding before ([`Window`]),
//! `taps: (k*k, C)`, stride `s` in {1, 2}, `out: ((H - 1) / s + 1, (W - 1) / s + 1, C)`.
//!
//! Channels are innermost, so each tap is a contiguous multiply-add over C. The kernel walks
//! the channels in lanes of 16 kept in registers across all taps (one load of input and tap
//! per step, one store per output), which the compiler turns into SIMD128 / SSE / AVX.

use super::{relu6, Window};

/// Channels accumulated in registers at once.
const LANES: usize = 16;

/// Shape of one depthwise convolution (one image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseShape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub window: Window,
}

impl DepthwiseShape {
    pub fn out_height(&self) -> usize {
        self.window.out(self.height)
    }

    pub fn out_width(&self) -> usize {
        self.window.out(self.width)
    }
}

/// Most taps of a supported window.
const MAX_TAPS: usize = Window::MAX_KERNEL * Window::MAX_KERNEL;

/// Runs the fused depthwise convolution of one image; see the module header.
pub fn depthwise(shape: DepthwiseShape, input: &[f32], taps: &[f32], bias: &[f32], out: &mut [f32]) {
    let DepthwiseShape { height, width, channels: c, window } = shape;
    assert!(window.is_supported(), "depthwise window {window:?}");
    assert_eq!(input.len(), height * width * c, "depthwise input");
    assert_eq!(taps.len(), window.taps() * c, "depthwise taps");
    assert_eq!(bias.len(), c, "depthwise bias");
    let (out_h, out_w) = (shape.out_height(), shape.out_width());
    assert_eq!(out.len(), out_h * out_w * c, "depthwise output");
    let k = window.kernel;
    let mut neighbours: [&[f32]; MAX_TAPS] = [&[]; MAX_TAPS];
    for i in 0..out_h {
        for j in 0..out_w {
            // The input pixels under the valid taps (padding contributes nothing).
            let mut count = 0;
            let mut tap_index = [0usize; MAX_TAPS];
            for ky in 0..k {
                let Some(y) = window.source(i, ky, height) else { continue };
                for kx in 0..k {
                    let Some(x) = window.source(j, kx, width) else { continue };
                    neighbours[count] = &input[(y * width + x) * c..][..c];
                    tap_index[count] = ky * k + kx;
                    count += 1;
                }
            }
            let pixel_out = &mut out[(i * out_w + j) * c..][..c];
            accumulate_pixel(&neighbours[..count], &tap_index[..count], taps, bias, pixel_out);
        }
    }
}

/// One output pixel: `out = relu6(bias + sum_t taps[t] * neighbours[t])`, lane block by block.
#[inline(always)]
fn accumulate_pixel(neighbours: &[&[f32]], tap_index: &[usize], taps: &[f32], bias: &[f32], out: &mut [f32]) {
    let c = out.len();
    let full = c - c % LANES;
    for start in (0..full).step_by(LANES) {
        accumulate_lanes(neighbours, tap_index, taps, bias, out, start);
    }
    for ch in full..c {
        let mut acc = bias[ch];
        for (x, &t) in neighbours.iter().zip(tap_index) {
            acc += x[ch] * taps[t * c + ch];
        }
        out[ch] = relu6(acc);
    }
}

/// Channels `start..start + LANES` of one output pixel, portable: the compiler vectorises it.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn accumulate_lanes(
    neighbours: &[&[f32]],
    tap_index: &[usize],
    taps: &[f32],
    bias: &[f32],
    out: &mut [f32],
    start: usize,
) {
    let c = out.len();
    let mut acc = [0f32; LANES];
    acc.copy_from_slice(&bias[start..start + LANES]);
    for (x, &t) in neighbours.iter().zip(tap_index) {
        let x = &x[start..start + LANES];
        let w = &taps[t * c + start..][..LANES];
        for l in 0..LANES {
            acc[l] += x[l] * w[l];
        }
    }
    for l in 0..LANES {
        out[start + l] = relu6(acc[l]);
    }
}

/// Channels `start..start + LANES` of one output pixel with SIMD128 intrinsics: LLVM does not
/// vectorise the portable version well for wasm32 (it measured 3.6x slower than natively).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn accumulate_lanes(
    neighbours: &[&[f32]],
    tap_index: &[usize],
    taps: &[f32],
    bias: &[f32],
    out: &mut [f32],
    start: usize,
) {
    use super::multiply_add;
    use core::arch::wasm32::*;
    const VECTORS: usize = LANES / 4;
    let c = out.len();
    assert!(start + LANES <= c && bias.len() == c && taps.len().is_multiple_of(c));
    let rows = taps.len() / c;
    // SAFETY: every pointer below addresses lanes start..start + LANES of a slice of length c
    // (bias, out, each neighbour, each tap row t * c of taps, t < rows), checked above and by
    // the caller; wasm loads and stores need no alignment.
    unsafe {
        let mut acc = [f32x4_splat(0.0); VECTORS];
        for (v, a) in acc.iter_mut().enumerate() {
            *a = v128_load(bias.as_ptr().add(start + 4 * v) as *const v128);
        }
        for (x, &t) in neighbours.iter().zip(tap_index) {
            debug_assert!(x.len() == c && t < rows);
            let x = x.as_ptr().add(start);
            let w = taps.as_ptr().add(t * c + start);
            for (v, a) in acc.iter_mut().enumerate() {
                let (x, w) = (v128_load(x.add(4 * v) as *const v128), v128_load(w.add(4 * v) as *const v128));
                *a = multiply_add(x, w, *a);
            }
        }
        let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
        for (v, a) in acc.iter().enumerate() {
            let clamped = f32x4_pmin(f32x4_pmax(*a, zero), six);
            v128_store(out.as_mut_ptr().add(start + 4 * v) as *mut v128, clamped);
        }
    }
}

/// The reference twin: the textbook loops over outputs, channels and taps.
pub fn depthwise_reference(shape: DepthwiseShape, input: &[f32], taps: &[f32], bias: &[f32]) -> Vec<f32> {
    let DepthwiseShape { height, width, channels: c, window } = shape;
    let Window { kernel: k, stride, pad } = window;
    let (out_h, out_w) = (shape.out_height(), shape.out_width());
    let mut out = vec![0.0; out_h * out_w * c];
    for i in 0..out_h {
        for j in 0..out_w {
            for ch in 0..c {
                let mut acc = bias[ch] as f64;
                for ky in 0..k {
                    for kx in 0..k {
                        let y = (i * stride + ky) as isize - pad as isize;
                        let x = (j * stride + kx) as isize - pad as isize;
                        if y >= 0 && x >= 0 && (y as usize) < height && (x as usize) < width {
                            let v = input[(y as usize * width + x as usize) * c + ch];
                            acc += v as f64 * taps[(ky * k + kx) * c + ch] as f64;
                        }
                    }
                }
                out[(i * out_w + j) * c + ch] = relu6(acc as f32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{max_abs_diff, random_vec};

    #[test]
    fn matches_the_reference_over_shapes_and_windows() {
        let shapes = [(1, 1, 1), (2, 3, 5), (7, 6, 16), (8, 8, 32), (5, 9, 17), (14, 14, 96), (1, 4, 33)];
        for (seed, (height, width, channels)) in shapes.into_iter().enumerate() {
            for window in Window::all_used() {
                let shape = DepthwiseShape { height, width, channels, window };
                // Scaled so that some outputs land below 0 and above 6: ReLU6 is exercised.
                let input: Vec<f32> =
                    random_vec(height * width * channels, seed as u64).iter().map(|v| v * 4.0).collect();
                let taps = random_vec(window.taps() * channels, seed as u64 + 50);
                let bias = random_vec(channels, seed as u64 + 90);
                let mut out = vec![f32::NAN; shape.out_height() * shape.out_width() * channels];
                depthwise(shape, &input, &taps, &bias, &mut out);
                let twin = depthwise_reference(shape, &input, &taps, &bias);
                let diff = max_abs_diff(&out, &twin);
                assert!(diff < 1e-5, "{shape:?}: {diff}");
            }
        }
    }
}
