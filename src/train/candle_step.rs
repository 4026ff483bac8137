//! The training step in Candle, on the CPU: the reference the GPU step is checked against.
//!
//! Logits = head(features), features = `x`, or the unfrozen blocks' pooled output of the
//! boundary activations `x (B, h, w, C)`. Cross-entropy, backward, then one AdamW per group
//! (the head; the blocks once they learn; the domain classifier of an adapting run). While the
//! blocks are frozen their output is detached, so that the backward pass stops at the head.
//! Adapting adds the DANN loss of the target rows through the gradient reversal
//! ([`super::dann`]). Scoring runs the blocks folded into the fast executor when it has kernels
//! for them, in chunks.

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};

use super::config::TrainConfig;
use super::dann::{dann_losses, DomainClassifier};
use super::data::{select_rows, TrainData};
use super::rng::SplitMix64;
use super::step::{Batch, Rates, Scored, TrainDevice, TrainStep, Weights};
use super::vars::named_vars;
use crate::backbone::TrainableSuffix;
use crate::error::{GraftError, Result};
use crate::exec::CpuExecutor;
use crate::model::{MlpHead, MlpHeadSpec};

/// Samples scored at a time: a whole split at once would hold every sample's activations in
/// the unfrozen blocks at the same time (hundreds of MB for a thousand images).
pub(crate) const SCORE_CHUNK: usize = 64;

/// Trainable variables that share a learning rate.
struct ParamGroup {
    vars: Vec<(String, Var)>,
    optimizer: AdamW,
}

impl ParamGroup {
    fn new(vars: Vec<(String, Var)>, learning_rate: f64, weight_decay: f64) -> Result<Self> {
        let params = ParamsAdamW { lr: learning_rate, weight_decay, ..Default::default() };
        let optimizer = AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), params)?;
        Ok(Self { vars, optimizer })
    }
}

/// The domain classifier of an adapting run and its optimizer (at the head's base rate).
struct Domain {
    classifier: DomainClassifier,
    group: ParamGroup,
}

/// What a [`CandleStep`] trains: the head's shape, the unfrozen blocks before it (frozen
/// until [`TrainStep::set_blocks_learn`]), and whether the run adapts.
pub struct StepSpec {
    pub head: MlpHeadSpec,
    pub suffix: Option<TrainableSuffix>,
    pub adapting: bool,
}

/// See the module header.
pub struct CandleStep {
    suffix: Option<TrainableSuffix>,
    head: MlpHead,
    head_vars: VarMap,
    hidden: usize,
    head_group: ParamGroup,
    /// The unfrozen blocks' group, while they learn.
    blocks_group: Option<ParamGroup>,
    domain: Option<Domain>,
    rates: Rates,
    weight_decay: f64,
}

impl CandleStep {
    /// The head (and the domain classifier) initialised as PyTorch's `nn.Linear` from `rng`,
    /// in that order; the blocks keep their pretrained values.
    pub fn new(spec: StepSpec, config: &TrainConfig, device: &Device, rng: &mut SplitMix64) -> Result<Self> {
        let head_vars = VarMap::new();
        let head = MlpHead::load(spec.head, VarBuilder::from_varmap(&head_vars, DType::F32, device))?;
        init_like_pytorch(&head_vars, rng)?;
        let weight_decay = config.weight_decay;
        let head_group = ParamGroup::new(named_vars(&head_vars)?, config.learning_rate, weight_decay)?;
        let domain = match spec.adapting {
            true => {
                let vars = VarMap::new();
                let in_dim = if spec.head.hidden > 0 { spec.head.hidden } else { spec.head.in_dim };
                let classifier = DomainClassifier::load(in_dim, VarBuilder::from_varmap(&vars, DType::F32, device))?;
                init_like_pytorch(&vars, rng)?;
                let group = ParamGroup::new(named_vars(&vars)?, config.learning_rate, weight_decay)?;
                Some(Domain { classifier, group })
            }
            false => None,
        };
        let rates = Rates::of(config);
        let hidden = spec.head.hidden;
        Ok(Self {
            suffix: spec.suffix,
            head,
            head_vars,
            hidden,
            head_group,
            blocks_group: None,
            domain,
            rates,
            weight_decay,
        })
    }

