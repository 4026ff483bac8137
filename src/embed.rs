//! Feature extraction: a frozen pretrained backbone turning images into embeddings,
//! `RGB images -> (N, feature_dim)`, run by an executor ([`crate::exec`]); and the cache of
//! embeddings, keyed by the backbone that made them.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::backbone::{Backbone, BackboneKey};
use crate::error::{GraftError, Result};
use crate::exec::{Backend, BackendStatus, CpuExecutor, Executor, FeatureMap, FoldedPlan};
use crate::gpu::BackendChoice;
use crate::manifest::ModelManifest;
use crate::preprocess::{images_to_tensor, InputSpec};

pub struct FeatureExtractor {
    /// The differentiable Candle model (fine-tuning, and the executors' twin).
    backbone: Backbone,
    /// Who runs the frozen blocks (the GPU or the CPU, with the fallback): what `embed` uses.
    executor: Backend,
    key: BackboneKey,
    device: Device,
}

impl FeatureExtractor {
    /// Checks `weights` against the manifest's sha256 and builds the backbone.
    pub fn load(manifest: &ModelManifest, weights: Vec<u8>, device: &Device) -> Result<Self> {
        Self::new(manifest, &manifest.open_weights(weights, device)?, device)
    }

    /// The backbone of `manifest` from weights already opened ([`ModelManifest::open_weights`]),
    /// on the CPU executor.
    pub fn new(manifest: &ModelManifest, vb: &VarBuilder<'static>, device: &Device) -> Result<Self> {
        let weights_error = |e: candle_core::Error| GraftError::Weights(e.to_string());
        let backbone =
            Backbone::load(manifest.architecture, manifest.input.clone(), vb.clone()).map_err(weights_error)?;
        if backbone.feature_dim() != manifest.feature_dim {
            return Err(GraftError::Manifest(format!(
                "feature_dim is {}, but {} makes {}",
                manifest.feature_dim,
                manifest.architecture,
                backbone.feature_dim()
            )));
        }
        let plan = FoldedPlan::from_backbone(&backbone).map_err(weights_error)?;
        let executor = Backend::new(CpuExecutor::new(Arc::new(plan)));
        Ok(Self { backbone, executor, key: manifest.backbone_key(), device: device.clone() })
    }

    /// Which backbone and weights make these embeddings.
    pub fn key(&self) -> &BackboneKey {
        &self.key
    }

    pub fn input_spec(&self) -> &InputSpec {
        self.backbone.input_spec()
    }

    pub fn feature_dim(&self) -> usize {
        self.backbone.feature_dim()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The Candle backbone, for training through it.
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    pub fn executor(&self) -> &Backend {
        &self.executor
    }

    /// The CPU executor (benchmarks; the fallback of every GPU failure).
    pub fn cpu_executor(&self) -> &CpuExecutor {
        self.executor.cpu()
    }

    /// The CPU executor, to set its threads.
    pub fn cpu_executor_mut(&mut self) -> &mut CpuExecutor {
        self.executor.cpu_mut()
    }

    /// Moves the blocks to the backend `choice` asks for (see [`Backend::select`]).
    pub async fn select_backend(&self, choice: BackendChoice) -> Result<BackendStatus> {
        self.executor.select(choice).await
    }

    /// Embeddings `(B, feature_dim)` of a preprocessed batch `(B, 3, H, W)`.
    pub async fn embed_tensor(&self, input: &Tensor) -> Result<Tensor> {
        self.executor.features(input).await
    }

    /// Embeddings `(N, feature_dim)` of images.
    pub async fn embed(&self, images: &[RgbImage]) -> Result<Tensor> {
        if images.is_empty() {
            return Ok(Tensor::zeros((0, self.feature_dim()), DType::F32, &self.device)?);
        }
        self.embed_tensor(&images_to_tensor(images, self.input_spec(), &self.device)?).await
    }

    /// The activations entering block `boundary` of a preprocessed batch `(B, 3, H, W)`: the
    /// frozen prefix `0..boundary`, whose output feeds a trainable suffix.
    pub async fn activations(&self, input: &Tensor, boundary: usize) -> Result<FeatureMap> {
        self.executor.run(&FeatureMap::from_nchw(input)?, 0..boundary).await
    }
}

/// Runs a future to its end on this thread: for synchronous callers (the CLI, the benchmark,
/// tests) of the CPU executor, whose futures are ready at once. In the browser, await instead:
/// a future that waits there (GPU readback) could never be woken on the blocked thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// Embeddings by sample id, all made by one backbone with one set of weights. Inserting a
/// row from another backbone is an error, so features of two backbones never mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingCache {
    key: BackboneKey,
    dim: usize,
    rows: BTreeMap<u64, Vec<f32>>,
}

impl EmbeddingCache {
    pub fn new(key: BackboneKey, dim: usize) -> Self {
        Self { key, dim, rows: BTreeMap::new() }
    }

    pub fn key(&self) -> &BackboneKey {
        &self.key
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Stores the embedding of sample `id`, made by backbone `key`.
    pub fn insert(&mut self, key: &BackboneKey, id: u64, row: Vec<f32>) -> Result<()> {
        self.check_key(key)?;
        if row.len() != self.dim {
            return Err(GraftError::Training(format!("an embedding of {} values, expected {}", row.len(), self.dim)));
        }
        self.rows.insert(id, row);
        Ok(())
    }

    pub fn get(&self, id: u64) -> Option<&[f32]> {
        self.rows.get(&id).map(Vec::as_slice)
    }

    pub fn remove(&mut self, id: u64) -> bool {
        self.rows.remove(&id).is_some()
    }

    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.rows.keys().copied()
    }

    /// Adds every row of `other` (an imported cache), which must come from the same backbone.
    pub fn merge(&mut self, other: EmbeddingCache) -> Result<Vec<u64>> {
        self.check_key(&other.key)?;
        if other.dim != self.dim {
            return Err(GraftError::BadFile { what: "embedding cache", reason: format!("{} values a row", other.dim) });
        }
        let ids: Vec<u64> = other.rows.keys().copied().collect();
        if let Some((id, _)) = other.rows.iter().find(|(_, row)| row.len() != self.dim) {
            return Err(GraftError::BadFile {
                what: "embedding cache",
                reason: format!("row {id} has the wrong length"),
            });
        }
        self.rows.extend(other.rows);
        Ok(ids)
    }

    fn check_key(&self, key: &BackboneKey) -> Result<()> {
        if key == &self.key {
            Ok(())
        } else {
            Err(GraftError::BackboneMismatch { expected: self.key.to_string(), found: key.to_string() })
        }
    }
}
