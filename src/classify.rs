//! ImageNet classification with a pretrained backbone and its original head: the smoke path
//! from image bytes to a top-k list, shared by the CLI and the browser worker.

use candle_core::{Device, Module, Tensor};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::embed::FeatureExtractor;
use crate::error::{GraftError, Result};
use crate::manifest::{parse_labels, ModelManifest};
use crate::model::LinearHead;
use crate::preprocess::InputSpec;

/// One ranked class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    pub prob: f32,
}

pub struct ImageNetClassifier {
    extractor: FeatureExtractor,
    head: LinearHead,
    labels: Vec<String>,
}

impl ImageNetClassifier {
    /// Checks `weights` against the manifest's sha256, then builds backbone and head.
    pub fn load(manifest: &ModelManifest, weights: Vec<u8>, labels: &str, device: &Device) -> Result<Self> {
        let labels = parse_labels(labels, manifest.num_classes)?;
        let (extractor, vb) = FeatureExtractor::load(manifest, weights, device)?;
        let head = LinearHead::load(manifest.feature_dim, manifest.num_classes, vb.pp("classifier").pp(1))
            .map_err(|e| GraftError::Weights(e.to_string()))?;
        Ok(Self { extractor, head, labels })
    }

    pub fn input_spec(&self) -> &InputSpec {
        self.extractor.input_spec()
    }

    pub fn extractor(&self) -> &FeatureExtractor {
        &self.extractor
    }

    /// Logits `(B, classes)` of a preprocessed batch `(B, 3, H, W)`.
    pub fn logits(&self, input: &Tensor) -> Result<Tensor> {
        let features = self.extractor.embed_tensor(input)?;
        Ok(self.head.forward(&features)?)
    }

    /// The `k` most probable classes of each image.
    pub fn top_k(&self, images: &[RgbImage], k: usize) -> Result<Vec<Vec<Prediction>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let features = self.extractor.embed(images)?;
        let probs = candle_nn::ops::softmax_last_dim(&self.head.forward(&features)?)?;
        let probs: Vec<Vec<f32>> = probs.to_vec2()?;
        Ok(probs.iter().map(|p| self.rank(p, k)).collect())
    }

    fn rank(&self, probs: &[f32], k: usize) -> Vec<Prediction> {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        order
            .into_iter()
            .take(k)
            .map(|index| Prediction { label: self.labels[index].clone(), index, prob: probs[index] })
            .collect()
    }
}
