//! Training settings, with the one place that says which values are acceptable.

use serde::{Deserialize, Serialize};

use crate::error::{Accepted, GraftError, Result, SettingProblem};

/// How a head (and, when fine-tuning, the unfrozen blocks) is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// AdamW learning rate of the head.
    pub learning_rate: f64,
    /// AdamW learning rate of unfrozen backbone blocks (fine-tuning): smaller than the head's,
    /// so that the pretrained weights move gently.
    #[serde(default = "default_backbone_learning_rate")]
    pub backbone_learning_rate: f64,
    /// Hidden units of the head; 0 for a linear head.
    pub hidden: usize,
    pub dropout: f32,
    pub weight_decay: f64,
    pub val_fraction: f32,
    pub seed: u64,
    /// How many of the backbone's last blocks train (0: the head alone, feature extraction).
    #[serde(default)]
    pub unfreeze: usize,
    /// Epochs of the head alone before unfrozen blocks join (the two-stage schedule).
    #[serde(default = "default_head_epochs")]
    pub head_epochs: usize,
    /// Cosine decay of both learning rates over each group's epochs.
    #[serde(default)]
    pub cosine_decay: bool,
    /// Random resized crop, horizontal flip and colour jitter of the training images.
    #[serde(default)]
    pub augment: Augment,
    /// What batch norm does in unfrozen blocks.
    #[serde(default)]
    pub batch_norm: BatchNormMode,
    /// Domain adaptation to unlabelled target images (DANN).
    #[serde(default)]
    pub adapt: Adapt,
    /// Which epoch's weights the run keeps.
    #[serde(default)]
    pub keep: Keep,
}

/// Which epoch's weights a run keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The final ones when adapting to a domain (whose images have no labels to select by),
    /// else those with the lowest validation loss.
    #[default]
    Auto,
    BestValidation,
    Final,
}

impl Keep {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "best" => Some(Self::BestValidation),
            "final" => Some(Self::Final),
            _ => None,
        }
    }
}

/// Adversarial domain adaptation ([`crate::train::dann`]): used when enabled and the run has
/// unlabelled target samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adapt {
    pub enabled: bool,
    /// The strength `w` of the gradient reversal, `lambda = w (2 / (1 + exp(-10 p)) - 1)`.
    pub weight: f32,
}

impl Default for Adapt {
    fn default() -> Self {
        Self { enabled: false, weight: 1.0 }
    }
}

/// Augmentation of training images (validation images never are).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    pub enabled: bool,
    /// 0 (none) to 1 (strong): crop area down to `1 - 0.7 s`, aspect `exp(+-0.3 s)`, brightness,
    /// contrast and saturation `1 +- 0.4 s`; flips at any strength above 0.
    pub strength: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self { enabled: false, strength: 0.5 }
    }
}

/// Batch norm in unfrozen blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchNormMode {
    /// The pretrained statistics (inference-mode BN): right for small batches.
    #[default]
    Frozen,
    /// Batch statistics while training, and running statistics updated (momentum 0.1).
    Train,
}

impl BatchNormMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "frozen" => Some(Self::Frozen),
            "train" => Some(Self::Train),
            _ => None,
        }
    }
}

fn default_head_epochs() -> usize {
    5
}

fn default_backbone_learning_rate() -> f64 {
    1e-4
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 50,
            batch_size: 16,
            learning_rate: 1e-3,
            backbone_learning_rate: default_backbone_learning_rate(),
            hidden: 100,
            dropout: 0.2,
            weight_decay: 0.01,
            val_fraction: 0.15,
            seed: 0,
            unfreeze: 0,
            head_epochs: default_head_epochs(),
            cosine_decay: false,
            augment: Augment::default(),
            batch_norm: BatchNormMode::Frozen,
            adapt: Adapt::default(),
            keep: Keep::Auto,
        }
    }
}

