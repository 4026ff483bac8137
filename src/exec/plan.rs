//! The folded plan: a backbone's blocks with batch norm folded into the convolutions and every
//! weight laid out for its kernel, independent of who runs it (the CPU executor today; a GPU
//! executor uploads the same arrays into buffers).
//!
//! Folding: `w' = w * g`, `b' = beta - mean * g`, `g = gamma / sqrt(var + eps)` (Candle's
//! `absorb_bn`). Layouts, with activations in NHWC:
//! - full 3x3 conv (the stem): `weight ((ky, kx, c_in), c_out)`, run as im2col + product;
//! - 1x1 conv: `weight (c_in, c_out)`;
//! - depthwise 3x3 or 5x5 + ReLU6: `taps ((ky, kx), c)`.
//!
//! The 3x3 and depthwise units carry their [`Window`] (stride and padding before).

use candle_core::{bail, Result};

use crate::backbone::conv_bn::ConvBn;
use crate::backbone::{Backbone, Block};
use crate::kernels::Window;

/// One fused unit with its folded weights.
#[derive(Debug, Clone)]
pub enum Unit {
    Conv3x3 { window: Window, in_channels: usize, weight: Vec<f32>, bias: Vec<f32>, relu: bool },
    Pointwise { in_channels: usize, weight: Vec<f32>, bias: Vec<f32>, relu: bool },
    Depthwise { window: Window, taps: Vec<f32>, bias: Vec<f32> },
}

impl Unit {
    pub fn out_channels(&self) -> usize {
        match self {
            Unit::Conv3x3 { bias, .. } | Unit::Pointwise { bias, .. } | Unit::Depthwise { bias, .. } => bias.len(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FoldedBlock {
    pub units: Vec<Unit>,
    /// The block adds its input to the output of its last unit.
    pub residual: bool,
}

/// See the module header.
#[derive(Debug, Clone)]
pub struct FoldedPlan {
    blocks: Vec<FoldedBlock>,
}

impl FoldedPlan {
    /// Folds every block of the backbone (its current weights).
    pub fn from_backbone(backbone: &Backbone) -> Result<Self> {
        Self::from_blocks(backbone.blocks())
    }

    /// Folds these blocks (their current weights): a fine-tuned suffix, scored or run for
    /// prediction by the fast executor.
    pub fn from_blocks(blocks: &[Block]) -> Result<Self> {
        Ok(Self { blocks: blocks.iter().map(fold_block).collect::<Result<_>>()? })
    }

    /// A plan of these blocks (tests build small ones by hand).
    pub fn new(blocks: Vec<FoldedBlock>) -> Self {
        Self { blocks }
    }

    pub fn blocks(&self) -> &[FoldedBlock] {
        &self.blocks
    }

    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }
}

fn fold_block(block: &Block) -> Result<FoldedBlock> {
    let units = block.units().iter().map(fold_unit).collect::<Result<_>>()?;
    Ok(FoldedBlock { units, residual: block.residual() })
}

fn fold_unit(unit: &ConvBn) -> Result<Unit> {
    let spec = *unit.spec();
    let (weight, bias) = unit.folded()?;
    let bias = bias.to_vec1::<f32>()?;
    if spec.is_depthwise() {
        if !spec.relu6 {
            bail!("folded plan: depthwise convs are fused with ReLU6");
        }
        // (C, 1, k, k) -> (k*k, C)
        let taps = weight.reshape((spec.out_channels, spec.window().taps()))?.t()?.flatten_all()?.to_vec1()?;
        return Ok(Unit::Depthwise { window: spec.window(), taps, bias });
    }
    if spec.groups != 1 {
        bail!("folded plan: grouped conv {spec:?} has no kernel");
    }
    match spec.kernel {
        1 => {
            // (C_out, C_in, 1, 1) -> (C_in, C_out)
            let weight = weight.flatten_from(1)?.t()?.flatten_all()?.to_vec1()?;
            Ok(Unit::Pointwise { in_channels: spec.in_channels, weight, bias, relu: spec.relu6 })
        }
        3 => {
            // (C_out, C_in, ky, kx) -> ((ky, kx, C_in), C_out)
            let weight = weight.permute((2, 3, 1, 0))?.flatten_all()?.to_vec1()?;
            Ok(Unit::Conv3x3 { window: spec.window(), in_channels: spec.in_channels, weight, bias, relu: spec.relu6 })
        }
        k => bail!("folded plan: no kernel for {k}x{k} convs"),
    }
}
