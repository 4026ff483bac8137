//! Depthwise k x k convolution (`groups == channels`, k = 3 or 5) as a Candle custom op with
//! its own backward pass, for training through the unfrozen blocks.
//!
//! `y[b, c, i, j] = sum_{ky, kx in 0..k} w[c, 0, ky, kx] * x_pad[b, c, s*i + ky, s*j + kx]`,
//! `x: (B, C, H, W)`, `w: (C, 1, k, k)`, `x_pad` with `p` zeros before ([`Window`]), stride `s`
//! in {1, 2},
//! `y: (B, C, (H - 1) / s + 1, (W - 1) / s + 1)`.
//! Gradients: `dx[b, c, s*i + ky - 1, s*j + kx - 1] += w[c, ky, kx] * dy[b, c, i, j]` and
//! `dw[c, ky, kx] = sum_{b, i, j} dy[b, c, i, j] * x_pad[b, c, s*i + ky, s*j + kx]`.
//!
//! Candle 0.11 runs a grouped convolution group by group and its conv2d backward fails for
//! grouped and stride-2 convolutions; nine shifted multiply-adds built from tensor ops (the
//! previous formulation) spent most of a fine-tuning epoch copying strided slices. Here each
//! (batch, channel) plane is one direct loop, forward and backward. Candle's `conv2d` is the
//! forward twin and a dense convolution the gradient twin (tests).

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::train_ops::data;
use crate::kernels::Window;

/// Geometry of one depthwise convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    planes: usize,
    channels: usize,
    h: usize,
    w: usize,
    window: Window,
}

impl Geometry {
    fn out(&self) -> (usize, usize) {
        (self.window.out(self.h), self.window.out(self.w))
    }

    fn taps(&self) -> usize {
        self.window.taps()
    }
}

