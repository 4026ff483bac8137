//! What training reports: per epoch, and for the whole run with the kept weights.

use serde::{Deserialize, Serialize};

use super::metrics::Confusion;

/// Which part of the network learned in an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The head alone (feature extraction, or the first stage of fine-tuning).
    #[default]
    #[serde(rename = "head")]
    Head,
    /// The head with the unfrozen blocks.
    #[serde(rename = "fine-tune")]
    FineTune,
}

impl Stage {
    /// `head` or `fine-tune`, as the CLI and the page show it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Head => "head",
            Stage::FineTune => "fine-tune",
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    #[serde(default)]
    pub stage: Stage,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    /// Confusion on the validation split (the training split if there is none), this epoch.
    pub confusion: Confusion,
    /// With domain adaptation: how often the domain classifier told source from target over
    /// the epoch's batches (near 0.5: the features no longer tell the domains apart).
    #[serde(default)]
    pub domain_accuracy: Option<f32>,
}

/// The outcome of a run, scored with the kept (best) weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// Accuracy and confusion on the validation split (the training split if there is none).
    pub val_accuracy: f32,
    /// The loss of the kept weights on that split.
    #[serde(default)]
    pub val_loss: f32,
    pub per_class_accuracy: Vec<Option<f32>>,
    pub confusion: Confusion,
    pub train_samples: usize,
    pub val_samples: usize,
    /// The final epoch's weights were kept (domain adaptation), not those with the lowest
    /// validation loss.
    #[serde(default)]
    pub kept_final: bool,
}
