//! Pretrained image backbones: everything before the classifier, as an ordered list of blocks
//! so that the executors can run a range of them and training can unfreeze a suffix.
//!
//! `(B, 3, H, W) -> blocks[0..n] -> (B, C, h, w) -> spatial mean -> (B, feature_dim)`.
//!
//! An [`Architecture`] is data: its config says how to build the blocks from a `VarBuilder`
//! whose names are the checkpoint's (in the spirit of candle-transformers' model configs). The
//! manifest names the architecture; [`Backbone::load`] builds it without any classifier (the
//! ImageNet head is a separate, optional module). Each architecture is a variant, a config and
//! a file: `mobilenet_v2.rs`, `efficientnet_lite.rs`.

pub mod block;
pub mod conv_bn;
pub mod depthwise;
pub mod efficientnet_lite;
pub mod mobilenet_v2;
pub mod train_ops;

use std::fmt;
use std::ops::Range;

use candle_core::{Module, Result, Tensor, Var};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

pub use block::Block;
use conv_bn::TrainableVars;
use efficientnet_lite::EfficientNetLiteConfig;
use mobilenet_v2::MobileNetV2Config;

use crate::preprocess::InputSpec;
use crate::train::BatchNormMode;

/// The backbone architectures Graft can build. The serde name is the one manifests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    /// MobileNetV2 1.0 (Sandler et al., 2018), torchvision's layout.
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2,
    /// EfficientNet-Lite0 (Tan & Le, 2019), TensorFlow's weights in the PyTorch port's layout.
    #[serde(rename = "efficientnet_lite0")]
    EfficientNetLite0,
}

impl Architecture {
    /// The architecture the app loads when nothing else is asked for.
    pub const DEFAULT: Architecture = Architecture::MobileNetV2;

    /// Every architecture, in the order pickers list them.
    pub const ALL: [Architecture; 2] = [Architecture::MobileNetV2, Architecture::EfficientNetLite0];

    /// Its identifier in manifests and file names.
    pub fn id(self) -> &'static str {
        match self {
            Architecture::MobileNetV2 => "mobilenet_v2",
            Architecture::EfficientNetLite0 => "efficientnet_lite0",
        }
    }

    /// The architecture whose [`Self::id`] is `id`.
    pub fn from_id(id: &str) -> Option<Architecture> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Architecture::MobileNetV2 => "MobileNetV2 1.0",
            Architecture::EfficientNetLite0 => "EfficientNet-Lite0",
        }
    }

    /// Published ImageNet top-1 accuracy (%) of the released weights: torchvision's table for
    /// MobileNetV2, TensorFlow's `efficientnet/lite` README for EfficientNet-Lite0.
    pub fn imagenet_top1(self) -> f32 {
        match self {
            Architecture::MobileNetV2 => 71.878,
            Architecture::EfficientNetLite0 => 75.1,
        }
    }

    /// The config the blocks are built from.
    pub fn config(self) -> BackboneConfig {
        match self {
            Architecture::MobileNetV2 => BackboneConfig::MobileNetV2(MobileNetV2Config::v1_0()),
            Architecture::EfficientNetLite0 => BackboneConfig::EfficientNetLite(EfficientNetLiteConfig::lite0()),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How to build one architecture's blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum BackboneConfig {
    MobileNetV2(MobileNetV2Config),
    EfficientNetLite(EfficientNetLiteConfig),
}

impl BackboneConfig {
    pub fn feature_dim(&self) -> usize {
        match self {
            BackboneConfig::MobileNetV2(c) => c.last_channels,
            BackboneConfig::EfficientNetLite(c) => c.head_channels,
        }
    }

    fn blocks(&self, vb: VarBuilder) -> Result<Vec<Block>> {
        match self {
            BackboneConfig::MobileNetV2(c) => mobilenet_v2::blocks(c, vb),
            BackboneConfig::EfficientNetLite(c) => efficientnet_lite::blocks(c, vb),
        }
    }
}

/// Which backbone, with which weights, made a feature vector: embeddings are keyed by it so
/// that a cache never mixes features of two backbones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BackboneKey {
    pub architecture: Architecture,
    /// sha256 of the weights file (lower-case hex).
    pub weights_sha256: String,
}

impl fmt::Display for BackboneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.weights_sha256.get(..8).unwrap_or(&self.weights_sha256);
        write!(f, "{}@{short}", self.architecture)
    }
}

/// A pretrained backbone without its classifier, in Candle: the differentiable path and the
/// reference twin of the executors.
#[derive(Debug, Clone)]
pub struct Backbone {
    architecture: Architecture,
    blocks: Vec<Block>,
    feature_dim: usize,
    input: InputSpec,
}

