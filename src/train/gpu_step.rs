//! The training step on the GPU ([`crate::gpu::train::GpuHead`]): the head, and the unfrozen
//! blocks before it, with their weights and AdamW moments resident there, fed the same batches
//! as the Candle step.
//!
//! A head-only run keeps every input row on the GPU: the plain features `(N, D)`, then each
//! augmented view's (view `v` of sample `i` is row `(v + 1) N + i`), then the target rows of an
//! adapting run; a step gathers its rows. With blocks first, each pass writes its rows'
//! boundary activations (the target rows' after the source rows') before it runs, and scoring
//! goes in chunks of [`SCORE_CHUNK`] rows.

use std::collections::HashMap;

use candle_core::{Device, Shape, Tensor};

use super::candle_step::{CandleStep, SCORE_CHUNK};
use super::config::TrainConfig;
use super::data::{select_rows, TrainData};
use super::step::{Batch, Rates, Scored, TrainDevice, TrainStep, Weights};
use crate::error::{GraftError, Result};
use crate::gpu::suffix::GpuSuffix;
use crate::gpu::train::{DomainBatch, GpuHead, HeadInputs};
use crate::gpu::GpuContext;

/// See the module header.
pub struct GpuStep {
    head: GpuHead,
    /// The name and shape of every weight a snapshot returns, and the device of its tensors.
    shapes: Vec<(String, Shape)>,
    device: Device,
}

impl GpuStep {
    /// Uploads `cpu`'s current weights (and its domain classifier's), its rates and stage, and
    /// the inputs a head-only run keeps resident. Errs with [`GraftError::GpuUnavailable`] for what
    /// the kernels do not cover: blocks they have no kernel for, a linear head that adapts.
    pub async fn new(context: GpuContext, cpu: &CandleStep, data: &TrainData, config: &TrainConfig) -> Result<Self> {
        if cpu.domain_vars().is_some() && config.hidden == 0 {
            let why = "a linear head has no WebGPU kernels for domain adaptation, so it trains on the CPU";
            return Err(GraftError::GpuUnavailable(why.into()));
        }
        if let Some(why) = cpu.suffix().and_then(GpuSuffix::unsupported) {
            return Err(GraftError::GpuUnavailable(format!("{why}, so fine-tuning trains on the CPU")));
        }
        let initial = flat_values(cpu.head_vars())?;
        let spec = cpu.head_spec();
        let (lr, wd) = (config.learning_rate, config.weight_decay);
        let mut head = match cpu.suffix() {
            Some(suffix) => {
                let (_, h, w, c) = data.inputs.dims4()?;
                let inputs = HeadInputs::Suffix { suffix, boundary: (h, w, c) };
                let mut head = GpuHead::new(context, spec, &initial, inputs, &data.labels, lr, wd).await?;
                head.set_suffix_learns(cpu.blocks_learn())?;
                head
            }
            None => {
                let all: Vec<Tensor> = std::iter::once(&data.inputs).chain(&data.views).cloned().collect();
                let labels = data.labels.repeat(all.len());
                let target = cpu.domain_vars().and(data.target.clone());
                let features = Tensor::cat(&[all, target.into_iter().collect()].concat(), 0)?;
                let features = features.flatten_all()?.to_vec1::<f32>()?;
                GpuHead::new(context, spec, &initial, HeadInputs::Features(&features), &labels, lr, wd).await?
            }
        };
        if let Some(domain) = cpu.domain_vars() {
            head.adapt(&flat_values(domain)?, config.learning_rate).await?;
        }
        let rates = cpu.rates();
        head.set_learning_rates(&[rates.head, rates.blocks]);
        let device = data.inputs.device().clone();
        Ok(Self { head, shapes: cpu.weight_shapes(), device })
    }

