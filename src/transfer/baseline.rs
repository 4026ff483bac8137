//! Negative transfer: a model that uses no pretrained knowledge, trained beside every run, tells
//! whether the pretrained features help at all.
//!
//! The baseline is the run's own head (same hidden units, optimiser, epochs, split and seed) on
//! the raw pixels squeezed to 32 x 32 ([`crate::preprocess::baseline_pixels`]), never on
//! augmented views or unfrozen blocks. Transfer helps when the transferred model's validation
//! accuracy is at least [`CLEAR_LEAD`] above the baseline's; less (or behind) means it is not
//! helping here, and the page says what to try.

use candle_core::{Device, Tensor};

use crate::error::{GraftError, Result};
use crate::preprocess::BASELINE_SIDE;
use crate::train::{TrainConfig, TrainData, Trainer};

/// How far ahead (accuracy, 0..1) the transferred model must be to count as helping.
pub const CLEAR_LEAD: f32 = 0.02;

/// A run's validation accuracy beside its baseline's (saved with the project).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransferCheck {
    pub baseline_accuracy: f32,
    pub transferred_accuracy: f32,
}

impl TransferCheck {
    /// [`transfer_helps`] for this run.
    pub fn helps(&self) -> bool {
        transfer_helps(self.transferred_accuracy, self.baseline_accuracy)
    }
}

/// Whether a transferred model at `transferred` accuracy is clearly ahead of the baseline's.
pub fn transfer_helps(transferred: f32, baseline: f32) -> bool {
    transferred - baseline >= CLEAR_LEAD - 1e-6
}

/// The baseline's settings: the run's, with no unfrozen blocks and no augmentation.
pub fn baseline_config(config: &TrainConfig) -> TrainConfig {
    TrainConfig { unfreeze: 0, augment: Default::default(), ..config.clone() }
}

/// The baseline's trainer on `pixels` (`baseline_pixels` of each sample, in the order of
/// `labels`: the same order as the run's, so that the split is the same).
pub fn baseline_trainer(
    pixels: Vec<f32>,
    labels: Vec<usize>,
    class_names: Vec<String>,
    config: &TrainConfig,
) -> Result<Trainer> {
    let side = BASELINE_SIDE as usize;
    let inputs = Tensor::from_vec(pixels, (labels.len(), 3 * side * side), &Device::Cpu)?;
    Trainer::new(TrainData::new(inputs, labels, class_names), baseline_config(config))
}

/// Trains the baseline to the end (the best epoch is kept, as in the run) and returns its
/// validation accuracy.
pub async fn baseline_accuracy(
    pixels: Vec<f32>,
    labels: Vec<usize>,
    class_names: Vec<String>,
    config: &TrainConfig,
) -> Result<f32> {
    let mut trainer = baseline_trainer(pixels, labels, class_names, config)?;
    while !trainer.is_done() {
        match trainer.run_epoch().await {
            Ok(_) => {}
            Err(GraftError::Diverged { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(trainer.finish().await?.report.val_accuracy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_helps_only_two_points_ahead_or_more() {
        assert!(transfer_helps(0.90, 0.85));
        assert!(transfer_helps(0.87, 0.85));
        assert!(!transfer_helps(0.86, 0.85));
        assert!(!transfer_helps(1.0, 1.0));
        assert!(!transfer_helps(0.5, 1.0));
    }
}