    /// The head's shape.
    pub fn head_spec(&self) -> MlpHeadSpec {
        self.head.spec()
    }

    /// The unfrozen blocks, if the run has some.
    pub fn suffix(&self) -> Option<&TrainableSuffix> {
        self.suffix.as_ref()
    }

    /// The groups' rates, as last set.
    pub fn rates(&self) -> Rates {
        self.rates
    }

    pub fn blocks_learn(&self) -> bool {
        self.blocks_group.is_some()
    }

    /// The head's variables by name, sorted (what the GPU uploads).
    pub fn head_vars(&self) -> &[(String, Var)] {
        &self.head_group.vars
    }

    /// The domain classifier's variables by name, when the run adapts.
    pub fn domain_vars(&self) -> Option<&[(String, Var)]> {
        self.domain.as_ref().map(|d| d.group.vars.as_slice())
    }

    /// The name and shape of every weight [`TrainStep::snapshot`] returns.
    pub fn weight_shapes(&self) -> Vec<(String, Shape)> {
        self.weights().map(|(name, var)| (name.clone(), var.shape().clone())).collect()
    }

    /// What the trained head is made of: its variables, the head, and the blocks.
    pub fn into_parts(self) -> (VarMap, MlpHead, Option<TrainableSuffix>) {
        (self.head_vars, self.head, self.suffix)
    }

    /// Every variable the run may change: the head's, and the unfrozen blocks' (batch-norm
    /// statistics included) whether or not they learn yet (a best epoch in the head-only stage
    /// restores their pretrained values).
    fn weights(&self) -> impl Iterator<Item = &(String, Var)> {
        self.head_group.vars.iter().chain(self.suffix.iter().flat_map(|s| s.tensors()))
    }

    /// The head's input: `x`, or the unfrozen blocks' pooled output; `training` is a
    /// training step (training-mode batch norm).
    fn features(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        Ok(match &self.suffix {
            Some(suffix) if self.blocks_learn() && training => suffix.forward_features_training(x)?,
            Some(suffix) if self.blocks_learn() => suffix.forward_features(x)?,
            // Detached: the backward pass stops at the head instead of running through
            // blocks whose gradients no optimizer uses.
            Some(suffix) => suffix.forward_features(x)?.detach(),
            None => x.clone(),
        })
    }

    /// The loss of `batch` to differentiate, and the domain hits of an adapting one.
    fn loss(&self, data: &TrainData, batch: &Batch<'_>) -> Result<(Tensor, Option<usize>)> {
        let x = select_rows(data.inputs_of(batch.view)?, batch.samples)?;
        let y = labels_of(data, batch.samples, x.device())?;
        let mask = match batch.dropout_mask {
            Some(values) => Some(Tensor::from_slice(values, (batch.samples.len(), self.hidden), x.device())?),
            None => None,
        };
        let Some(target) = &batch.target else {
            let logits = self.head.forward_with_mask(&self.features(&x, true)?, mask.as_ref())?;
            return Ok((candle_nn::loss::cross_entropy(&logits, &y)?, None));
        };
        let domain = self.domain.as_ref().ok_or_else(|| GraftError::Training("this run does not adapt".into()))?;
        let t = data.target_rows(target.rows)?;
        let h_source = self.head.features(&self.features(&x, true)?)?;
        let h_target = self.head.features(&self.features(&t, true)?)?;
        let logits = self.head.classify(&h_source, mask.as_ref())?;
        let losses = dann_losses(&logits, &y, (&h_source, &h_target), &domain.classifier, target.lambda)?;
        Ok((losses.total, Some(losses.domain_correct)))
    }
}

