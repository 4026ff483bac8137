//! The JSON manifest served next to a model's weights: which architecture, how to feed it,
//! the checksum the weights must match, and the optional pretrained classifier. This file and
//! [`crate::backbone::Architecture`] are the only places that name a model; everything else
//! reads the manifest.

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::backbone::{Architecture, BackboneKey};
use crate::error::{GraftError, Result};
use crate::preprocess::InputSpec;
use crate::weights::verify_sha256;

/// Where the weights came from (the pinned registry package).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsSource {
    pub package: String,
    pub file: String,
    pub sha256: String,
    pub license: String,
}

/// The pretrained classifier stored in the same weights file (ImageNet's, for the "what does
/// the model see" view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSpec {
    /// Prefix of its `weight` and `bias` in the weights file.
    pub tensors: String,
    pub num_classes: usize,
    /// Class-label file (one label a line), relative to the manifest.
    pub labels: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub architecture: Architecture,
    pub display_name: String,
    pub input: InputSpec,
    pub feature_dim: usize,
    /// Weights file name, relative to the manifest.
    pub weights: String,
    pub weights_bytes: u64,
    pub sha256: String,
    #[serde(default)]
    pub classifier: Option<ClassifierSpec>,
    pub source: WeightsSource,
}

/// The manifest file of `architecture` in a model folder.
pub fn manifest_file(architecture: Architecture) -> String {
    format!("{}.json", architecture.id())
}

/// The converted weights file of `architecture` in a model folder.
pub fn weights_file(architecture: Architecture) -> String {
    format!("{}.safetensors", architecture.id())
}

impl ModelManifest {
    /// The manifest of `architecture`'s ImageNet weights converted to [`weights_file`].
    pub fn imagenet(architecture: Architecture, weights_bytes: u64, sha256: String, source: WeightsSource) -> Self {
        let (input, tensors) = match architecture {
            Architecture::MobileNetV2 => (InputSpec::imagenet(), "classifier.1"),
            Architecture::EfficientNetLite0 => (InputSpec::efficientnet_lite(), "_fc"),
        };
        Self {
            architecture,
            display_name: format!("{} (ImageNet)", architecture.display_name()),
            input,
            feature_dim: architecture.config().feature_dim(),
            weights: weights_file(architecture),
            weights_bytes,
            sha256,
            classifier: Some(ClassifierSpec {
                tensors: tensors.into(),
                num_classes: 1000,
                labels: "imagenet_classes.txt".into(),
            }),
            source,
        }
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| GraftError::Manifest(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// What embeddings made with these weights are keyed by.
    pub fn backbone_key(&self) -> BackboneKey {
        BackboneKey { architecture: self.architecture, weights_sha256: self.sha256.to_ascii_lowercase() }
    }

    /// Checks `weights` against the sha256 and opens them for building the backbone and heads.
    pub fn open_weights(&self, weights: Vec<u8>, device: &Device) -> Result<VarBuilder<'static>> {
        verify_sha256(&self.weights, &weights, &self.sha256)?;
        VarBuilder::from_buffered_safetensors(weights, DType::F32, device)
            .map_err(|e| GraftError::Weights(e.to_string()))
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
