//! A linear classification head on pooled features: `logits = x W^T + b`,
//! `x: (B, D) -> (B, classes)`. For MobileNetV2's ImageNet head the checkpoint names are
//! `classifier.1.{weight, bias}` (`classifier.0` is dropout, inactive at inference).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

#[derive(Debug, Clone)]
pub struct LinearHead {
    linear: Linear,
}

impl LinearHead {
    pub fn load(in_dim: usize, classes: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { linear: candle_nn::linear(in_dim, classes, vb)? })
    }
}

impl Module for LinearHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear.forward(x)
    }
}
