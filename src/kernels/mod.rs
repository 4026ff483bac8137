//! CPU kernels of the frozen inference path, on plain `f32` slices in NHWC layout
//! (`pixel * channels + channel`, channels innermost so that every inner loop runs over
//! contiguous memory and vectorises: SIMD128 on wasm32, SSE/AVX natively).
//!
//! Each kernel has a plain reference twin (naive loops) and an equality test over shapes
//! in its file. The Candle model ([`crate::backbone::Backbone`]) stays the differentiable
//! path; these kernels serve blocks whose weights are frozen ([`crate::exec::CpuExecutor`]).

pub mod backward;
pub mod depthwise;
pub mod im2col;
pub mod pointwise;

/// A convolution window: its side, stride and the zero rows (columns) before the image. The
/// output has `ceil(size / stride)` pixels per axis whatever the padding (PyTorch's symmetric
/// `kernel / 2`, or TensorFlow's "SAME", one less before than after for stride 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Window {
    /// The largest side the kernels take.
    pub const MAX_KERNEL: usize = 5;

    /// `kernel x kernel` with PyTorch's symmetric padding `kernel / 2`.
    pub fn symmetric(kernel: usize, stride: usize) -> Self {
        Self { kernel, stride, pad: kernel / 2 }
    }

    /// TensorFlow's "SAME" window for an even input size n: the padding totals
    /// `(n / s - 1) s + k - n = k - s`, the smaller half before (for stride 1 the same as
    /// [`Self::symmetric`]).
    pub fn same(kernel: usize, stride: usize) -> Self {
        Self { kernel, stride, pad: (kernel - stride) / 2 }
    }

    /// The windows the backbones use, for tests: 3x3 and 5x5, stride 1 and 2, PyTorch's and
    /// TensorFlow's padding.
    pub fn all_used() -> Vec<Window> {
        let mut windows = Vec::new();
        for (kernel, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            windows.push(Self::symmetric(kernel, stride));
            if stride == 2 {
                windows.push(Self::same(kernel, stride));
            }
        }
        windows
    }

    /// Output pixels along an axis of `size` input pixels.
    pub fn out(&self, size: usize) -> usize {
        (size - 1) / self.stride + 1
    }

    /// `kernel * kernel`.
    pub fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// The input index under output `o` and tap `k` (`0..kernel`), if inside `0..size`.
    #[inline(always)]
    pub fn source(&self, o: usize, k: usize, size: usize) -> Option<usize> {
        (o * self.stride + k).checked_sub(self.pad).filter(|&i| i < size)
    }

    /// What the kernels support: 3x3 or 5x5, stride 1 or 2, padding inside the window.
    pub fn is_supported(&self) -> bool {
        matches!(self.kernel, 3 | 5) && matches!(self.stride, 1 | 2) && self.pad < self.kernel
    }
}

#[cfg(test)]
mod window_tests {
    use super::Window;

    #[test]
    fn same_padding_is_symmetric_for_stride_1_and_one_less_before_for_stride_2() {
        assert_eq!(Window::same(3, 1), Window::symmetric(3, 1));
        assert_eq!(Window::same(5, 1), Window::symmetric(5, 1));
        assert_eq!(Window::same(3, 2).pad, 0);
        assert_eq!(Window::same(5, 2).pad, 1);
    }
}

/// A wasm module whose one function uses `f32x4.relaxed_madd`: an engine that validates it has
/// relaxed SIMD, and the page then starts the worker built with it (`graft-worker-relaxed`).
pub const RELAXED_SIMD_PROBE: [u8; 49] = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function of type 0
    0x0a, 0x1c, 0x01, 0x1a, 0x00, // code: one body of 26 bytes, no locals
    0x43, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x13, // f32.const 0, f32x4.splat
    0x43, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x13, // f32.const 0, f32x4.splat
    0x43, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x13, // f32.const 0, f32x4.splat
    0xfd, 0x85, 0x02, // f32x4.relaxed_madd
    0x0b, // end
];

/// Whether this build's kernels use relaxed SIMD's fused multiply-add.
pub const fn built_with_relaxed_simd() -> bool {
    cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"))
}

/// `x * w + acc`: fused where the build has relaxed SIMD (`graft-worker-relaxed`), which saves
/// an instruction and a rounding per tap.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) fn multiply_add(
    x: core::arch::wasm32::v128,
    w: core::arch::wasm32::v128,
    acc: core::arch::wasm32::v128,
) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(x, w, acc);
    #[cfg(not(target_feature = "relaxed-simd"))]
    return f32x4_add(acc, f32x4_mul(x, w));
}

/// `min(max(x, 0), 6)`, MobileNetV2's activation.
#[inline(always)]
pub fn relu6(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}

/// [`relu6`] over a slice.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn relu6_in_place(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = relu6(*v));
}

/// [`relu6`] over a slice, four lanes at a time with SIMD128's pseudo-min/max (which LLVM does
/// not pick for `f32::clamp`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn relu6_in_place(values: &mut [f32]) {
    use core::arch::wasm32::*;
    let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
    let mut chunks = values.chunks_exact_mut(4);
    for chunk in &mut chunks {
        // SAFETY: `chunk` holds exactly four f32 (16 bytes); wasm needs no alignment.
        unsafe {
            let p = chunk.as_mut_ptr() as *mut v128;
            v128_store(p, f32x4_pmin(f32x4_pmax(v128_load(p), zero), six));
        }
    }
    chunks.into_remainder().iter_mut().for_each(|v| *v = relu6(*v));
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::train::rng::SplitMix64;

    /// `len` values uniform in [-1, 1), reproducible from `seed`.
    pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }
}
