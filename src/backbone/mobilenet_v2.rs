//! MobileNetV2 (Sandler et al., 2018) in torchvision's layout, built from config data.
//!
//! `features.0`      stem: conv 3x3 stride 2, 3 -> 32, BN, ReLU6          (B,3,224,224) -> (B,32,112,112)
//! `features.1..=17` inverted residuals: [1x1 expand (t > 1), ReLU6] -> 3x3 depthwise, ReLU6
//!                   -> 1x1 linear projection; `x + f(x)` when stride 1 and C_in == C_out
//!                   -> (B,320,7,7)
//! `features.18`     conv 1x1 320 -> 1280, BN, ReLU6                      -> (B,1280,7,7)
//! The ImageNet classifier (`classifier.1`, 1280 -> 1000) is not part of the backbone
//! ([`crate::model::LinearHead`]).

use candle_core::Result;
use candle_nn::VarBuilder;

use super::block::Block;
use super::conv_bn::{ConvBn, ConvBnSpec};
use crate::kernels::Window;

/// One stage of inverted residuals: expansion t, output channels c, repeats n, first stride s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub expansion: usize,
    pub channels: usize,
    pub repeats: usize,
    pub stride: usize,
}

/// A MobileNetV2 variant as data.
#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetV2Config {
    pub stem_channels: usize,
    pub stages: Vec<Stage>,
    /// Channels of the last 1x1 conv: the feature width.
    pub last_channels: usize,
    pub bn_eps: f64,
}

impl MobileNetV2Config {
    /// Width multiplier 1.0, the paper's table 2 (torchvision's `mobilenet_v2`).
    pub fn v1_0() -> Self {
        let stage = |expansion, channels, repeats, stride| Stage { expansion, channels, repeats, stride };
        Self {
            stem_channels: 32,
            stages: vec![
                stage(1, 16, 1, 1),
                stage(6, 24, 2, 2),
                stage(6, 32, 3, 2),
                stage(6, 64, 4, 2),
                stage(6, 96, 3, 1),
                stage(6, 160, 3, 2),
                stage(6, 320, 1, 1),
            ],
            last_channels: 1280,
            bn_eps: 1e-5,
        }
    }

    /// Stem, every inverted residual, last conv.
    pub fn num_blocks(&self) -> usize {
        2 + self.stages.iter().map(|s| s.repeats).sum::<usize>()
    }
}

/// The blocks `features.0 ..` from a VarBuilder rooted at the checkpoint.
pub fn blocks(config: &MobileNetV2Config, vb: VarBuilder) -> Result<Vec<Block>> {
    let features = vb.pp("features");
    let eps = config.bn_eps;
    let mut blocks = Vec::with_capacity(config.num_blocks());
    let stem = ConvBnSpec::full(3, config.stem_channels, Window::symmetric(3, 2));
    blocks.push(single_unit(stem, eps, features.pp(0))?);
    let mut in_channels = config.stem_channels;
    for stage in &config.stages {
        for repeat in 0..stage.repeats {
            let stride = if repeat == 0 { stage.stride } else { 1 };
            let shape =
                InvertedResidual { in_channels, out_channels: stage.channels, stride, expansion: stage.expansion };
            blocks.push(inverted_residual(shape, eps, features.pp(blocks.len()))?);
            in_channels = stage.channels;
        }
    }
    let last = ConvBnSpec::pointwise(in_channels, config.last_channels, true);
    blocks.push(single_unit(last, eps, features.pp(blocks.len()))?);
    Ok(blocks)
}

fn single_unit(spec: ConvBnSpec, eps: f64, vb: VarBuilder) -> Result<Block> {
    Ok(Block::new(vb.prefix(), vec![ConvBn::load(spec, eps, vb.pp(0), vb.pp(1))?], false))
}

struct InvertedResidual {
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    expansion: usize,
}

/// `features.i.conv`: (expand) -> depthwise -> project, torchvision's numbering; `block` is
/// `features.i`.
fn inverted_residual(shape: InvertedResidual, eps: f64, block: VarBuilder) -> Result<Block> {
    let vb = block.pp("conv");
    let InvertedResidual { in_channels, out_channels, stride, expansion } = shape;
    let hidden = in_channels * expansion;
    let mut units = Vec::with_capacity(3);
    let mut index = 0;
    if expansion != 1 {
        let expand = ConvBnSpec::pointwise(in_channels, hidden, true);
        units.push(ConvBn::load(expand, eps, vb.pp(0).pp(0), vb.pp(0).pp(1))?);
        index = 1;
    }
    let depthwise = ConvBnSpec::depthwise(hidden, Window::symmetric(3, stride));
    units.push(ConvBn::load(depthwise, eps, vb.pp(index).pp(0), vb.pp(index).pp(1))?);
    let project = ConvBnSpec::pointwise(hidden, out_channels, false);
    units.push(ConvBn::load(project, eps, vb.pp(index + 1), vb.pp(index + 2))?);
    Ok(Block::new(block.prefix(), units, stride == 1 && in_channels == out_channels))
}
