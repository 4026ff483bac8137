//! The trainable classification head on frozen backbone features (feature extraction):
//! `x (B, D) -> [Linear(D, H) -> ReLU -> Dropout(p)] -> Linear(H or D, C) -> logits (B, C)`.
//! With `hidden = 0` it is a linear probe. Names: `hidden.{weight,bias}`, `output.{weight,bias}`
//! ([`super::names`]).

use candle_core::{Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpHeadSpec {
    pub in_dim: usize,
    /// Hidden units; 0 for a linear head.
    pub hidden: usize,
    pub classes: usize,
}

impl MlpHeadSpec {
    /// Its tensors' names and shapes, hidden layer first: what a weights file holds for it.
    pub fn tensor_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        use super::names::{HIDDEN_BIAS, HIDDEN_WEIGHT, OUTPUT_BIAS, OUTPUT_WEIGHT};
        let output_in = if self.hidden > 0 { self.hidden } else { self.in_dim };
        let mut shapes = Vec::with_capacity(4);
        if self.hidden > 0 {
            shapes.extend([(HIDDEN_WEIGHT, vec![self.hidden, self.in_dim]), (HIDDEN_BIAS, vec![self.hidden])]);
        }
        shapes.extend([(OUTPUT_WEIGHT, vec![self.classes, output_in]), (OUTPUT_BIAS, vec![self.classes])]);
        shapes
    }
}

#[derive(Debug, Clone)]
pub struct MlpHead {
    hidden: Option<Linear>,
    output: Linear,
}

impl MlpHead {
    pub fn load(spec: MlpHeadSpec, vb: VarBuilder) -> Result<Self> {
        let (hidden, out_in) = if spec.hidden == 0 {
            (None, spec.in_dim)
        } else {
            (Some(candle_nn::linear(spec.in_dim, spec.hidden, vb.pp(super::names::HIDDEN))?), spec.hidden)
        };
        let output = candle_nn::linear(out_in, spec.classes, vb.pp(super::names::OUTPUT))?;
        Ok(Self { hidden, output })
    }

    /// Logits. `dropout_mask`, when training, multiplies the hidden activations (it already
    /// holds `0` or `1 / (1 - p)`), so that the caller controls the randomness.
    pub fn forward_with_mask(&self, x: &Tensor, dropout_mask: Option<&Tensor>) -> Result<Tensor> {
        self.classify(&self.features(x)?, dropout_mask)
    }

    /// The hidden layer's activations `relu(x W1^T + b1)` (`x` itself for a linear head): the
    /// features domain adaptation aligns.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        match &self.hidden {
            Some(hidden) => hidden.forward(x)?.relu(),
            None => Ok(x.clone()),
        }
    }

    /// Logits of hidden activations `h` ([`Self::features`]), dropout applied when training.
    pub fn classify(&self, h: &Tensor, dropout_mask: Option<&Tensor>) -> Result<Tensor> {
        match (dropout_mask, self.hidden.is_some()) {
            (Some(mask), true) => self.output.forward(&(h * mask)?),
            _ => self.output.forward(h),
        }
    }

    /// Number of classes (outputs).
    pub fn classes(&self) -> usize {
        self.output.weight().dim(0).unwrap_or(0)
    }

    /// The spec the weights' shapes say.
    pub fn spec(&self) -> MlpHeadSpec {
        let in_dim = |layer: &Linear| layer.weight().dim(1).unwrap_or(0);
        let hidden = self.hidden_dim().unwrap_or(0);
        let in_dim = self.hidden.as_ref().map_or_else(|| in_dim(&self.output), in_dim);
        MlpHeadSpec { in_dim, hidden, classes: self.classes() }
    }

    pub fn hidden_dim(&self) -> Option<usize> {
        self.hidden.as_ref().map(|h| h.weight().dim(0).unwrap_or(0))
    }
}

impl Module for MlpHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_mask(x, None)
    }
}
