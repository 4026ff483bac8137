//! Depthwise 3x3 convolution (`groups == channels`) as nine shifted multiply-adds.
//!
//! `y[b, c, i, j] = sum_{ky, kx in 0..3} w[c, 0, ky, kx] * x_pad[b, c, s*i + ky, s*j + kx]`,
//! `x: (B, C, H, W)`, `w: (C, 1, 3, 3)`, padding 1, stride `s` in {1, 2},
//! `y: (B, C, (H + 2 - 3) / s + 1, (W + 2 - 3) / s + 1)`.
//!
//! Candle 0.11 runs a grouped convolution group by group (C tiny im2col + GEMM calls), which
//! made depthwise layers 75% of MobileNetV2's time. Here each tap is one broadcast
//! multiply-add over the whole batch, built from ordinary tensor ops, so autograd works
//! unchanged. For stride 2 the padded input is split into its four row/column phases, so
//! every tap is a plain slice of one phase. Candle's `conv2d` is the reference twin (tests).

use candle_core::{Result, Tensor};

/// The padded input's phase `(row % stride, col % stride)`, or the input itself for stride 1.
fn phases(padded: &Tensor, stride: usize) -> Result<Vec<Vec<Tensor>>> {
    if stride == 1 {
        return Ok(vec![vec![padded.clone()]]);
    }
    let (b, c, h, w) = padded.dims4()?;
    let split = padded.reshape((b, c, h / 2, 2, w / 2, 2))?;
    (0..2).map(|a| (0..2).map(|bb| split.narrow(3, a, 1)?.narrow(5, bb, 1)?.squeeze(5)?.squeeze(3)).collect()).collect()
}

/// Depthwise 3x3 convolution with padding 1 and stride 1 or 2 (no bias).
pub fn depthwise_conv3x3(x: &Tensor, weight: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    if weight.dims() != [c, 1, 3, 3] || !(stride == 1 || stride == 2) {
        candle_core::bail!("depthwise_conv3x3: weight {:?} for {c} channels, stride {stride}", weight.dims());
    }
    let (out_h, out_w) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
    // Pad 1 on top/left; bottom/right so that the padded size is a multiple of the stride.
    let pad_bottom = (out_h - 1) * stride + 3 - (h + 1);
    let pad_right = (out_w - 1) * stride + 3 - (w + 1);
    let padded = x.pad_with_zeros(2, 1, pad_bottom.max(1))?.pad_with_zeros(3, 1, pad_right.max(1))?;
    let padded = if stride == 2 {
        let (ph, pw) = (padded.dim(2)?, padded.dim(3)?);
        padded.pad_with_zeros(2, 0, ph % 2)?.pad_with_zeros(3, 0, pw % 2)?
    } else {
        padded
    };
    let phases = phases(&padded, stride)?;
    let taps = weight.reshape((c, 9))?;
    let mut out: Option<Tensor> = None;
    for ky in 0..3 {
        for kx in 0..3 {
            let phase = &phases[ky % stride][kx % stride];
            let window = phase.narrow(2, ky / stride, out_h)?.narrow(3, kx / stride, out_w)?;
            let tap = taps.narrow(1, ky * 3 + kx, 1)?.reshape((1, c, 1, 1))?;
            let term = window.broadcast_mul(&tap)?;
            out = Some(match out {
                Some(acc) => (acc + term)?,
                None => term,
            });
        }
    }
    match out {
        Some(y) => Ok(y),
        None => candle_core::bail!("depthwise_conv3x3: no taps"),
    }
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
