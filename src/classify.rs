//! Classification with a backbone's pretrained classifier (ImageNet): the smoke path from
//! image bytes to a top-k list, shared by the CLI and the browser worker. The classifier is
//! optional in a manifest; a backbone without one still embeds and trains.

use candle_core::{Device, Module, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::embed::FeatureExtractor;
use crate::error::{GraftError, Result};
use crate::manifest::{parse_labels, ModelManifest};
use crate::model::LinearHead;

/// One ranked class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    pub prob: f32,
}

/// The pretrained classifier on pooled features, with its labels.
pub struct PretrainedHead {
    head: LinearHead,
    labels: Vec<String>,
}

impl PretrainedHead {
    /// The manifest's classifier from the opened weights, or `None` if it names none.
    pub fn load(manifest: &ModelManifest, vb: &VarBuilder<'static>, labels: &str) -> Result<Option<Self>> {
        let Some(spec) = &manifest.classifier else {
            return Ok(None);
        };
        let labels = parse_labels(labels, spec.num_classes)?;
        let head = LinearHead::load(manifest.feature_dim, spec.num_classes, vb.pp(&spec.tensors))
            .map_err(|e| GraftError::Weights(e.to_string()))?;
        Ok(Some(Self { head, labels }))
    }

    /// Logits `(B, classes)` of features `(B, D)`.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        Ok(self.head.forward(features)?)
    }

    /// The `k` most probable classes of each row of `features`.
    pub fn top_k(&self, features: &Tensor, k: usize) -> Result<Vec<Vec<Prediction>>> {
        let probs = candle_nn::ops::softmax_last_dim(&self.logits(features)?)?;
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

/// A backbone with its pretrained classifier.
pub struct ImageNetClassifier {
    extractor: FeatureExtractor,
    head: PretrainedHead,
}

impl ImageNetClassifier {
    /// Checks `weights` against the manifest's sha256, then builds backbone and classifier.
    pub fn load(manifest: &ModelManifest, weights: Vec<u8>, labels: &str, device: &Device) -> Result<Self> {
        let vb = manifest.open_weights(weights, device)?;
        let head = PretrainedHead::load(manifest, &vb, labels)?
            .ok_or_else(|| GraftError::Manifest(format!("{} has no pretrained classifier", manifest.display_name)))?;
        Ok(Self { extractor: FeatureExtractor::new(manifest, &vb, device)?, head })
    }

    pub fn extractor(&self) -> &FeatureExtractor {
        &self.extractor
    }

    pub fn extractor_mut(&mut self) -> &mut FeatureExtractor {
        &mut self.extractor
    }

    /// Logits `(B, classes)` of a preprocessed batch `(B, 3, H, W)`.
    pub async fn logits(&self, input: &Tensor) -> Result<Tensor> {
        self.head.logits(&self.extractor.embed_tensor(input).await?)
    }

    /// The `k` most probable classes of each image.
    pub async fn top_k(&self, images: &[RgbImage], k: usize) -> Result<Vec<Vec<Prediction>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        self.head.top_k(&self.extractor.embed(images).await?, k)
    }
}
