//! Executors: who runs a backbone's frozen blocks, and on what.
//!
//! A [`plan::FoldedPlan`] (weights folded and laid out, backend-neutral) is run by an
//! [`Executor`] over a range of blocks: `run(x, 0..k)` is the frozen prefix up to a freeze
//! boundary, `run(x, k..n)` the rest, and `run(x, 0..n)` then a spatial mean the features.
//! Activations between calls are [`FeatureMap`]s, `(B, H, W, C)` in NHWC.
//!
//! The interface is asynchronous at the boundary: the CPU executor ([`cpu::CpuExecutor`])
//! answers at once, a WebGPU executor answers when its `map_async` readback resolves; callers
//! await either the same way through [`AnyExecutor`].

pub mod cpu;
pub mod plan;
pub mod profile;

use std::future::Future;
use std::ops::Range;

use candle_core::{Device, Result, Tensor};

pub use cpu::CpuExecutor;
pub use plan::FoldedPlan;

/// A batch of activations in NHWC: `data[((b * height + y) * width + x) * channels + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMap {
    pub data: Vec<f32>,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl FeatureMap {
    /// From an NCHW tensor (a preprocessed batch, or Candle's activations).
    pub fn from_nchw(x: &Tensor) -> Result<Self> {
        let (batch, channels, height, width) = x.dims4()?;
        let data = x.permute((0, 2, 3, 1))?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { data, batch, height, width, channels })
    }

    /// As an NCHW tensor (to hand to Candle: trainable blocks, the reference twin).
    pub fn to_nchw(&self, device: &Device) -> Result<Tensor> {
        let (b, h, w, c) = (self.batch, self.height, self.width, self.channels);
        Tensor::from_slice(&self.data, (b, h, w, c), device)?.permute((0, 3, 1, 2))?.contiguous()
    }

    /// Values of one image, `(H, W, C)`.
    pub fn image(&self, index: usize) -> &[f32] {
        let len = self.height * self.width * self.channels;
        &self.data[index * len..(index + 1) * len]
    }

    /// Spatial mean per image and channel: `(B, C)` row-major.
    pub fn pooled(&self) -> Vec<f32> {
        (0..self.batch).flat_map(|b| spatial_mean(self.image(b), self.channels)).collect()
    }
}

/// Mean over pixels of one `(H, W, C)` activation.
pub(crate) fn spatial_mean(data: &[f32], channels: usize) -> Vec<f32> {
    let mut sum = vec![0f32; channels];
    for pixel in data.chunks_exact(channels) {
        sum.iter_mut().zip(pixel).for_each(|(s, v)| *s += v);
    }
    let n = (data.len() / channels.max(1)).max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

/// Runs a plan's blocks. Asynchronous so that executors whose results come back later (GPU
/// readback) fit beside the CPU one.
pub trait Executor {
    /// What the page shows as the compute backend.
    fn describe(&self) -> String;

    fn num_blocks(&self) -> usize;

    /// Blocks `blocks` of the plan on `x`.
    fn run(&self, x: &FeatureMap, blocks: Range<usize>) -> impl Future<Output = Result<FeatureMap>>;

    /// Pooled features `(B, feature_dim)` of a preprocessed batch `(B, 3, H, W)`: every block,
    /// then the spatial mean.
    fn features(&self, x: &Tensor) -> impl Future<Output = Result<Tensor>>;
}

/// Every executor the engine has, behind the one interface.
#[derive(Debug)]
pub enum AnyExecutor {
    Cpu(CpuExecutor),
}

impl Executor for AnyExecutor {
    fn describe(&self) -> String {
        match self {
            AnyExecutor::Cpu(e) => e.describe(),
        }
    }

    fn num_blocks(&self) -> usize {
        match self {
            AnyExecutor::Cpu(e) => e.num_blocks(),
        }
    }

    async fn run(&self, x: &FeatureMap, blocks: Range<usize>) -> Result<FeatureMap> {
        match self {
            AnyExecutor::Cpu(e) => e.run(x, blocks).await,
        }
    }

    async fn features(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            AnyExecutor::Cpu(e) => e.features(x).await,
        }
    }
}
