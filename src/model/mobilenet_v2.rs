//! MobileNetV2 1.0 (Sandler et al., 2018) in torchvision's layout, as an explicit list of
//! blocks so that training code can freeze or unfreeze them one by one.
//!
//! `features.0`      stem: conv 3x3 stride 2, 3 -> 32, BN, ReLU6          (B,3,224,224) -> (B,32,112,112)
//! `features.1..=17` inverted residuals: [1x1 expand (t > 1), ReLU6] -> 3x3 depthwise, ReLU6
//!                   -> 1x1 linear projection; `x + f(x)` when stride 1 and C_in == C_out
//!                   -> (B,320,7,7)
//! `features.18`     conv 1x1 320 -> 1280, BN, ReLU6                      -> (B,1280,7,7)
//! pooling           spatial mean                                         -> (B,1280)
//! The ImageNet classifier (`classifier.1`, 1280 -> 1000) is a separate head
//! ([`crate::model::LinearHead`]).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::conv_bn::{ConvBn, ConvBnSpec};

/// Width of the pooled feature vector.
pub const FEATURE_DIM: usize = 1280;
/// Number of blocks in `features` (stem, 17 inverted residuals, last conv).
pub const NUM_BLOCKS: usize = 19;
const BN_EPS: f64 = 1e-5;

/// (expansion t, output channels c, repeats n, first stride s) per stage, from the paper.
const STAGES: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// One entry of `features`: a chain of conv + BN units, with a skip connection for
/// inverted residuals whose input and output shapes agree.
#[derive(Debug, Clone)]
pub struct Block {
    units: Vec<ConvBn>,
    residual: bool,
}

impl Block {
    /// The conv + BN units, in order.
    pub fn units(&self) -> &[ConvBn] {
        &self.units
    }

    /// Whether the block adds its input to its output.
    pub fn residual(&self) -> bool {
        self.residual
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for unit in &self.units {
            y = unit.forward(&y)?;
        }
        if self.residual {
            y + x
        } else {
            Ok(y)
        }
    }
}

/// The MobileNetV2 backbone (everything before the classifier).
#[derive(Debug, Clone)]
pub struct MobileNetV2 {
    blocks: Vec<Block>,
}

impl MobileNetV2 {
    /// Builds the backbone from a VarBuilder rooted at the checkpoint (names `features.*`).
    pub fn load(vb: VarBuilder) -> Result<Self> {
        let features = vb.pp("features");
        let mut blocks = Vec::with_capacity(NUM_BLOCKS);
        let stem = ConvBnSpec { in_channels: 3, out_channels: 32, kernel: 3, stride: 2, groups: 1, relu6: true };
        blocks.push(single_unit(stem, features.pp(0))?);
        let mut in_channels = 32;
        for (t, c, n, s) in STAGES {
            for repeat in 0..n {
                let stride = if repeat == 0 { s } else { 1 };
                let vb = features.pp(blocks.len()).pp("conv");
                blocks.push(inverted_residual(in_channels, c, stride, t, vb)?);
                in_channels = c;
            }
        }
        let last = ConvBnSpec { in_channels, out_channels: FEATURE_DIM, kernel: 1, stride: 1, groups: 1, relu6: true };
        blocks.push(single_unit(last, features.pp(blocks.len()))?);
        Ok(Self { blocks })
    }

    /// The 19 blocks, in order (`features.0` .. `features.18`).
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Pooled features `(B, 1280)` of an input batch `(B, 3, H, W)`.
    pub fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for block in &self.blocks {
            y = block.forward(&y)?;
        }
        y.mean((2, 3))
    }
}

fn single_unit(spec: ConvBnSpec, vb: VarBuilder) -> Result<Block> {
    Ok(Block { units: vec![ConvBn::load(spec, BN_EPS, vb.pp(0), vb.pp(1))?], residual: false })
}

/// `features.i.conv`: (expand) -> depthwise -> project, torchvision's numbering.
fn inverted_residual(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    expansion: usize,
    vb: VarBuilder,
) -> Result<Block> {
    let hidden = in_channels * expansion;
    let mut units = Vec::with_capacity(3);
    let mut index = 0;
    if expansion != 1 {
        let expand = ConvBnSpec { in_channels, out_channels: hidden, kernel: 1, stride: 1, groups: 1, relu6: true };
        units.push(ConvBn::load(expand, BN_EPS, vb.pp(0).pp(0), vb.pp(0).pp(1))?);
        index = 1;
    }
    let depthwise =
        ConvBnSpec { in_channels: hidden, out_channels: hidden, kernel: 3, stride, groups: hidden, relu6: true };
    units.push(ConvBn::load(depthwise, BN_EPS, vb.pp(index).pp(0), vb.pp(index).pp(1))?);
    let project = ConvBnSpec { in_channels: hidden, out_channels, kernel: 1, stride: 1, groups: 1, relu6: false };
    units.push(ConvBn::load(project, BN_EPS, vb.pp(index + 1), vb.pp(index + 2))?);
    Ok(Block { units, residual: stride == 1 && in_channels == out_channels })
}
