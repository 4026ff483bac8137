//! One training step behind one interface, as [`crate::exec::Executor`] is for inference:
//! [`TrainStep`] steps a batch, scores rows, snapshots and restores the weights, sets each
//! group's learning rate and lets the unfrozen blocks learn or not. The [`super::Trainer`]
//! drives it with the schedule (split, epochs, stages, cosine, best epoch, divergence) and
//! never asks which device runs.
//!
//! Implementations: [`super::CandleStep`] (Candle's ops and AdamW, on the CPU: the reference),
//! and [`super::GpuStep`] (the WGSL kernels, weights resident on the GPU), both fed the same
//! batches, dropout masks and target rows, so that a seed gives the same run on either.
//! [`super::FallbackStep`] holds both: the GPU when one is attached, the Candle step always; a
//! GPU failure redoes the work item in Candle, which holds the weights of the last snapshot,
//! and stays there.

use std::collections::HashMap;
use std::future::Future;

use candle_core::Tensor;

use super::config::TrainConfig;
use super::data::TrainData;
use crate::error::Result;

/// Weights by name (the names of the checkpoint and of the model file).
pub type Weights = HashMap<String, Tensor>;

/// One training batch: which samples, which of their inputs, the dropout mask and, when
/// adapting, as many unlabelled target rows.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Sample indices into [`TrainData::labels`].
    pub samples: &'a [usize],
    /// The plain inputs (`None`) or augmented view `v` ([`TrainData::views`]).
    pub view: Option<usize>,
    /// The dropout mask `(samples, hidden)`: 0 or `1 / (1 - p)`; `None` without dropout.
    pub dropout_mask: Option<&'a [f32]>,
    /// The target half of an adapting step.
    pub target: Option<TargetBatch<'a>>,
}

/// Rows of [`TrainData::target`] paired with a batch, and the gradient reversal's coefficient.
#[derive(Debug, Clone, Copy)]
pub struct TargetBatch<'a> {
    pub rows: &'a [usize],
    pub lambda: f64,
}

/// The learning rates of the parameter groups: the head's, and the unfrozen blocks' once they
/// learn. (An adapting run's domain classifier keeps the configured rate.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub head: f64,
    pub blocks: f64,
}

impl Rates {
    /// The configured rates (before any decay).
    pub fn of(config: &TrainConfig) -> Self {
        Self { head: config.learning_rate, blocks: config.backbone_learning_rate }
    }
}

/// The mean cross-entropy of scored rows and each row's predicted class.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub loss: f32,
    pub predicted: Vec<usize>,
}

/// Where a run trains. `Display` is the badge the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainDevice {
    /// Candle on the CPU; `reason` says why when a GPU was wanted.
    Cpu {
        reason: Option<String>,
    },
    Webgpu {
        adapter: String,
    },
}

impl std::fmt::Display for TrainDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainDevice::Webgpu { adapter } => write!(f, "WebGPU · {adapter}"),
            TrainDevice::Cpu { reason: Some(why) } => write!(f, "CPU ({why})"),
            TrainDevice::Cpu { reason: None } => f.write_str("CPU"),
        }
    }
}

/// A training step on some device. Asynchronous at the boundary, as the GPU's readbacks are.
pub trait TrainStep {
    fn device(&self) -> TrainDevice;

    /// One AdamW step of every learning group on `batch`; when adapting, how many of the
    /// `2 x samples` domains the domain classifier got right.
    fn train_batch(&mut self, data: &TrainData, batch: &Batch<'_>) -> impl Future<Output = Result<Option<usize>>>;

    /// The plain inputs of `samples` in inference mode.
    fn score(&mut self, data: &TrainData, samples: &[usize]) -> impl Future<Output = Result<Scored>>;

    /// Copies of every weight the run may change: the head's, and the unfrozen blocks'
    /// (batch-norm statistics included). The trainer snapshots exactly the weights it keeps,
    /// which [`super::FallbackStep`] relies on.
    fn snapshot(&mut self) -> impl Future<Output = Result<Weights>>;

    /// Sets every weight named in `weights` (as [`Self::snapshot`] gave them). The GPU step keeps
    /// its blocks' batch-norm statistics, which are constants of its passes (frozen batch norm).
    fn restore(&mut self, weights: &Weights) -> Result<()>;

    /// The groups' rates from the next step on.
    fn set_learning_rates(&mut self, rates: Rates);

    /// Whether the unfrozen blocks learn from the next step on; when they join, their AdamW
    /// starts afresh. Errs for a run without blocks.
    fn set_blocks_learn(&mut self, learns: bool) -> Result<()>;
}
