//! EfficientNet-Lite (Tan & Le, 2019; the Lite variants of TensorFlow's `efficientnet/lite`:
//! no squeeze-and-excitation, ReLU6 instead of swish, stem and head widths fixed), built from
//! config data with the names of the PyTorch port (`_conv_stem`, `_blocks.N._depthwise_conv`).
//!
//! `_conv_stem`, `_bn0`   conv 3x3 stride 2, 3 -> 32, BN, ReLU6          (B,3,224,224) -> (B,32,112,112)
//! `_blocks.0..=15`       MBConv: [1x1 `_expand_conv` (t > 1), `_bn0`, ReLU6] -> k x k
//!                        `_depthwise_conv`, `_bn1`, ReLU6 -> 1x1 `_project_conv`, `_bn2`;
//!                        `x + f(x)` when stride 1 and C_in == C_out              -> (B,320,7,7)
//! `_conv_head`, `_bn1`   conv 1x1 320 -> 1280, BN, ReLU6                       -> (B,1280,7,7)
//! The ImageNet classifier (`_fc`, 1280 -> 1000) is not part of the backbone.
//!
//! The weights come from TensorFlow, whose convolutions pad "SAME": for stride 2 on an even
//! size that is one zero row (column) less before than PyTorch's `k / 2` (3x3: 0 before, 1
//! after; 5x5: 1 and 2). The padding is fixed per layer for even sizes, as the port's static
//! padding for 224 x 224 (every stride-2 layer sees an even size there). Batch norm eps 1e-3.
//! `tests/reference/efficientnet_lite_reference.py` is the PyTorch twin.

use candle_core::Result;
use candle_nn::VarBuilder;

use super::block::Block;
use super::conv_bn::{ConvBn, ConvBnSpec};
use crate::kernels::Window;

/// One stage of MBConv blocks: expansion, depthwise kernel, first stride, output channels,
/// repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbStage {
    pub expansion: usize,
    pub kernel: usize,
    pub stride: usize,
    pub channels: usize,
    pub repeats: usize,
}

/// An EfficientNet-Lite variant as data.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetLiteConfig {
    pub stem_channels: usize,
    pub stages: Vec<MbStage>,
    /// Channels of the head's 1x1 conv: the feature width.
    pub head_channels: usize,
    pub bn_eps: f64,
}

impl EfficientNetLiteConfig {
    /// Lite0: width and depth multipliers 1.0, 224 x 224 input.
    pub fn lite0() -> Self {
        let stage =
            |expansion, kernel, stride, channels, repeats| MbStage { expansion, kernel, stride, channels, repeats };
        Self {
            stem_channels: 32,
            stages: vec![
                stage(1, 3, 1, 16, 1),
                stage(6, 3, 2, 24, 2),
                stage(6, 5, 2, 40, 2),
                stage(6, 3, 2, 80, 3),
                stage(6, 5, 1, 112, 3),
                stage(6, 5, 2, 192, 4),
                stage(6, 3, 1, 320, 1),
            ],
            head_channels: 1280,
            bn_eps: 1e-3,
        }
    }

    /// Stem, every MBConv block, head.
    pub fn num_blocks(&self) -> usize {
        2 + self.stages.iter().map(|s| s.repeats).sum::<usize>()
    }
}

/// The blocks, stem to head, from a VarBuilder rooted at the checkpoint.
pub fn blocks(config: &EfficientNetLiteConfig, vb: VarBuilder) -> Result<Vec<Block>> {
    let eps = config.bn_eps;
    let mut blocks = Vec::with_capacity(config.num_blocks());
    let stem = ConvBnSpec::full(3, config.stem_channels, Window::same(3, 2));
    let stem_unit = ConvBn::load(stem, eps, vb.pp("_conv_stem"), vb.pp("_bn0"))?;
    blocks.push(Block::new("_conv_stem".into(), vec![stem_unit], false));
    let mut in_channels = config.stem_channels;
    for stage in &config.stages {
        for repeat in 0..stage.repeats {
            let stride = if repeat == 0 { stage.stride } else { 1 };
            let shape = MbConv { in_channels, stage: *stage, stride };
            blocks.push(mb_conv(shape, eps, vb.pp("_blocks").pp(blocks.len() - 1))?);
            in_channels = stage.channels;
        }
    }
    let head = ConvBnSpec::pointwise(in_channels, config.head_channels, true);
    let head_unit = ConvBn::load(head, eps, vb.pp("_conv_head"), vb.pp("_bn1"))?;
    blocks.push(Block::new("_conv_head".into(), vec![head_unit], false));
    Ok(blocks)
}

struct MbConv {
    in_channels: usize,
    stage: MbStage,
    stride: usize,
}

/// `_blocks.N`: (expand) -> depthwise -> project.
fn mb_conv(shape: MbConv, eps: f64, vb: VarBuilder) -> Result<Block> {
    let MbConv { in_channels, stage, stride } = shape;
    let hidden = in_channels * stage.expansion;
    let mut units = Vec::with_capacity(3);
    if stage.expansion != 1 {
        let expand = ConvBnSpec::pointwise(in_channels, hidden, true);
        units.push(ConvBn::load(expand, eps, vb.pp("_expand_conv"), vb.pp("_bn0"))?);
    }
    let depthwise = ConvBnSpec::depthwise(hidden, Window::same(stage.kernel, stride));
    units.push(ConvBn::load(depthwise, eps, vb.pp("_depthwise_conv"), vb.pp("_bn1"))?);
    let project = ConvBnSpec::pointwise(hidden, stage.channels, false);
    units.push(ConvBn::load(project, eps, vb.pp("_project_conv"), vb.pp("_bn2"))?);
    Ok(Block::new(vb.prefix(), units, stride == 1 && in_channels == stage.channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_sixteen_mbconv_blocks() {
        assert_eq!(EfficientNetLiteConfig::lite0().num_blocks(), 18);
    }
}