    /// The GPU's rows for `samples` (offset into the resident views of a head-only run) and,
    /// when blocks come first, their boundary activations (of `view`, or the plain ones).
    fn rows(&self, data: &TrainData, samples: &[usize], view: Option<usize>) -> Result<(Vec<usize>, Option<Vec<f32>>)> {
        let inputs = data.inputs_of(view)?;
        if self.head.has_suffix() {
            let values = select_rows(inputs, samples)?.flatten_all()?.to_vec1::<f32>()?;
            return Ok((samples.to_vec(), Some(values)));
        }
        let offset = view.map_or(0, |v| (v + 1) * data.labels.len());
        Ok((samples.iter().map(|&i| i + offset).collect(), None))
    }

    /// An adapting batch's target rows on the GPU: offset past the source rows and their views
    /// among the resident features, or, when blocks come first, with their boundary activations
    /// appended to `inputs`.
    fn target_rows(&self, data: &TrainData, rows: &[usize], inputs: Option<&mut Vec<f32>>) -> Result<Vec<usize>> {
        if let Some(inputs) = inputs {
            inputs.extend(data.target_rows(rows)?.flatten_all()?.to_vec1::<f32>()?);
            return Ok(rows.to_vec());
        }
        let offset = (1 + data.views.len()) * data.labels.len();
        Ok(rows.iter().map(|r| r + offset).collect())
    }
}

impl TrainStep for GpuStep {
    fn device(&self) -> TrainDevice {
        TrainDevice::Webgpu { adapter: self.head.context().adapter().name.clone() }
    }

    async fn train_batch(&mut self, data: &TrainData, batch: &Batch<'_>) -> Result<Option<usize>> {
        let (rows, mut inputs) = self.rows(data, batch.samples, batch.view)?;
        let target = match &batch.target {
            Some(target) => Some((self.target_rows(data, target.rows, inputs.as_mut())?, target.lambda)),
            None => None,
        };
        let domain = target.as_ref().map(|(target_rows, lambda)| DomainBatch { target_rows, lambda: *lambda });
        self.head.train_batch(&rows, inputs.as_deref(), batch.dropout_mask, domain).await
    }

    async fn score(&mut self, data: &TrainData, samples: &[usize]) -> Result<Scored> {
        let chunk = if self.head.has_suffix() { SCORE_CHUNK } else { samples.len().max(1) };
        let (mut total, mut predicted) = (0f64, Vec::with_capacity(samples.len()));
        for part in samples.chunks(chunk) {
            let (rows, inputs) = self.rows(data, part, None)?;
            let (loss, classes) = self.head.score(&rows, inputs.as_deref()).await?;
            total += loss as f64 * part.len() as f64;
            predicted.extend(classes);
        }
        Ok(Scored { loss: (total / samples.len().max(1) as f64) as f32, predicted })
    }

    async fn snapshot(&mut self) -> Result<Weights> {
        let mut values = self.head.weights().await?;
        let mut weights = HashMap::new();
        for (name, shape) in &self.shapes {
            let values = values.remove(name).ok_or_else(|| GraftError::Gpu(format!("{name} was not read back")))?;
            weights.insert(name.clone(), Tensor::from_vec(values, shape, &self.device)?);
        }
        Ok(weights)
    }

    fn restore(&mut self, weights: &Weights) -> Result<()> {
        let mut values = HashMap::new();
        for (name, tensor) in weights {
            values.insert(name.clone(), tensor.flatten_all()?.to_vec1::<f32>()?);
        }
        self.head.set_weights(&values)
    }

    fn set_learning_rates(&mut self, rates: Rates) {
        self.head.set_learning_rates(&[rates.head, rates.blocks]);
    }

    fn set_blocks_learn(&mut self, learns: bool) -> Result<()> {
        self.head.set_suffix_learns(learns)
    }
}

/// Variables by name, flattened: what the GPU uploads.
fn flat_values(vars: &[(String, candle_core::Var)]) -> Result<HashMap<String, Vec<f32>>> {
    vars.iter().map(|(name, var)| Ok((name.clone(), var.as_tensor().flatten_all()?.to_vec1::<f32>()?))).collect()
}
