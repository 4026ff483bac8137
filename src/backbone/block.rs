//! One backbone block: a chain of conv + BN units, with a skip connection `x + f(x)` when the
//! block keeps its input's shape (inverted residuals with stride 1 and C_in == C_out).

use candle_core::{Module, Result, Tensor};

use super::conv_bn::{ConvBn, TrainableVars};

#[derive(Debug, Clone)]
pub struct Block {
    /// The checkpoint prefix of its tensors (`features.3`).
    name: String,
    units: Vec<ConvBn>,
    residual: bool,
}

impl Block {
    pub fn new(name: String, units: Vec<ConvBn>, residual: bool) -> Self {
        Self { name, units, residual }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The conv + BN units, in order.
    pub fn units(&self) -> &[ConvBn] {
        &self.units
    }

    /// Whether the block adds its input to its output.
    pub fn residual(&self) -> bool {
        self.residual
    }

    /// A copy whose weights (and BN statistics) are variables, with those variables.
    pub fn trainable(&self) -> Result<(Block, TrainableVars)> {
        let mut units = Vec::with_capacity(self.units.len());
        let mut vars = TrainableVars::default();
        for unit in &self.units {
            let (copy, unit_vars) = unit.trainable()?;
            units.push(copy);
            vars.extend(unit_vars);
        }
        Ok((Block { name: self.name.clone(), units, residual: self.residual }, vars))
    }
}

impl Block {
    /// [`Module::forward`] on NHWC activations, through the training ops; with `batch_stats`,
    /// batch norm normalises with the batch's statistics and updates its running ones.
    pub fn forward_nhwc(&self, x: &Tensor, batch_stats: bool) -> Result<Tensor> {
        let mut y = x.clone();
        for unit in &self.units {
            y = if batch_stats { unit.forward_nhwc_batch_stats(&y)? } else { unit.forward_nhwc(&y)? };
        }
        if self.residual {
            y + x
        } else {
            Ok(y)
        }
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
