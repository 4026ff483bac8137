//! One backbone block: a chain of conv + BN units, with a skip connection `x + f(x)` when the
//! block keeps its input's shape (inverted residuals with stride 1 and C_in == C_out).

use candle_core::{Module, Result, Tensor, Var};

use super::conv_bn::ConvBn;

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

    /// A copy whose weights are trainable variables, with those variables and their names.
    pub fn trainable(&self) -> Result<(Block, Vec<(String, Var)>)> {
        let mut units = Vec::with_capacity(self.units.len());
        let mut vars = Vec::new();
        for unit in &self.units {
            let (copy, unit_vars) = unit.trainable()?;
            units.push(copy);
            vars.extend(unit_vars);
        }
        Ok((Block { name: self.name.clone(), units, residual: self.residual }, vars))
    }
}

impl Block {
    /// [`Module::forward`] on NHWC activations, through the training ops.
    pub fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for unit in &self.units {
            y = unit.forward_nhwc(&y)?;
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
