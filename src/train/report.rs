//! What training reports: per epoch, and for the whole run with the kept weights.

use serde::{Deserialize, Serialize};

use super::metrics::Confusion;

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    /// Confusion on the validation split (the training split if there is none), this epoch.
    pub confusion: Confusion,
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
}