/// `y = depthwise(x, w)`; the op records its stride and input size.
struct Forward(Geometry);
/// `dx` from `(dy, w)`.
struct InputGrad(Geometry);
/// `dw` from `(x, dy)`.
struct WeightGrad(Geometry);

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "depthwise"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, w) = (data(s1, l1, "depthwise_conv: input")?, data(s2, l2, "depthwise_conv: weight")?);
        let (oh, ow) = g.out();
        let mut y = vec![0f32; g.planes * oh * ow];
        for (p, out) in y.chunks_exact_mut(oh * ow).enumerate() {
            let plane = &x[p * g.h * g.w..][..g.h * g.w];
            let taps = &w[(p % g.channels) * g.taps()..][..g.taps()];
            for ky in 0..g.window.kernel {
                for i in 0..oh {
                    let Some(iy) = g.window.source(i, ky, g.h) else { continue };
                    let row = &plane[iy * g.w..][..g.w];
                    for kx in 0..g.window.kernel {
                        let tap = taps[ky * g.window.kernel + kx];
                        for j in 0..ow {
                            if let Some(ix) = g.window.source(j, kx, g.w) {
                                out[i * ow + j] += tap * row[ix];
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((g.planes / g.channels, g.channels, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = dy.apply_op2_no_bwd(w, &InputGrad(self.0))?;
        let dw = x.apply_op2_no_bwd(&dy, &WeightGrad(self.0))?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "depthwise-input-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (dy, w) = (data(s1, l1, "depthwise_conv: gradient")?, data(s2, l2, "depthwise_conv: weight")?);
        let (oh, ow) = g.out();
        let mut dx = vec![0f32; g.planes * g.h * g.w];
        for (p, plane) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
            let grad = &dy[p * oh * ow..][..oh * ow];
            let taps = &w[(p % g.channels) * g.taps()..][..g.taps()];
            for ky in 0..g.window.kernel {
                for i in 0..oh {
                    let Some(iy) = g.window.source(i, ky, g.h) else { continue };
                    for kx in 0..g.window.kernel {
                        let tap = taps[ky * g.window.kernel + kx];
                        for j in 0..ow {
                            if let Some(ix) = g.window.source(j, kx, g.w) {
                                plane[iy * g.w + ix] += tap * grad[i * ow + j];
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(dx), Shape::from((g.planes / g.channels, g.channels, g.h, g.w))))
    }
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "depthwise-weight-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, dy) = (data(s1, l1, "depthwise_conv: input")?, data(s2, l2, "depthwise_conv: gradient")?);
        let (oh, ow) = g.out();
        let mut dw = vec![0f32; g.channels * g.taps()];
        for p in 0..g.planes {
            let plane = &x[p * g.h * g.w..][..g.h * g.w];
            let grad = &dy[p * oh * ow..][..oh * ow];
            let taps = &mut dw[(p % g.channels) * g.taps()..][..g.taps()];
            for ky in 0..g.window.kernel {
                for i in 0..oh {
                    let Some(iy) = g.window.source(i, ky, g.h) else { continue };
                    for kx in 0..g.window.kernel {
                        let mut acc = 0f32;
                        for j in 0..ow {
                            if let Some(ix) = g.window.source(j, kx, g.w) {
                                acc += grad[i * ow + j] * plane[iy * g.w + ix];
                            }
                        }
                        taps[ky * g.window.kernel + kx] += acc;
                    }
                }
            }
        }
        Ok((CpuStorage::F32(dw), Shape::from((g.channels, 1, g.window.kernel, g.window.kernel))))
    }
}

/// Depthwise convolution in a supported window (no bias), differentiable.
pub fn depthwise_conv(x: &Tensor, weight: &Tensor, window: Window) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let k = window.kernel;
    if weight.dims() != [c, 1, k, k] || !window.is_supported() || h == 0 || w == 0 {
        candle_core::bail!("depthwise_conv: weight {:?} for input {:?}, window {window:?}", weight.dims(), x.dims());
    }
    let geometry = Geometry { planes: b * c, channels: c, h, w, window };
    x.contiguous()?.apply_op2(&weight.contiguous()?, Forward(geometry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// `x` with the window's zeros before and as many after as the last output needs.
    fn padded(x: &Tensor, window: Window) -> Tensor {
        let (h, w) = (x.dim(2).unwrap(), x.dim(3).unwrap());
        let after =
            |size: usize| ((window.out(size) - 1) * window.stride + window.kernel).saturating_sub(size + window.pad);
        x.pad_with_zeros(2, window.pad, after(h)).unwrap().pad_with_zeros(3, window.pad, after(w)).unwrap()
    }

    fn reference(x: &Tensor, w: &Tensor, window: Window) -> Tensor {
        let c = x.dim(1).unwrap();
        padded(x, window).conv2d(w, 0, window.stride, 1, c).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    #[test]
    fn matches_candle_conv2d_over_shapes_and_windows() {
        let dev = Device::Cpu;
        for (b, c, h, w) in [(1, 1, 1, 1), (2, 3, 5, 7), (1, 8, 8, 8), (3, 4, 6, 9), (1, 16, 14, 14), (2, 5, 1, 4)] {
            for window in Window::all_used() {
                let k = window.kernel;
                let x = Tensor::randn(0f32, 1f32, (b, c, h, w), &dev).unwrap();
                let wt = Tensor::randn(0f32, 1f32, (c, 1, k, k), &dev).unwrap();
                let ours = depthwise_conv(&x, &wt, window).unwrap();
                let twin = reference(&x, &wt, window);
                assert_eq!(ours.dims(), twin.dims(), "{b}x{c}x{h}x{w} {window:?}");
                let diff = max_diff(&ours, &twin);
                assert!(diff < 1e-5, "{b}x{c}x{h}x{w} {window:?}: {diff}");
            }
        }
    }

    /// The gradient twin. Candle 0.11's conv2d backward fails for grouped convolutions and
    /// for stride 2 (its transposed convolution comes out one pixel short), so the twin is a
    /// dense stride-1 conv2d with a block-diagonal weight on the padded input, subsampled for
    /// stride 2.
    fn dense_twin(x: &Tensor, w: &Tensor, window: Window) -> Tensor {
        let (c, k) = (x.dim(1).unwrap(), window.kernel);
        let eye = Tensor::eye(c, candle_core::DType::F32, x.device()).unwrap().reshape((c, c, 1, 1)).unwrap();
        let dense = eye.broadcast_mul(&w.reshape((c, 1, k, k)).unwrap()).unwrap();
        let y = padded(x, window).conv2d(&dense, 0, 1, 1, 1).unwrap();
        let every = |n: usize| {
            let idx: Vec<u32> = (0..n as u32).step_by(window.stride).collect();
            Tensor::new(idx, x.device()).unwrap()
        };
        let (h, w_) = (y.dim(2).unwrap(), y.dim(3).unwrap());
        y.index_select(&every(h), 2).unwrap().index_select(&every(w_), 3).unwrap()
    }

    #[test]
    fn gradients_match_a_dense_convolution() {
        let dev = Device::Cpu;
        for window in Window::all_used() {
            let k = window.kernel;
            let x = Var::randn(0f32, 1f32, (2, 3, 7, 6), &dev).unwrap();
            let w = Var::randn(0f32, 1f32, (3, 1, k, k), &dev).unwrap();
            let ours = depthwise_conv(&x, &w, window).unwrap();
            let twin = dense_twin(&x, &w, window);
            assert!(max_diff(&ours, &twin) < 1e-5);
            let g1 = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = twin.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            for var in [&x, &w] {
                let diff = max_diff(g1.get(var).unwrap(), g2.get(var).unwrap());
                assert!(diff < 1e-3, "{window:?}: gradient differs by {diff}");
            }
        }
    }
}