impl TrainStep for CandleStep {
    fn device(&self) -> TrainDevice {
        TrainDevice::Cpu { reason: None }
    }

    async fn train_batch(&mut self, data: &TrainData, batch: &Batch<'_>) -> Result<Option<usize>> {
        let (loss, hits) = self.loss(data, batch)?;
        let grads = loss.backward()?;
        let groups =
            [Some(&mut self.head_group), self.blocks_group.as_mut(), self.domain.as_mut().map(|d| &mut d.group)];
        for group in groups.into_iter().flatten() {
            group.optimizer.step(&grads)?;
        }
        Ok(hits)
    }

    async fn score(&mut self, data: &TrainData, samples: &[usize]) -> Result<Scored> {
        // The unfrozen blocks folded with their current weights into the fast executor score
        // them in inference mode (frozen statistics) 2-3x faster than the training ops.
        let executor = self.suffix.as_ref().and_then(|suffix| CpuExecutor::of_blocks(suffix.blocks()));
        let mut parts = Vec::new();
        for chunk in samples.chunks(SCORE_CHUNK) {
            let x = select_rows(&data.inputs, chunk)?;
            let features = match &executor {
                Some(executor) => executor.pooled_nhwc(&x)?,
                None => self.features(&x, false)?,
            };
            parts.push(self.head.forward_with_mask(&features, None)?.detach());
        }
        if parts.is_empty() {
            return Ok(Scored { loss: 0.0, predicted: Vec::new() });
        }
        let logits = Tensor::cat(&parts, 0)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels_of(data, samples, logits.device())?)?;
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        Ok(Scored { loss: loss.to_scalar::<f32>()?, predicted: predicted.into_iter().map(|p| p as usize).collect() })
    }

    async fn snapshot(&mut self) -> Result<Weights> {
        self.weights().map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?))).collect()
    }

    fn restore(&mut self, weights: &Weights) -> Result<()> {
        for (name, var) in self.weights() {
            if let Some(value) = weights.get(name) {
                var.set(value)?;
            }
        }
        Ok(())
    }

    fn set_learning_rates(&mut self, rates: Rates) {
        self.rates = rates;
        self.head_group.optimizer.set_learning_rate(rates.head);
        if let Some(group) = self.blocks_group.as_mut() {
            group.optimizer.set_learning_rate(rates.blocks);
        }
    }

    fn set_blocks_learn(&mut self, learns: bool) -> Result<()> {
        let Some(suffix) = &self.suffix else {
            return Err(GraftError::Training("this run has no unfrozen blocks".into()));
        };
        self.blocks_group = match (learns, self.blocks_group.take()) {
            (true, Some(group)) => Some(group),
            (true, None) => Some(ParamGroup::new(suffix.vars().to_vec(), self.rates.blocks, self.weight_decay)?),
            (false, _) => None,
        };
        Ok(())
    }
}

/// The labels of `samples` as a `u32` tensor.
fn labels_of(data: &TrainData, samples: &[usize], device: &Device) -> Result<Tensor> {
    let y: Vec<u32> = samples.iter().map(|&i| data.labels[i] as u32).collect();
    Ok(Tensor::new(y.as_slice(), device)?)
}

/// PyTorch's `nn.Linear` initialisation, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weight and
/// bias, drawn from the seeded generator so that a seed reproduces a run.
fn init_like_pytorch(varmap: &VarMap, rng: &mut SplitMix64) -> Result<()> {
    let vars = named_vars(varmap)?;
    let fan_in_of = |layer: &str| {
        vars.iter().find(|(n, _)| *n == format!("{layer}.weight")).and_then(|(_, w)| w.dims().get(1).copied())
    };
    for (name, var) in &vars {
        let layer = name.rsplit_once('.').map_or("", |(layer, _)| layer);
        let bound = 1.0 / (fan_in_of(layer).unwrap_or(1) as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count()).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}
