//! Convolution + batch norm (+ ReLU6): the unit MobileNetV2 is made of.
//!
//! `y = relu6?(BN(conv(x)))`, `x: (B, C_in, H, W) -> (B, C_out, ceil(H/stride), ceil(W/stride))`,
//! `pad` zeros before each spatial axis and as many after as the last window needs (PyTorch's
//! symmetric `k / 2`, or TensorFlow's "SAME" of a model converted from TensorFlow, which pads
//! one less before than after for stride 2), no conv bias, BN in inference mode (running
//! statistics, eps from the config).
//! Folded for frozen inference: `w' = w * g`, `b' = beta - mean * g`, `g = gamma / sqrt(var + eps)`.

use candle_core::{Module, Result, Tensor, Var};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, VarBuilder};

use super::depthwise::depthwise_conv;
use super::train_ops;
use crate::kernels::Window;

/// Shape of one conv + BN unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvBnSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero rows (columns) before the image; the output is `ceil(in / stride)` either way.
    pub pad: usize,
    /// `in_channels` for a depthwise conv, 1 otherwise.
    pub groups: usize,
    pub relu6: bool,
}

impl ConvBnSpec {
    /// A 1x1 convolution, stride 1.
    pub fn pointwise(in_channels: usize, out_channels: usize, relu6: bool) -> Self {
        Self { in_channels, out_channels, kernel: 1, stride: 1, pad: 0, groups: 1, relu6 }
    }

    /// A depthwise convolution with ReLU6 (one filter per channel).
    pub fn depthwise(channels: usize, window: Window) -> Self {
        let Window { kernel, stride, pad } = window;
        Self { in_channels: channels, out_channels: channels, kernel, stride, pad, groups: channels, relu6: true }
    }

    /// A full convolution with ReLU6 (the stem).
    pub fn full(in_channels: usize, out_channels: usize, window: Window) -> Self {
        let Window { kernel, stride, pad } = window;
        Self { in_channels, out_channels, kernel, stride, pad, groups: 1, relu6: true }
    }

    /// A 3x3 or 5x5 convolution with one filter per channel.
    pub fn is_depthwise(&self) -> bool {
        matches!(self.kernel, 3 | 5) && self.groups > 1 && self.groups == self.in_channels
    }

    /// The padding before and after an axis of `size` input pixels.
    pub fn padding(&self, size: usize) -> (usize, usize) {
        let out = (size - 1) / self.stride + 1;
        let needed = ((out - 1) * self.stride + self.kernel).saturating_sub(size);
        (self.pad, needed.saturating_sub(self.pad))
    }

    /// The window as the CPU and GPU kernels take it.
    pub fn window(&self) -> Window {
        Window { kernel: self.kernel, stride: self.stride, pad: self.pad }
    }

    /// A 1x1 convolution with stride 1: one product over pixels.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.groups == 1
    }
}

#[derive(Debug, Clone)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
    spec: ConvBnSpec,
    /// Checkpoint prefixes of the conv and the BN (`features.3.conv.0.0`), for naming
    /// trainable copies.
    conv_name: String,
    bn_name: String,
    /// A trainable copy's running mean and variance, which training-mode BN updates.
    stats: Option<(Var, Var)>,
}

/// The variables of a trainable copy: parameters (learned by the optimizer) and batch-norm
/// statistics (moved only by training-mode batch norm), with their checkpoint names.
#[derive(Debug, Clone, Default)]
pub struct TrainableVars {
    pub params: Vec<(String, Var)>,
    pub stats: Vec<(String, Var)>,
}

impl TrainableVars {
    pub fn extend(&mut self, other: TrainableVars) {
        self.params.extend(other.params);
        self.stats.extend(other.stats);
    }
}

/// A unit's tensors under their checkpoint names, for a copy that trains elsewhere (the GPU).
#[derive(Debug, Clone)]
pub struct UnitTensors {
    /// The conv weight `(C_out, C_in / groups, k, k)`.
    pub weight: (String, Tensor),
    pub gamma: (String, Tensor),
    pub beta: (String, Tensor),
    pub running_mean: (String, Tensor),
    pub running_var: (String, Tensor),
    pub eps: f64,
}

/// Momentum of the running statistics in training-mode batch norm (PyTorch's default).
const BN_MOMENTUM: f64 = 0.1;

impl ConvBn {
    /// Loads the conv from `conv_vb` (`weight`) and the BN from `bn_vb`
    /// (`weight`, `bias`, `running_mean`, `running_var`).
    pub fn load(spec: ConvBnSpec, bn_eps: f64, conv_vb: VarBuilder, bn_vb: VarBuilder) -> Result<Self> {
        // The padding is applied in `forward` ([`conv_padded`]), which may be asymmetric.
        let config = Conv2dConfig { padding: 0, stride: spec.stride, groups: spec.groups, ..Default::default() };
        let conv =
            candle_nn::conv2d_no_bias(spec.in_channels, spec.out_channels, spec.kernel, config, conv_vb.clone())?;
        let bn = candle_nn::batch_norm(spec.out_channels, bn_eps, bn_vb.clone())?;
        Ok(Self { conv, bn, spec, conv_name: conv_vb.prefix(), bn_name: bn_vb.prefix(), stats: None })
    }