/// Upper limits that keep a run inside what a browser tab can hold.
pub const MAX_EPOCHS: usize = 10_000;
pub const MAX_BATCH: usize = 4096;
pub const MAX_HIDDEN: usize = 4096;

impl TrainConfig {
    /// Checks every setting; the error names the first one out of range and what it accepts.
    pub fn validate(&self) -> Result<()> {
        use Accepted::*;
        let bad =
            |setting: &'static str, accepted: Accepted| Err(GraftError::Settings(SettingProblem { setting, accepted }));
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad("epochs", Between(1.0, MAX_EPOCHS as f64));
        }
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            return bad("batch size", Between(1.0, MAX_BATCH as f64));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning rate", AboveZeroAtMost(1.0));
        }
        if !(self.backbone_learning_rate > 0.0 && self.backbone_learning_rate <= 1.0) {
            return bad("backbone learning rate", AboveZeroAtMost(1.0));
        }
        if self.hidden > MAX_HIDDEN {
            return bad("hidden units", LinearOrUpTo(MAX_HIDDEN));
        }
        if !(0.0..0.95).contains(&self.dropout) {
            return bad("dropout", AtLeastZeroBelow(0.95));
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            return bad("weight decay", Between(0.0, 1.0));
        }
        if !(0.0..=0.9).contains(&self.val_fraction) {
            return bad("validation fraction", Between(0.0, 0.9));
        }
        if self.unfreeze > 0 && self.head_epochs >= self.epochs {
            return bad("head-only epochs", FewerThanEpochs);
        }
        if !(0.0..=1.0).contains(&self.augment.strength) {
            return bad("augmentation strength", Between(0.0, 1.0));
        }
        if !(self.adapt.weight > 0.0 && self.adapt.weight <= 10.0) {
            return bad("adaptation strength", AboveZeroAtMost(10.0));
        }
        Ok(())
    }

    /// Checks the settings that depend on the backbone: `unfreeze` up to its `blocks`.
    pub fn validate_for(&self, blocks: usize) -> Result<()> {
        self.validate()?;
        if self.unfreeze > blocks {
            let accepted = Accepted::UpToBlocks(blocks);
            return Err(GraftError::Settings(SettingProblem { setting: "unfrozen blocks", accepted }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bad_value_is_named() {
        assert!(TrainConfig::default().validate().is_ok());
        type Spoil = fn(&mut TrainConfig);
        let cases: [(&str, Spoil); 9] = [
            ("epochs", |c| c.epochs = 0),
            ("batch size", |c| c.batch_size = 0),
            ("learning rate", |c| c.learning_rate = f64::NAN),
            ("hidden units", |c| c.hidden = MAX_HIDDEN + 1),
            ("dropout", |c| c.dropout = 1.0),
            ("validation fraction", |c| c.val_fraction = 0.95),
            ("head-only epochs", |c| (c.unfreeze, c.head_epochs, c.epochs) = (2, 5, 5)),
            ("augmentation strength", |c| c.augment.strength = 2.0),
            ("adaptation strength", |c| c.adapt.weight = 0.0),
        ];
        for (name, spoil) in cases {
            let mut config = TrainConfig::default();
            spoil(&mut config);
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
        }
    }

    #[test]
    fn old_settings_without_a_backbone_rate_still_load() {
        let mut json = serde_json::to_value(TrainConfig::default()).unwrap();
        json.as_object_mut().unwrap().remove("backbone_learning_rate");
        let config: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.backbone_learning_rate, 1e-4);
        let mut json = serde_json::to_value(TrainConfig::default()).unwrap();
        for key in ["unfreeze", "head_epochs", "cosine_decay", "augment", "batch_norm", "adapt", "keep"] {
            json.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(serde_json::from_value::<TrainConfig>(json).unwrap(), TrainConfig::default());
        let unfreeze = TrainConfig { unfreeze: 20, ..TrainConfig::default() };
        assert!(unfreeze.validate_for(19).unwrap_err().to_string().contains("between 0 and 19"));
    }
}
