//! ImageNet classification with a pretrained backbone and its original head: the smoke path
//! from image bytes to a top-k list, shared by the CLI and the browser worker.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{GraftError, Result};
use crate::manifest::{parse_labels, ModelManifest};
use crate::model::{LinearHead, MobileNetV2};
use crate::preprocess::{images_to_tensor, InputSpec};
use crate::weights::verify_sha256;

/// One ranked class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    pub prob: f32,
}

pub struct ImageNetClassifier {
    backbone: MobileNetV2,
    head: LinearHead,
    labels: Vec<String>,
    input: InputSpec,
    device: Device,
}

impl ImageNetClassifier {
    /// Checks `weights` against the manifest's sha256, then builds backbone and head.
    pub fn load(manifest: &ModelManifest, weights: Vec<u8>, labels: &str, device: &Device) -> Result<Self> {
        verify_sha256(&manifest.weights, &weights, &manifest.sha256)?;
        let labels = parse_labels(labels, manifest.num_classes)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, device)
            .map_err(|e| GraftError::Weights(e.to_string()))?;
        let backbone = MobileNetV2::load(vb.clone()).map_err(|e| GraftError::Weights(e.to_string()))?;
        let head = LinearHead::load(manifest.feature_dim, manifest.num_classes, vb.pp("classifier").pp(1))
            .map_err(|e| GraftError::Weights(e.to_string()))?;
        Ok(Self {
            backbone,
            head,
            labels,
            input: manifest.input.clone(),
            device: device.clone(),
        })
    }

    pub fn input_spec(&self) -> &InputSpec {
        &self.input
    }

    /// Logits `(B, classes)` of a preprocessed batch `(B, 3, H, W)`.
    pub fn logits(&self, input: &Tensor) -> Result<Tensor> {
        let features = self.backbone.forward_features(input)?;
        Ok(self.head.forward(&features)?)
    }

    /// The `k` most probable classes of each image.
    pub fn top_k(&self, images: &[RgbImage], k: usize) -> Result<Vec<Vec<Prediction>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let input = images_to_tensor(images, &self.input, &self.device)?;
        let probs = candle_nn::ops::softmax_last_dim(&self.logits(&input)?)?;
        let probs: Vec<Vec<f32>> = probs.to_vec2()?;
        Ok(probs.iter().map(|p| self.rank(p, k)).collect())
    }

    fn rank(&self, probs: &[f32], k: usize) -> Vec<Prediction> {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        order
            .into_iter()
            .take(k)
            .map(|index| Prediction {
                label: self.labels[index].clone(),
                index,
                prob: probs[index],
            })
            .collect()
    }
}
