//! Depthwise 3x3 convolution (`groups == channels`) as a Candle custom op with its own
//! backward pass, for training through the unfrozen blocks.
//!
//! `y[b, c, i, j] = sum_{ky, kx in 0..3} w[c, 0, ky, kx] * x_pad[b, c, s*i + ky, s*j + kx]`,
//! `x: (B, C, H, W)`, `w: (C, 1, 3, 3)`, padding 1, stride `s` in {1, 2},
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
use crate::kernels::backward::source;

/// Geometry of one depthwise convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    planes: usize,
    channels: usize,
    h: usize,
    w: usize,
    stride: usize,
}

impl Geometry {
    fn out(&self) -> (usize, usize) {
        ((self.h - 1) / self.stride + 1, (self.w - 1) / self.stride + 1)
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
        "depthwise3x3"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, w) = (data(s1, l1, "depthwise_conv3x3: input")?, data(s2, l2, "depthwise_conv3x3: weight")?);
        let (oh, ow) = g.out();
        let mut y = vec![0f32; g.planes * oh * ow];
        for (p, out) in y.chunks_exact_mut(oh * ow).enumerate() {
            let plane = &x[p * g.h * g.w..][..g.h * g.w];
            let taps = &w[(p % g.channels) * 9..][..9];
            for ky in 0..3 {
                for i in 0..oh {
                    let Some(iy) = source(i, ky, g.stride, g.h) else { continue };
                    let row = &plane[iy * g.w..][..g.w];
                    for kx in 0..3 {
                        let tap = taps[ky * 3 + kx];
                        for j in 0..ow {
                            if let Some(ix) = source(j, kx, g.stride, g.w) {
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
        "depthwise3x3-input-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (dy, w) = (data(s1, l1, "depthwise_conv3x3: gradient")?, data(s2, l2, "depthwise_conv3x3: weight")?);
        let (oh, ow) = g.out();
        let mut dx = vec![0f32; g.planes * g.h * g.w];
        for (p, plane) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
            let grad = &dy[p * oh * ow..][..oh * ow];
            let taps = &w[(p % g.channels) * 9..][..9];
            for ky in 0..3 {
                for i in 0..oh {
                    let Some(iy) = source(i, ky, g.stride, g.h) else { continue };
                    for kx in 0..3 {
                        let tap = taps[ky * 3 + kx];
                        for j in 0..ow {
                            if let Some(ix) = source(j, kx, g.stride, g.w) {
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
        "depthwise3x3-weight-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, dy) = (data(s1, l1, "depthwise_conv3x3: input")?, data(s2, l2, "depthwise_conv3x3: gradient")?);
        let (oh, ow) = g.out();
        let mut dw = vec![0f32; g.channels * 9];
        for p in 0..g.planes {
            let plane = &x[p * g.h * g.w..][..g.h * g.w];
            let grad = &dy[p * oh * ow..][..oh * ow];
            let taps = &mut dw[(p % g.channels) * 9..][..9];
            for ky in 0..3 {
                for i in 0..oh {
                    let Some(iy) = source(i, ky, g.stride, g.h) else { continue };
                    for kx in 0..3 {
                        let mut acc = 0f32;
                        for j in 0..ow {
                            if let Some(ix) = source(j, kx, g.stride, g.w) {
                                acc += grad[i * ow + j] * plane[iy * g.w + ix];
                            }
                        }
                        taps[ky * 3 + kx] += acc;
                    }
                }
            }
        }
        Ok((CpuStorage::F32(dw), Shape::from((g.channels, 1, 3, 3))))
    }
}

/// Depthwise 3x3 convolution with padding 1 and stride 1 or 2 (no bias), differentiable.
pub fn depthwise_conv3x3(x: &Tensor, weight: &Tensor, stride: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if weight.dims() != [c, 1, 3, 3] || !(stride == 1 || stride == 2) || h == 0 || w == 0 {
        candle_core::bail!("depthwise_conv3x3: weight {:?} for input {:?}, stride {stride}", weight.dims(), x.dims());
    }
    let geometry = Geometry { planes: b * c, channels: c, h, w, stride };
    x.contiguous()?.apply_op2(&weight.contiguous()?, Forward(geometry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn reference(x: &Tensor, w: &Tensor, stride: usize) -> Tensor {
        let c = x.dim(1).unwrap();
        x.conv2d(w, 1, stride, 1, c).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    #[test]
    fn matches_candle_conv2d_over_shapes_and_strides() {
        let dev = Device::Cpu;
        for (b, c, h, w) in [(1, 1, 1, 1), (2, 3, 5, 7), (1, 8, 8, 8), (3, 4, 6, 9), (1, 16, 14, 14), (2, 5, 1, 4)] {
            for stride in [1, 2] {
                let x = Tensor::randn(0f32, 1f32, (b, c, h, w), &dev).unwrap();
                let wt = Tensor::randn(0f32, 1f32, (c, 1, 3, 3), &dev).unwrap();
                let ours = depthwise_conv3x3(&x, &wt, stride).unwrap();
                let twin = reference(&x, &wt, stride);
                assert_eq!(ours.dims(), twin.dims(), "{b}x{c}x{h}x{w} stride {stride}");
                let diff = max_diff(&ours, &twin);
                assert!(diff < 1e-5, "{b}x{c}x{h}x{w} stride {stride}: {diff}");
            }
        }
    }

    /// The gradient twin. Candle 0.11's conv2d backward fails for grouped convolutions and
    /// for stride 2 (its transposed convolution comes out one pixel short), so the twin is a
    /// dense stride-1 conv2d with a block-diagonal weight, subsampled for stride 2.
    fn dense_twin(x: &Tensor, w: &Tensor, stride: usize) -> Tensor {
        let c = x.dim(1).unwrap();
        let eye = Tensor::eye(c, candle_core::DType::F32, x.device()).unwrap().reshape((c, c, 1, 1)).unwrap();
        let dense = eye.broadcast_mul(&w.reshape((c, 1, 3, 3)).unwrap()).unwrap();
        let y = x.conv2d(&dense, 1, 1, 1, 1).unwrap();
        let every = |n: usize| {
            let idx: Vec<u32> = (0..n as u32).step_by(stride).collect();
            Tensor::new(idx, x.device()).unwrap()
        };
        let (h, w_) = (y.dim(2).unwrap(), y.dim(3).unwrap());
        y.index_select(&every(h), 2).unwrap().index_select(&every(w_), 3).unwrap()
    }

    #[test]
    fn gradients_match_a_dense_convolution() {
        let dev = Device::Cpu;
        for stride in [1, 2] {
            let x = Var::randn(0f32, 1f32, (2, 3, 7, 6), &dev).unwrap();
            let w = Var::randn(0f32, 1f32, (3, 1, 3, 3), &dev).unwrap();
            let ours = depthwise_conv3x3(&x, &w, stride).unwrap();
            let twin = dense_twin(&x, &w, stride);
            assert!(max_diff(&ours, &twin) < 1e-5);
            let g1 = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = twin.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            for var in [&x, &w] {
                let diff = max_diff(g1.get(var).unwrap(), g2.get(var).unwrap());
                assert!(diff < 1e-3, "stride {stride}: gradient differs by {diff}");
            }
        }
    }
}
