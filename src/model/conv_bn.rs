//! Convolution + batch norm (+ ReLU6): the unit MobileNetV2 is made of.
//!
//! `y = relu6?(BN(conv(x)))`, `x: (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)`, padding
//! `k / 2`, no conv bias, BN in inference mode (running statistics, eps from the config).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, VarBuilder};

use super::depthwise::depthwise_conv3x3;

/// Shape of one conv + BN unit.
#[derive(Debug, Clone, Copy)]
pub struct ConvBnSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// `in_channels` for a depthwise conv, 1 otherwise.
    pub groups: usize,
    pub relu6: bool,
}

#[derive(Debug, Clone)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
    relu6: bool,
    /// `Some(stride)` for a depthwise 3x3 conv, run by [`depthwise_conv3x3`].
    depthwise_stride: Option<usize>,
}

impl ConvBn {
    /// Loads the conv from `conv_vb` (`weight`) and the BN from `bn_vb`
    /// (`weight`, `bias`, `running_mean`, `running_var`).
    pub fn load(spec: ConvBnSpec, bn_eps: f64, conv_vb: VarBuilder, bn_vb: VarBuilder) -> Result<Self> {
        let config = Conv2dConfig {
            padding: spec.kernel / 2,
            stride: spec.stride,
            groups: spec.groups,
            ..Default::default()
        };
        let conv = candle_nn::conv2d_no_bias(
            spec.in_channels,
            spec.out_channels,
            spec.kernel,
            config,
            conv_vb,
        )?;
        let bn = candle_nn::batch_norm(spec.out_channels, bn_eps, bn_vb)?;
        let depthwise = spec.kernel == 3 && spec.groups > 1 && spec.groups == spec.in_channels;
        Ok(Self {
            conv,
            bn,
            relu6: spec.relu6,
            depthwise_stride: depthwise.then_some(spec.stride),
        })
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let conv = match self.depthwise_stride {
            Some(stride) => depthwise_conv3x3(x, self.conv.weight(), stride)?,
            None => self.conv.forward(x)?,
        };
        let y = self.bn.forward_t(&conv, false)?;
        if self.relu6 {
            y.clamp(0f32, 6f32)
        } else {
            Ok(y)
        }
    }
}
