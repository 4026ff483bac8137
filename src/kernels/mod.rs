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