impl Backbone {
    /// Builds `architecture` from a VarBuilder rooted at the checkpoint (its tensor names),
    /// fed as `input` says.
    pub fn load(architecture: Architecture, input: InputSpec, vb: VarBuilder) -> Result<Self> {
        let config = architecture.config();
        Ok(Self { architecture, blocks: config.blocks(vb)?, feature_dim: config.feature_dim(), input })
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Width of the pooled feature vector.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    pub fn input_spec(&self) -> &InputSpec {
        &self.input
    }

    /// Runs `blocks` on `x` (NCHW): the input of block `blocks.start` to the output of block
    /// `blocks.end - 1`.
    pub fn forward_blocks(&self, x: &Tensor, blocks: Range<usize>) -> Result<Tensor> {
        run_blocks(&self.blocks[blocks], x)
    }

    /// Pooled features `(B, feature_dim)` of an input batch `(B, 3, H, W)`.
    pub fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_blocks(x, 0..self.blocks.len())?.mean((2, 3))
    }

    /// Every block's name, output shape and parameter count (the page's freeze picture).
    pub fn block_infos(&self) -> Vec<BlockInfo> {
        let (mut h, mut w) = (self.input.crop as usize, self.input.crop as usize);
        self.blocks
            .iter()
            .map(|block| {
                let mut channels = 0;
                for unit in block.units() {
                    let spec = unit.spec();
                    (h, w, channels) = ((h - 1) / spec.stride + 1, (w - 1) / spec.stride + 1, spec.out_channels);
                }
                let parameters = block.units().iter().map(|u| u.parameter_count()).sum();
                BlockInfo { name: block.name().to_string(), output: [h, w, channels], parameters }
            })
            .collect()
    }

    /// Copies of blocks `first..` whose weights are trainable variables holding the pretrained
    /// values (nothing is re-initialised). Batch norm keeps its statistics unless
    /// [`TrainableSuffix::set_batch_norm`] says otherwise.
    pub fn trainable_suffix(&self, first: usize) -> Result<TrainableSuffix> {
        if first > self.blocks.len() {
            candle_core::bail!("block {first} is past the last block ({})", self.blocks.len());
        }
        let mut blocks = Vec::with_capacity(self.blocks.len() - first);
        let mut vars = TrainableVars::default();
        for block in &self.blocks[first..] {
            let (copy, block_vars) = block.trainable()?;
            blocks.push(copy);
            vars.extend(block_vars);
        }
        let batch_norm = BatchNormMode::Frozen;
        Ok(TrainableSuffix { first, blocks, vars, feature_dim: self.feature_dim, batch_norm })
    }
}

/// One block as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockInfo {
    /// The checkpoint prefix its tensors share (`features.17`).
    pub name: String,
    /// `[height, width, channels]` of its output for the backbone's input size.
    pub output: [usize; 3],
    /// Trainable parameters (conv weights, batch-norm scale and shift).
    pub parameters: usize,
}

fn run_blocks(blocks: &[Block], x: &Tensor) -> Result<Tensor> {
    let mut y = x.clone();
    for block in blocks {
        y = block.forward(&y)?;
    }
    Ok(y)
}

/// The last blocks of a backbone as trainable variables (fine-tuning): it maps the activation
/// at the freeze boundary, `(B, h, w, C)` entering block `first`, to pooled features.
#[derive(Debug, Clone)]
pub struct TrainableSuffix {
    first: usize,
    blocks: Vec<Block>,
    vars: TrainableVars,
    feature_dim: usize,
    batch_norm: BatchNormMode,
}

impl TrainableSuffix {
    /// Width of the pooled features it makes.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// Index of the first trainable block (the freeze boundary).
    pub fn first_block(&self) -> usize {
        self.first
    }

    /// The trainable blocks, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// What batch norm does while these blocks train.
    pub fn batch_norm(&self) -> BatchNormMode {
        self.batch_norm
    }

    /// The trainable parameters with their checkpoint names (what the optimizer moves).
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars.params
    }

    /// The parameters and the batch-norm statistics: everything a saved model holds.
    pub fn tensors(&self) -> impl Iterator<Item = &(String, Var)> {
        self.vars.params.iter().chain(&self.vars.stats)
    }

    /// What batch norm does while these blocks train.
    pub fn set_batch_norm(&mut self, mode: BatchNormMode) {
        self.batch_norm = mode;
    }

    /// Pooled features `(B, feature_dim)` of the boundary activation `x`, NHWC `(B, h, w, C)`
    /// (the executors' layout, [`crate::exec::FeatureMap::to_nhwc`]); batch norm in inference
    /// mode.
    pub fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false)
    }

    /// [`Self::forward_features`] for a training step: batch norm in training mode when
    /// [`BatchNormMode::Train`] (batch statistics, running ones updated).
    pub fn forward_features_training(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, self.batch_norm == BatchNormMode::Train)
    }

    fn run(&self, x: &Tensor, batch_stats: bool) -> Result<Tensor> {
        let mut y = x.clone();
        for block in &self.blocks {
            y = block.forward_nhwc(&y, batch_stats)?;
        }
        y.mean((1, 2))
    }
}
