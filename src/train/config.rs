//! Training settings, with the one place that says which values are acceptable.

use serde::{Deserialize, Serialize};

use crate::error::{GraftError, Result};

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
        let bad = |what: &str, accepted: &str| Err(GraftError::Settings(format!("{what} must be {accepted}")));
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad("epochs", &format!("between 1 and {MAX_EPOCHS}"));
        }
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            return bad("batch size", &format!("between 1 and {MAX_BATCH}"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning rate", "above 0 and at most 1");
        }
        if !(self.backbone_learning_rate > 0.0 && self.backbone_learning_rate <= 1.0) {
            return bad("backbone learning rate", "above 0 and at most 1");
        }
        if self.hidden > MAX_HIDDEN {
            return bad("hidden units", &format!("between 0 (linear head) and {MAX_HIDDEN}"));
        }
        if !(0.0..0.95).contains(&self.dropout) {
            return bad("dropout", "at least 0 and below 0.95");
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            return bad("weight decay", "between 0 and 1");
        }
        if !(0.0..=0.9).contains(&self.val_fraction) {
            return bad("validation fraction", "between 0 and 0.9");
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
        let cases: [(&str, Spoil); 6] = [
            ("epochs", |c| c.epochs = 0),
            ("batch size", |c| c.batch_size = 0),
            ("learning rate", |c| c.learning_rate = f64::NAN),
            ("hidden units", |c| c.hidden = MAX_HIDDEN + 1),
            ("dropout", |c| c.dropout = 1.0),
            ("validation fraction", |c| c.val_fraction = 0.95),
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
    }
}
