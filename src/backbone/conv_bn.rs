//! Convolution + batch norm (+ ReLU6): the unit MobileNetV2 is made of.
//!
//! `y = relu6?(BN(conv(x)))`, `x: (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)`, padding
//! `k / 2`, no conv bias, BN in inference mode (running statistics, eps from the config).
//! Folded for frozen inference: `w' = w * g`, `b' = beta - mean * g`, `g = gamma / sqrt(var + eps)`.

use candle_core::{Module, Result, Tensor, Var};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, VarBuilder};

use super::depthwise::depthwise_conv3x3;
use super::train_ops;

/// Shape of one conv + BN unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvBnSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// `in_channels` for a depthwise conv, 1 otherwise.
    pub groups: usize,
    pub relu6: bool,
}

impl ConvBnSpec {
    /// A 3x3 convolution with one filter per channel.
    pub fn is_depthwise3x3(&self) -> bool {
        self.kernel == 3 && self.groups > 1 && self.groups == self.in_channels
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
}

impl ConvBn {
    /// Loads the conv from `conv_vb` (`weight`) and the BN from `bn_vb`
    /// (`weight`, `bias`, `running_mean`, `running_var`).
    pub fn load(spec: ConvBnSpec, bn_eps: f64, conv_vb: VarBuilder, bn_vb: VarBuilder) -> Result<Self> {
        let config =
            Conv2dConfig { padding: spec.kernel / 2, stride: spec.stride, groups: spec.groups, ..Default::default() };
        let conv =
            candle_nn::conv2d_no_bias(spec.in_channels, spec.out_channels, spec.kernel, config, conv_vb.clone())?;
        let bn = candle_nn::batch_norm(spec.out_channels, bn_eps, bn_vb.clone())?;
        Ok(Self { conv, bn, spec, conv_name: conv_vb.prefix(), bn_name: bn_vb.prefix() })
    }

    pub fn spec(&self) -> &ConvBnSpec {
        &self.spec
    }

    /// Trainable parameters: the conv weight and the BN's scale and shift.
    pub fn parameter_count(&self) -> usize {
        self.conv.weight().elem_count() + 2 * self.spec.out_channels
    }

    /// A copy whose conv weight and BN scale and shift are trainable variables holding the
    /// current values, returned with their checkpoint names. The BN statistics stay as they
    /// are (inference-mode BN: fine-tuning on a few images must not move them).
    pub fn trainable(&self) -> Result<(ConvBn, Vec<(String, Var)>)> {
        // `Var::from_tensor` shares a tensor that already is a variable: copy first, so that
        // training the copy never moves the backbone it came from.
        let weight = Var::from_tensor(&self.conv.weight().copy()?)?;
        let conv = Conv2d::new(weight.as_tensor().clone(), None, *self.conv.config());
        let Some((gamma, beta)) = self.bn.weight_and_bias() else {
            candle_core::bail!("batch norm {} has no scale and shift", self.bn_name);
        };
        let (gamma, beta) = (Var::from_tensor(&gamma.copy()?)?, Var::from_tensor(&beta.copy()?)?);
        let bn = BatchNorm::new(
            self.spec.out_channels,
            self.bn.running_mean().clone(),
            self.bn.running_var().clone(),
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            self.bn.eps(),
        )?;
        let vars = vec![
            (format!("{}.weight", self.conv_name), weight),
            (format!("{}.weight", self.bn_name), gamma),
            (format!("{}.bias", self.bn_name), beta),
        ];
        let copy =
            ConvBn { conv, bn, spec: self.spec, conv_name: self.conv_name.clone(), bn_name: self.bn_name.clone() };
        Ok((copy, vars))
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
        let ConvBnSpec { out_channels: co, in_channels: ci, .. } = self.spec;
        let weight = self.conv.weight().broadcast_mul(&scale.reshape((co, 1, 1, 1))?)?;
        let (b, h, w, _) = x.dims4()?;
        if self.spec.is_depthwise3x3() && self.spec.relu6 {
            let taps = weight.reshape((co, 9))?.t()?;
            return train_ops::depthwise_relu6(x, &taps, &shift, self.spec.stride);
        }
        if self.spec.kernel == 1 && self.spec.stride == 1 && self.spec.groups == 1 {
            let y = train_ops::pointwise(
                &x.reshape((b * h * w, ci))?,
                &weight.reshape((co, ci))?.t()?,
                &shift,
                self.spec.relu6,
            )?;
            return y.reshape((b, h, w, co));
        }
        // Any other conv (the stem): Candle's, in NCHW.
        let nchw = self.forward(&x.permute((0, 3, 1, 2))?)?;
        nchw.permute((0, 2, 3, 1))?.contiguous()
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
        let conv = if self.spec.is_depthwise3x3() {
            depthwise_conv3x3(x, &weight, self.spec.stride)?
        } else if self.spec.kernel == 1 && self.spec.stride == 1 && self.spec.groups == 1 {
            let (b, c, h, w) = x.dims4()?;
            let product = weight.reshape((co, c))?.broadcast_matmul(&x.reshape((b, c, h * w))?)?;
            product.reshape((b, co, h, w))?
        } else {
            x.conv2d(&weight, self.spec.kernel / 2, self.spec.stride, 1, self.spec.groups)?
        };
        let y = conv.broadcast_add(&shift.reshape((1, co, 1, 1))?)?;
        if self.spec.relu6 {
            y.clamp(0f32, 6f32)
        } else {
            Ok(y)
        }
    }
}