    pub fn spec(&self) -> &ConvBnSpec {
        &self.spec
    }

    /// Trainable parameters: the conv weight and the BN's scale and shift.
    pub fn parameter_count(&self) -> usize {
        self.conv.weight().elem_count() + 2 * self.spec.out_channels
    }

    /// A copy whose conv weight and BN scale and shift are trainable variables holding the
    /// current values; its BN statistics are variables too, which only training-mode batch
    /// norm moves ([`ConvBn::forward_nhwc_batch_stats`]). All named as in the checkpoint.
    pub fn trainable(&self) -> Result<(ConvBn, TrainableVars)> {
        // `Var::from_tensor` shares a tensor that already is a variable: copy first, so that
        // training the copy never moves the backbone it came from.
        let copy_var =
            |(name, t): (String, Tensor)| -> Result<(String, Var)> { Ok((name, Var::from_tensor(&t.copy()?)?)) };
        let t = self.tensors()?;
        let (weight, gamma, beta) = (copy_var(t.weight)?, copy_var(t.gamma)?, copy_var(t.beta)?);
        let (mean, var) = (copy_var(t.running_mean)?, copy_var(t.running_var)?);
        let conv = Conv2d::new(weight.1.as_tensor().clone(), None, *self.conv.config());
        let bn = BatchNorm::new(
            self.spec.out_channels,
            mean.1.as_tensor().clone(),
            var.1.as_tensor().clone(),
            gamma.1.as_tensor().clone(),
            beta.1.as_tensor().clone(),
            t.eps,
        )?;
        let copy = ConvBn {
            conv,
            bn,
            spec: self.spec,
            conv_name: self.conv_name.clone(),
            bn_name: self.bn_name.clone(),
            stats: Some((mean.1.clone(), var.1.clone())),
        };
        Ok((copy, TrainableVars { params: vec![weight, gamma, beta], stats: vec![mean, var] }))
    }

    /// The conv weight, the batch norm's scale, shift and statistics, by checkpoint name.
    pub fn tensors(&self) -> Result<UnitTensors> {
        let Some((gamma, beta)) = self.bn.weight_and_bias() else {
            candle_core::bail!("batch norm {} has no scale and shift", self.bn_name);
        };
        let named = |suffix: &str, t: &Tensor| (format!("{}.{suffix}", self.bn_name), t.clone());
        Ok(UnitTensors {
            weight: (format!("{}.weight", self.conv_name), self.conv.weight().clone()),
            gamma: named("weight", gamma),
            beta: named("bias", beta),
            running_mean: named("running_mean", self.bn.running_mean()),
            running_var: named("running_var", self.bn.running_var()),
            eps: self.bn.eps(),
        })
    }

    /// The conv with the BN folded in: `(weight (C_out, C_in/groups, k, k), bias (C_out))`.
    pub fn folded(&self) -> Result<(Tensor, Tensor)> {
        let conv = self.conv.absorb_bn(&self.bn)?;
        match conv.bias() {
            Some(bias) => Ok((conv.weight().clone(), bias.clone())),
            None => candle_core::bail!("folding the batch norm gave no bias"),
        }
    }
}

