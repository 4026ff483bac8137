//! What a run trains on, made from images: the frozen part of the backbone run once per image
//! (and per augmented view), its output kept in memory for every epoch. Without unfrozen
//! blocks that is the pooled features `(N, D)`; with them, the activations entering the first
//! unfrozen block `(N, h, w, C)` (NHWC), so an epoch runs only the trainable suffix.
//!
//! With augmentation each sample gets `K` precomputed random views (see [`crate::augment`]);
//! epoch `e` trains on view `e mod K`. Recomputing the frozen prefix on the fly would cost a
//! full forward pass per sample and epoch (most of an epoch's time when few blocks train),
//! so views are cached, `K` as large as [`CACHE_BUDGET_BYTES`] allows, at most [`MAX_VIEWS`].

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::config::TrainConfig;
use super::rng::SplitMix64;
use super::trainer::TrainData;
use crate::augment::{augmented_chw, random_view};
use crate::embed::FeatureExtractor;
use crate::error::{GraftError, Result};
use crate::preprocess::image_to_chw;

/// The most memory the inputs and their views may take (a 4 GB Chromebook's tab stays safe).
pub const CACHE_BUDGET_BYTES: usize = 384 << 20;
/// The most augmented views kept per sample.
pub const MAX_VIEWS: usize = 4;

/// Collects a run's inputs image batch by image batch (the browser worker adds a few per time
/// slice; the CLI everything at once).
pub struct InputBuilder {
    /// The first unfrozen block, or `None` for pooled features.
    boundary: Option<usize>,
    /// Augmentation strength, when augmenting.
    strength: Option<f32>,
    /// How many samples will be added in all (to size the views).
    expected: usize,
    /// Augmented views per sample, decided by the first batch (0 without augmentation).
    views: usize,
    rng: SplitMix64,
    /// `[plain, view 1, .., view K]`, each row after row.
    rows: Vec<Vec<f32>>,
    /// Shape of one row: `[D]` or `[h, w, C]`.
    row_shape: Vec<usize>,
    labels: Vec<usize>,
}

impl InputBuilder {
    /// For `expected` samples of a run with `config` on a backbone of `blocks` blocks.
    pub fn new(config: &TrainConfig, blocks: usize, expected: usize) -> Self {
        let boundary = (config.unfreeze > 0).then(|| blocks.saturating_sub(config.unfreeze));
        let strength = config.augment.enabled.then_some(config.augment.strength);
        Self {
            boundary,
            strength,
            expected: expected.max(1),
            views: 0,
            rng: SplitMix64::new(config.seed ^ 0x5eed_a0a0),
            rows: vec![Vec::new()],
            row_shape: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Samples added so far.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Augmented views per sample (0 before the first batch or without augmentation).
    pub fn views(&self) -> usize {
        self.views
    }

    /// Runs the frozen part on `images` (and their views) and keeps the rows with `labels`.
    pub async fn add(&mut self, extractor: &FeatureExtractor, images: &[RgbImage], labels: &[usize]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        let spec = extractor.input_spec();
        let crop = spec.crop as usize;
        if self.row_shape.is_empty() {
            let probe = Tensor::from_vec(image_to_chw(&images[0], spec), (1, 3, crop, crop), extractor.device())?;
            let (shape, _) = self.frozen(extractor, &probe).await?;
            self.decide_views(&shape)?;
        }
        let per_image = 1 + self.views;
        let mut data = Vec::with_capacity(images.len() * per_image * 3 * crop * crop);
        for image in images {
            data.extend(image_to_chw(image, spec));
            for _ in 0..self.views {
                let params = random_view(
                    image.width() as usize,
                    image.height() as usize,
                    self.strength.unwrap_or(0.0),
                    &mut self.rng,
                );
                data.extend(augmented_chw(image, spec, &params));
            }
        }
        let x = Tensor::from_vec(data, (images.len() * per_image, 3, crop, crop), extractor.device())?;
        let (_, values) = self.frozen(extractor, &x).await?;
        let row: usize = self.row_shape.iter().product();
        for (i, chunk) in values.chunks_exact(row).enumerate() {
            self.rows[i % per_image].extend_from_slice(chunk);
        }
        self.labels.extend_from_slice(labels);
        Ok(())
    }

    /// The frozen part's output of a preprocessed batch: one row's shape, and the rows.
    async fn frozen(&self, extractor: &FeatureExtractor, x: &Tensor) -> Result<(Vec<usize>, Vec<f32>)> {
        match self.boundary {
            None => {
                let features = extractor.embed_tensor(x).await?;
                Ok((vec![features.dim(1)?], features.flatten_all()?.to_vec1()?))
            }
            Some(k) => {
                let map = extractor.activations(x, k).await?;
                Ok((vec![map.height, map.width, map.channels], map.data))
            }
        }
    }

    /// `K` from the size of one row: as many views as the budget holds, at most [`MAX_VIEWS`],
    /// at least one when augmenting; the plain rows alone must fit.
    fn decide_views(&mut self, row_shape: &[usize]) -> Result<()> {
        let row_bytes = row_shape.iter().product::<usize>() * std::mem::size_of::<f32>();
        let plain = self.expected * row_bytes;
        if plain > CACHE_BUDGET_BYTES {
            return Err(GraftError::Training(format!(
                "{} images at the freeze boundary need {} MB, more than the {} MB the activation cache may use; unfreeze fewer blocks or train on fewer images",
                self.expected,
                plain >> 20,
                CACHE_BUDGET_BYTES >> 20
            )));
        }
        if self.strength.is_some() {
            self.views = (CACHE_BUDGET_BYTES / plain).saturating_sub(1).clamp(1, MAX_VIEWS);
        }
        self.rows = vec![Vec::new(); 1 + self.views];
        self.row_shape = row_shape.to_vec();
        Ok(())
    }

    /// The run's data: plain inputs, views, labels.
    pub fn finish(self, class_names: Vec<String>, device: &Device) -> Result<TrainData> {
        if self.labels.is_empty() {
            return Err(GraftError::Training("no images to train on".into()));
        }
        let mut shape = vec![self.labels.len()];
        shape.extend_from_slice(&self.row_shape);
        let mut tensors = self.rows.into_iter().map(|rows| Tensor::from_vec(rows, shape.as_slice(), device));
        let inputs = tensors.next().ok_or_else(|| GraftError::Training("no inputs".into()))??;
        let views = tensors.collect::<candle_core::Result<Vec<_>>>()?;
        Ok(TrainData { inputs, views, labels: self.labels, class_names, target: None })
    }
}
