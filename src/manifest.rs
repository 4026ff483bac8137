//! The JSON manifest served next to a model's weights: what the browser and the CLI need to
//! know to load and feed the model, and the checksum the weights must match.

use serde::{Deserialize, Serialize};

use crate::error::{GraftError, Result};
use crate::preprocess::InputSpec;

/// Where the weights came from (the pinned registry package).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsSource {
    pub package: String,
    pub file: String,
    pub sha256: String,
    pub license: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub id: String,
    pub display_name: String,
    /// Side of the square network input, in pixels.
    pub input_size: u32,
    pub input: InputSpec,
    pub feature_dim: usize,
    pub num_classes: usize,
    /// Weights file name, relative to the manifest.
    pub weights: String,
    pub weights_bytes: u64,
    pub sha256: String,
    /// Class-label file (one label a line), relative to the manifest.
    pub labels: String,
    pub source: WeightsSource,
}

impl ModelManifest {
    /// The manifest of MobileNetV2 1.0 ImageNet converted to `weights`.
    pub fn mobilenet_v2(weights: &str, weights_bytes: u64, sha256: String, source: WeightsSource) -> Self {
        Self {
            id: "mobilenet_v2".into(),
            display_name: "MobileNetV2 1.0 (ImageNet)".into(),
            input_size: 224,
            input: InputSpec::imagenet(),
            feature_dim: crate::model::mobilenet_v2::FEATURE_DIM,
            num_classes: 1000,
            weights: weights.into(),
            weights_bytes,
            sha256,
            labels: "imagenet_classes.txt".into(),
            source,
        }
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| GraftError::Manifest(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Parses a label file (one label a line) and checks it has `expected` labels.
pub fn parse_labels(text: &str, expected: usize) -> Result<Vec<String>> {
    let labels: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if labels.len() != expected {
        return Err(GraftError::Manifest(format!(
            "the label file has {} labels, the model {expected} classes",
            labels.len()
        )));
    }
    Ok(labels)
}