impl ConvBn {
    /// The batch norm as a per-channel scale and shift, `(g, beta - mean * g)` with
    /// `g = gamma / sqrt(var + eps)`: differentiable in gamma and beta, so a trainable copy
    /// folds them into its conv weight on every forward instead of normalising the big tensor.
    fn bn_scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let Some((gamma, beta)) = self.bn.weight_and_bias() else {
            candle_core::bail!("batch norm {} has no scale and shift", self.bn_name);
        };
        let inv_std = (self.bn.running_var() + self.bn.eps())?.sqrt()?.recip()?;
        let scale = (gamma * inv_std)?;
        let shift = (beta - (self.bn.running_mean() * &scale)?)?;
        Ok((scale, shift))
    }

    /// The same unit on NHWC activations `(B, H, W, C_in) -> (B, H', W', C_out)`, through the
    /// training ops (hand-written backward passes): the path of unfrozen blocks.
    pub fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        let (scale, shift) = self.bn_scale_shift()?;
        let co = self.spec.out_channels;
        let weight = self.conv.weight().broadcast_mul(&scale.reshape((co, 1, 1, 1))?)?;
        if self.spec.is_depthwise() && self.spec.relu6 {
            let taps = weight.reshape((co, self.spec.kernel * self.spec.kernel))?.t()?;
            return train_ops::depthwise_relu6(x, &taps, &shift, self.spec.window());
        }
        let y = self.conv_nhwc(x, &weight, &shift, self.spec.relu6)?;
        if self.spec.relu6 && !self.spec.is_pointwise() {
            return y.clamp(0f32, 6f32);
        }
        Ok(y)
    }

    /// `conv(x, weight) + bias` in NHWC (ReLU6 too for a pointwise conv when `relu6`).
    fn conv_nhwc(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, relu6: bool) -> Result<Tensor> {
        let (b, h, w, ci) = x.dims4()?;
        let co = self.spec.out_channels;
        if self.spec.is_pointwise() {
            let rows =
                train_ops::pointwise(&x.reshape((b * h * w, ci))?, &weight.reshape((co, ci))?.t()?, bias, relu6)?;
            return rows.reshape((b, h, w, co));
        }
        // The depthwise conv without its ReLU6, and any other conv (the stem): NCHW.
        let nchw = x.permute((0, 3, 1, 2))?;
        let y = if self.spec.is_depthwise() {
            depthwise_conv(&nchw, weight, self.spec.window())?
        } else {
            conv_padded(&nchw, weight, &self.spec)?
        };
        y.broadcast_add(&bias.reshape((1, co, 1, 1))?)?.permute((0, 2, 3, 1))?.contiguous()
    }

    /// Training-mode batch norm: the conv's output normalised with the batch's own mean and
    /// (biased) variance per channel over `B H' W'`, then scaled and shifted; the running
    /// statistics move towards the batch's (momentum 0.1, unbiased variance), as PyTorch's.
    pub fn forward_nhwc_batch_stats(&self, x: &Tensor) -> Result<Tensor> {
        let Some((gamma, beta)) = self.bn.weight_and_bias() else {
            candle_core::bail!("batch norm {} has no scale and shift", self.bn_name);
        };
        let co = self.spec.out_channels;
        let zero = Tensor::zeros(co, x.dtype(), x.device())?;
        let conv = self.conv_nhwc(x, self.conv.weight(), &zero, false)?;
        let shape = conv.dims4()?;
        let rows = conv.reshape((shape.0 * shape.1 * shape.2, co))?;
        // Column means as a product with a row of `1 / n` (Candle's reduction over the first
        // dimension is several times slower, forward and backward).
        let n = rows.dim(0)?;
        let average = Tensor::full(1.0 / n as f32, (1, n), rows.device())?;
        let mean = average.matmul(&rows)?;
        let centred = rows.broadcast_sub(&mean)?;
        let var = average.matmul(&centred.sqr()?)?;
        let normalised = centred.broadcast_div(&(&var + self.bn.eps())?.sqrt()?)?;
        let y = normalised.broadcast_mul(gamma)?.broadcast_add(beta)?.reshape(shape)?;
        self.update_running_stats(&mean, &var, n)?;
        if self.spec.relu6 {
            y.clamp(0f32, 6f32)
        } else {
            Ok(y)
        }
    }

    fn update_running_stats(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let Some((running_mean, running_var)) = &self.stats else {
            return Ok(());
        };
        let unbiased = (var.detach().squeeze(0)? * (n as f64 / (n.max(2) - 1) as f64))?;
        let blend = |running: &Var, batch: &Tensor| -> Result<()> {
            running.set(&((running.as_tensor() * (1.0 - BN_MOMENTUM))? + (batch * BN_MOMENTUM)?)?)
        };
        blend(running_mean, &mean.detach().squeeze(0)?)?;
        blend(running_var, &unbiased)
    }
}

impl Module for ConvBn {
    /// `relu6?(conv(x, w * g) + shift)`: the conv with the (inference-mode) batch norm folded
    /// in, which equals `BN(conv(x, w))`. A 1x1 conv is one batched product `(C_out, C_in) x
    /// (C_in, H W)` and the depthwise 3x3 the shifted multiply-adds, so that the backward pass
    /// is products and elementwise ops (Candle's grouped conv backward is slow or unsupported).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (scale, shift) = self.bn_scale_shift()?;
        let co = self.spec.out_channels;
        let weight = self.conv.weight().broadcast_mul(&scale.reshape((co, 1, 1, 1))?)?;
        let conv = if self.spec.is_depthwise() {
            depthwise_conv(x, &weight, self.spec.window())?
        } else if self.spec.is_pointwise() {
            let (b, c, h, w) = x.dims4()?;
            let product = weight.reshape((co, c))?.broadcast_matmul(&x.reshape((b, c, h * w))?)?;
            product.reshape((b, co, h, w))?
        } else {
            conv_padded(x, &weight, &self.spec)?
        };
        let y = conv.broadcast_add(&shift.reshape((1, co, 1, 1))?)?;
        if self.spec.relu6 {
            y.clamp(0f32, 6f32)
        } else {
            Ok(y)
        }
    }
}

/// Candle's convolution of NCHW `x` with the spec's padding: `k / 2` (odd k) is Candle's own
/// symmetric padding, which gives `ceil(in / stride)` outputs too; anything else gets its zero
/// rows and columns first.
fn conv_padded(x: &Tensor, weight: &Tensor, spec: &ConvBnSpec) -> Result<Tensor> {
    if spec.pad == spec.kernel / 2 {
        return x.conv2d(weight, spec.pad, spec.stride, 1, spec.groups);
    }
    let (_, _, h, w) = x.dims4()?;
    let ((top, bottom), (left, right)) = (spec.padding(h), spec.padding(w));
    let padded = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
    padded.conv2d(weight, 0, spec.stride, 1, spec.groups)
}
