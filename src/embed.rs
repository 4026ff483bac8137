//! Feature extraction: a frozen pretrained backbone turning images into embeddings,
//! `RGB images -> (N, feature_dim)`. The embeddings of each image are computed once and
//! cached by the caller; heads train on them.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;

use crate::error::{GraftError, Result};
use crate::manifest::ModelManifest;
use crate::model::{FoldedMobileNetV2, MobileNetV2};
use crate::preprocess::{images_to_tensor, InputSpec};
use crate::weights::verify_sha256;

pub struct FeatureExtractor {
    /// The differentiable Candle model (fine-tuning, and the twin of `folded`).
    backbone: MobileNetV2,
    /// The same weights folded for fast frozen inference: what `embed` runs.
    folded: FoldedMobileNetV2,
    input: InputSpec,
    feature_dim: usize,
    device: Device,
}

impl FeatureExtractor {
    /// Checks `weights` against the manifest's sha256 and builds the backbone. Also returns
    /// the VarBuilder so that a caller can load heads stored in the same file.
    pub fn load(manifest: &ModelManifest, weights: Vec<u8>, device: &Device) -> Result<(Self, VarBuilder<'static>)> {
        verify_sha256(&manifest.weights, &weights, &manifest.sha256)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, device)
            .map_err(|e| GraftError::Weights(e.to_string()))?;
        let backbone = MobileNetV2::load(vb.clone()).map_err(|e| GraftError::Weights(e.to_string()))?;
        let folded = FoldedMobileNetV2::new(&backbone).map_err(|e| GraftError::Weights(e.to_string()))?;
        let extractor = Self {
            backbone,
            folded,
            input: manifest.input.clone(),
            feature_dim: manifest.feature_dim,
            device: device.clone(),
        };
        Ok((extractor, vb))
    }

    pub fn input_spec(&self) -> &InputSpec {
        &self.input
    }

    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The Candle backbone, for training through it.
    pub fn backbone(&self) -> &MobileNetV2 {
        &self.backbone
    }

    /// The folded fast path (for profiling it).
    pub fn folded(&self) -> &FoldedMobileNetV2 {
        &self.folded
    }

    /// Threads the fast path spreads a batch's images over (every core by default, natively).
    pub fn set_threads(&mut self, threads: usize) {
        self.folded.set_threads(threads);
    }

    /// Embeddings `(B, feature_dim)` of a preprocessed batch `(B, 3, H, W)`: by the folded
    /// fast path on the CPU, by the Candle model on other devices.
    pub fn embed_tensor(&self, input: &Tensor) -> Result<Tensor> {
        if input.device().is_cpu() {
            Ok(self.folded.forward_features(input)?)
        } else {
            Ok(self.backbone.forward_features(input)?)
        }
    }

    /// Embeddings `(N, feature_dim)` of images.
    pub fn embed(&self, images: &[RgbImage]) -> Result<Tensor> {
        if images.is_empty() {
            return Ok(Tensor::zeros((0, self.feature_dim), DType::F32, &self.device)?);
        }
        self.embed_tensor(&images_to_tensor(images, &self.input, &self.device)?)
    }
}
