//! Training a classifier: the head on cached features (feature extraction), or the head with
//! the last backbone blocks (fine-tuning) on the activations at the freeze boundary.
//!
//! Inputs `x` are `(N, D)` features, or `(N, h, w, C)` boundary activations (NHWC) when a
//! [`TrainableSuffix`] maps them to `(N, D)` features. Logits = head(features).
//! Mini-batch AdamW on cross-entropy, one optimizer per parameter group (the head; the
//! unfrozen blocks), each with its own learning rate; only the head is initialised (seeded,
//! PyTorch's `nn.Linear` rule), backbone blocks keep their pretrained values. Epochs walk a
//! seeded shuffle of the training split; dropout masks come from the same seed. Work is done
//! in time slices ([`Trainer::step_for`]) so that the browser worker can answer a Stop between
//! any two batches. After each epoch the validation split is scored; the weights of every
//! trainable group with the lowest validation loss (training loss without a validation split)
//! are kept and restored at the end, also when the run is stopped early. A non-finite or
//! exploding loss (above [`DIVERGED_LOSS`]) stops the run with `GraftError::Diverged`;
//! [`Trainer::finish`] still returns the best weights kept before it.
//!
//! Fine-tuning ([`Trainer::fine_tuning`]): the last `unfreeze` blocks run forward only for
//! `head_epochs` epochs, then join with their own AdamW at the backbone learning rate. With
//! augmentation, epoch `e` trains on precomputed view `e mod K` of each sample
//! ([`TrainData::views`]); scoring always uses the plain inputs. Cosine decay multiplies each
//! group's rate by `(1 + cos(pi t / T)) / 2`, `t` the epochs since the group began training.
//!
//! Domain adaptation ([`TrainData::target`] with `config.adapt`): each training batch is
//! paired with as many unlabelled target rows (a seeded shuffle, cycled) and the step adds the
//! domain loss through the gradient reversal ([`super::dann`]), lambda following the run's
//! progress. The target has no labels to select an epoch by, and the best source validation
//! loss tends to come before the adaptation took hold, so such a run keeps its final weights
//! unless `config.keep` says otherwise ([`TrainReport::kept_final`]). On the GPU the target
//! rows join the same pass ([`crate::gpu::train`]); a linear head adapts on the CPU only.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};

use super::config::{Keep, TrainConfig};
use super::dann::{dann_losses, grl_lambda, DomainClassifier};
use super::head_file::TrainedHead;
use super::metrics::Confusion;
use super::report::{EpochMetrics, Stage, TrainReport};
use super::rng::SplitMix64;
use super::split::{stratified_split, Split};
use super::vars::named_vars;
use crate::backbone::{Backbone, TrainableSuffix};
use crate::error::{DivergedAdvice, GraftError, Result};
use crate::exec::CpuExecutor;
use crate::gpu::suffix::GpuSuffix;
use crate::gpu::train::{DomainBatch, GpuHead, HeadInputs};
use crate::gpu::GpuContext;
use crate::message::UserMessage;
use crate::model::{MlpHead, MlpHeadSpec};

/// Samples scored at a time.
const SCORE_CHUNK: usize = 64;

/// A training loss above this (cross-entropy starts near `ln C`) means the run exploded.
pub const DIVERGED_LOSS: f32 = 1e3;

/// Labelled training inputs.
pub struct TrainData {
    /// `(N, D)` features, or `(N, h, w, C)` activations at the freeze boundary (NHWC).
    pub inputs: Tensor,
    /// Augmented views of every sample, each shaped like `inputs` (empty: no augmentation).
    pub views: Vec<Tensor>,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    /// Unlabelled target-domain inputs, shaped like `inputs` row for row (domain adaptation).
    pub target: Option<Tensor>,
}

impl TrainData {
    /// Plain inputs without augmented views.
    pub fn new(inputs: Tensor, labels: Vec<usize>, class_names: Vec<String>) -> Self {
        Self { inputs, views: Vec::new(), labels, class_names, target: None }
    }

    /// Bytes held by the inputs and their views (the activation cache of fine-tuning).
    pub fn cache_bytes(&self) -> usize {
        (1 + self.views.len()) * self.inputs.elem_count() * std::mem::size_of::<f32>()
    }
}

/// Whether unfrozen backbone blocks learn in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuffixMode {
    /// Forward only (the first stage of fine-tuning trains the head alone).
    Frozen,
    /// A parameter group of their own, at the backbone learning rate.
    Trainable,
}

/// Trainable variables that share a learning rate.
struct ParamGroup {
    vars: Vec<(String, Var)>,
    optimizer: AdamW,
}

/// The network being trained.
struct Network {
    suffix: Option<(TrainableSuffix, SuffixMode)>,
    head: MlpHead,
    head_vars: VarMap,
}

impl Network {
    /// Logits of `x`; `training` is a training step (dropout, training-mode batch norm).
    fn logits(&self, x: &Tensor, dropout_mask: Option<&Tensor>, training: bool) -> Result<Tensor> {
        Ok(self.head.forward_with_mask(&self.features(x, training)?, dropout_mask)?)
    }

    /// The head's input: `x`, or the unfrozen blocks' pooled output.
    fn features(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        Ok(match &self.suffix {
            Some((suffix, SuffixMode::Trainable)) if training => suffix.forward_features_training(x)?,
            Some((suffix, SuffixMode::Trainable)) => suffix.forward_features(x)?,
            // Detached: the backward pass stops at the head instead of running through
            // blocks whose gradients no optimizer uses.
            Some((suffix, SuffixMode::Frozen)) => suffix.forward_features(x)?.detach(),
            None => x.clone(),
        })
    }
}

/// The domain classifier of an adapting run, its optimizer (at the head's rate), the target
/// rows' shuffled order, and the epoch's domain hits.
struct Domain {
    classifier: DomainClassifier,
    vars: VarMap,
    optimizer: AdamW,
    target: Tensor,
    order: Vec<usize>,
    next: usize,
    hits: (usize, usize),
}

impl Domain {
    fn new(in_dim: usize, target: Tensor, config: &TrainConfig, rng: &mut SplitMix64) -> Result<Self> {
        let vars = VarMap::new();
        let classifier = DomainClassifier::load(in_dim, VarBuilder::from_varmap(&vars, DType::F32, target.device()))?;
        init_like_pytorch(&vars, rng)?;
        let params = ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..Default::default() };
        let optimizer = AdamW::new(vars.all_vars(), params)?;
        let mut order: Vec<usize> = (0..target.dim(0)?).collect();
        rng.shuffle(&mut order);
        Ok(Self { classifier, vars, optimizer, target, order, next: 0, hits: (0, 0) })
    }

    /// The indices of the next `n` target rows (cycling through the shuffled order).
    fn next_rows(&mut self, n: usize) -> Vec<usize> {
        let rows = (0..n).map(|i| self.order[(self.next + i) % self.order.len()]).collect();
        self.next = (self.next + n) % self.order.len();
        rows
    }

    /// Rows `rows` of the target.
    fn rows(&self, rows: &[usize]) -> Result<Tensor> {
        let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        Ok(self.target.index_select(&Tensor::new(rows.as_slice(), self.target.device())?, 0)?)
    }
}

struct Scores {
    loss: f32,
    confusion: Confusion,
}

/// The current epoch's shuffled order and how far into it the run is.
struct EpochCursor {
    order: Vec<usize>,
    next: usize,
}

pub struct Trainer {
    network: Network,
    groups: Vec<ParamGroup>,
    data: TrainData,
    split: Split,
    config: TrainConfig,
    rng: SplitMix64,
    epoch: usize,
    cursor: Option<EpochCursor>,
    best: Option<(f32, usize, HashMap<String, Tensor>)>,
    /// The head's weights and steps on the GPU ([`Trainer::use_gpu`]); the Candle network
    /// then receives the best weights at the end, or when the GPU fails.
    gpu: Option<GpuHead>,
    /// Why a run that began on the GPU continues on the CPU.
    gpu_failure: Option<String>,
    /// The epoch (0-based) at which the unfrozen blocks joined, for their cosine schedule.
    joined_at: Option<usize>,
    /// Set when the loss exploded: the run cannot continue, its best weights remain.
    diverged: bool,
    /// Domain adaptation, when the run adapts to target rows.
    domain: Option<Domain>,
}

impl Trainer {
    /// Trains a head on features `(N, D)`. Refuses bad settings, fewer than two classes and
    /// empty classes, naming them.
    pub fn new(data: TrainData, config: TrainConfig) -> Result<Self> {
        Self::build(data, config, None)
    }

    /// Trains a head after `suffix`, on the activations entering its first block; the suffix
    /// learns too when `mode` is [`SuffixMode::Trainable`].
    pub fn with_suffix(
        data: TrainData,
        config: TrainConfig,
        suffix: TrainableSuffix,
        mode: SuffixMode,
    ) -> Result<Self> {
        Self::build(data, config, Some((suffix, mode)))
    }

    /// The run `config` asks for on a backbone: the head alone when `config.unfreeze` is 0,
    /// else the head after the last `unfreeze` blocks, on the activations entering them, with
    /// the blocks joining after `config.head_epochs`.
    pub fn fine_tuning(data: TrainData, config: TrainConfig, backbone: &Backbone) -> Result<Self> {
        config.validate_for(backbone.num_blocks())?;
        if config.unfreeze == 0 {
            return Self::new(data, config);
        }
        let mut suffix = backbone.trainable_suffix(backbone.num_blocks() - config.unfreeze)?;
        suffix.set_batch_norm(config.batch_norm);
        let mode = if config.head_epochs == 0 { SuffixMode::Trainable } else { SuffixMode::Frozen };
        Self::with_suffix(data, config, suffix, mode)
    }

    fn build(data: TrainData, config: TrainConfig, suffix: Option<(TrainableSuffix, SuffixMode)>) -> Result<Self> {
        config.validate()?;
        check_classes(&data.labels, &data.class_names)?;
        let n = data.inputs.dim(0)?;
        if n != data.labels.len() {
            return Err(GraftError::Training(format!("{n} input rows for {} labels", data.labels.len())));
        }
        let in_dim = match &suffix {
            Some((s, _)) => s.feature_dim(),
            None => data.inputs.dims2()?.1,
        };
        let spec = MlpHeadSpec { in_dim, hidden: config.hidden, classes: data.class_names.len() };
        let device = data.inputs.device().clone();
        let head_vars = VarMap::new();
        let head = MlpHead::load(spec, VarBuilder::from_varmap(&head_vars, DType::F32, &device))?;
        let mut rng = SplitMix64::new(config.seed);
        init_like_pytorch(&head_vars, &mut rng)?;
        let mut groups = vec![param_group(named_vars(&head_vars)?, config.learning_rate, config.weight_decay)?];
        if let Some((suffix, SuffixMode::Trainable)) = &suffix {
            groups.push(param_group(suffix.vars().to_vec(), config.backbone_learning_rate, config.weight_decay)?);
        }
        let split = stratified_split(&data.labels, data.class_names.len(), config.val_fraction, config.seed);
        if let Some(bad) = data.views.iter().find(|v| v.dims() != data.inputs.dims()) {
            return Err(GraftError::Training(format!(
                "a view has shape {:?}, not {:?}",
                bad.dims(),
                data.inputs.dims()
            )));
        }
        let joined_at = matches!(suffix, Some((_, SuffixMode::Trainable))).then_some(0);
        let domain = match &data.target {
            Some(target) if config.adapt.enabled => {
                let target_rows = target.dims().get(1..).map(<[usize]>::to_vec);
                if target.dim(0)? == 0 || target_rows != data.inputs.dims().get(1..).map(<[usize]>::to_vec) {
                    return Err(GraftError::Training(format!(
                        "the target inputs have shape {:?}; adapting needs some, shaped like the inputs {:?}",
                        target.dims(),
                        data.inputs.dims()
                    )));
                }
                let h = if config.hidden > 0 { config.hidden } else { in_dim };
                Some(Domain::new(h, target.clone(), &config, &mut rng)?)
            }
            _ => None,
        };
        let network = Network { suffix, head, head_vars };
        Ok(Self {
            domain,
            joined_at,
            diverged: false,
            network,
            groups,
            data,
            split,
            config,
            rng,
            epoch: 0,
            cursor: None,
            best: None,
            gpu: None,
            gpu_failure: None,
        })
    }

    /// Trains on the GPU from now on, with the same batches, dropout masks and optimizer as
    /// on the CPU: the head, its weights and the features resident there (with every
    /// augmented view), or the head after the unfrozen blocks, whose boundary activations
    /// are written batch by batch. Blocks the GPU kernels do not cover stay on the CPU, and
    /// [`Self::device_description`] says why.
    pub async fn use_gpu(&mut self, context: GpuContext) -> Result<()> {
        if self.domain.is_some() && self.config.hidden == 0 {
            let why = "a linear head has no WebGPU kernels for domain adaptation, so it trains on the CPU".to_string();
            self.gpu_failure = Some(why.clone());
            return Err(GraftError::GpuUnavailable(why));
        }
        if let Some((suffix, _)) = &self.network.suffix {
            if let Some(why) = GpuSuffix::unsupported(suffix) {
                let why = format!("{why}, so fine-tuning trains on the CPU");
                self.gpu_failure = Some(why.clone());
                return Err(GraftError::GpuUnavailable(why));
            }
        }
        let initial = flat_values(&self.network.head_vars)?;
        let classes = self.data.class_names.len();
        let (lr, wd) = (self.config.learning_rate, self.config.weight_decay);
        let mut head = match &self.network.suffix {
            Some((suffix, mode)) => {
                let (_, h, w, c) = self.data.inputs.dims4()?;
                let spec = MlpHeadSpec { in_dim: suffix.feature_dim(), hidden: self.config.hidden, classes };
                let inputs = HeadInputs::Suffix { suffix, boundary: (h, w, c) };
                let mut head = GpuHead::new(context, spec, &initial, inputs, &self.data.labels, lr, wd).await?;
                head.set_suffix_learns(*mode == SuffixMode::Trainable)?;
                head
            }
            None => {
                // The plain features, then each view's: view `v` of sample `i` is row
                // `(v + 1) N + i`; then the target rows of an adapting run.
                let (_, in_dim) = self.data.inputs.dims2()?;
                let spec = MlpHeadSpec { in_dim, hidden: self.config.hidden, classes };
                let all = std::iter::once(&self.data.inputs).chain(&self.data.views).cloned().collect::<Vec<_>>();
                let labels = self.data.labels.repeat(all.len());
                let target = self.domain.as_ref().map(|d| d.target.clone());
                let features = Tensor::cat(&[all, target.into_iter().collect()].concat(), 0)?;
                let features = features.flatten_all()?.to_vec1::<f32>()?;
                GpuHead::new(context, spec, &initial, HeadInputs::Features(&features), &labels, lr, wd).await?
            }
        };
        if let Some(domain) = &self.domain {
            head.adapt(&flat_values(&domain.vars)?, self.config.learning_rate).await?;
        }
        head.set_learning_rates(&self.learning_rates());
        self.gpu = Some(head);
        Ok(())
    }

    /// `"WebGPU · <adapter>"` when the head trains on the GPU, else `"CPU"` (and why, when
    /// the run left the GPU).
    pub fn device_description(&self) -> String {
        match (&self.gpu, &self.gpu_failure) {
            (Some(gpu), _) => format!("WebGPU · {}", gpu.context().adapter().name),
            (None, Some(why)) => format!("CPU ({why})"),
            (None, None) => "CPU".into(),
        }
    }

    /// Continues the run on the CPU after a GPU failure: the Candle head takes the best
    /// weights kept so far (the initial ones before the first epoch), and the batch in
    /// flight is redone there. An adapting run's domain classifier continues from its initial
    /// weights: the lost device holds its trained ones, and it learns again within an epoch.
    fn leave_gpu(&mut self, error: &GraftError) -> Result<()> {
        self.gpu = None;
        self.gpu_failure = Some(error.to_string());
        self.restore_best()
    }

    /// Sets every trainable variable to its value in the best snapshot, if there is one.
    fn restore_best(&self) -> Result<()> {
        if let Some((_, _, saved)) = &self.best {
            for (name, var) in self.weights() {
                if let Some(value) = saved.get(&name) {
                    var.set(value)?;
                }
            }
        }
        Ok(())
    }

    pub fn split(&self) -> &Split {
        &self.split
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// What the run trains on.
    pub fn data(&self) -> &TrainData {
        &self.data
    }

    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    pub fn is_done(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// Trains batch after batch until `budget_ms` have passed on `clock` (milliseconds) or an
    /// epoch ends; returns that epoch's metrics when one ended. At least one batch runs.
    pub async fn step_for(&mut self, clock: &dyn Fn() -> f64, budget_ms: f64) -> Result<Option<EpochMetrics>> {
        if self.diverged {
            return Err(GraftError::Training("this run diverged; finish it to keep its best weights".into()));
        }
        let started = clock();
        loop {
            let mut cursor = match self.cursor.take() {
                Some(cursor) => cursor,
                None => self.new_epoch()?,
            };
            let end = (cursor.next + self.config.batch_size).min(cursor.order.len());
            if cursor.next < end {
                // How far the run is, for the reversal's schedule.
                let within = end as f64 / cursor.order.len().max(1) as f64;
                let progress = (self.epoch as f64 + within) / self.config.epochs as f64;
                self.train_batch(&cursor.order[cursor.next..end], progress).await?;
            }
            cursor.next = end;
            if cursor.next >= cursor.order.len() {
                return self.end_epoch().await.map(Some);
            }
            self.cursor = Some(cursor);
            if clock() - started >= budget_ms {
                return Ok(None);
            }
        }
    }

    /// One whole epoch (the CLI's loop).
    pub async fn run_epoch(&mut self) -> Result<EpochMetrics> {
        loop {
            if let Some(metrics) = self.step_for(&|| 0.0, f64::INFINITY).await? {
                return Ok(metrics);
            }
        }
    }

    /// The next epoch's order; the blocks join when the head stage ends, and the learning
    /// rates follow the cosine schedule.
    fn new_epoch(&mut self) -> Result<EpochCursor> {
        if self.suffix_mode() == Some(SuffixMode::Frozen) && self.epoch == self.config.head_epochs {
            self.set_suffix_mode(SuffixMode::Trainable)?;
        }
        if self.config.cosine_decay {
            let total = self.config.epochs;
            let rates =
                [(self.config.learning_rate, 0), (self.config.backbone_learning_rate, self.joined_at.unwrap_or(0))];
            for (group, (base, start)) in self.groups.iter_mut().zip(rates) {
                let progress = (self.epoch - start.min(self.epoch)) as f64 / (total - start.min(total)).max(1) as f64;
                group.optimizer.set_learning_rate(base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
            }
        }
        let mut order = self.split.train.clone();
        self.rng.shuffle(&mut order);
        if let Some(domain) = self.domain.as_mut() {
            domain.hits = (0, 0);
        }
        Ok(EpochCursor { order, next: 0 })
    }

    /// The error of a run whose loss exploded in the current epoch, with what to try.
    fn diverged(&mut self, epoch: usize) -> GraftError {
        self.diverged = true;
        let advice = match self.suffix_mode() {
            Some(SuffixMode::Trainable) => DivergedAdvice::SmallerBackboneRate,
            _ => DivergedAdvice::SmallerLearningRate,
        };
        GraftError::Diverged { epoch, advice }
    }

    async fn train_batch(&mut self, batch: &[usize], progress: f64) -> Result<()> {
        let mask = self.dropout_mask(batch.len());
        if self.gpu.is_some() {
            let (rows, mut inputs) = self.gpu_rows(batch, true)?;
            let target = self.gpu_target_rows(batch.len(), inputs.as_mut())?;
            let lambda = grl_lambda(progress, f64::from(self.config.adapt.weight));
            let domain = target.as_deref().map(|target_rows| DomainBatch { target_rows, lambda });
            let rates = self.learning_rates();
            if let Some(gpu) = self.gpu.as_mut() {
                gpu.set_learning_rates(&rates);
                match gpu.train_batch(&rows, inputs.as_deref(), mask.as_deref(), domain).await {
                    Err(e) if e.is_gpu() => self.leave_gpu(&e)?,
                    Err(e) => return Err(e),
                    Ok(hits) => {
                        if let (Some(hits), Some(domain)) = (hits, self.domain.as_mut()) {
                            domain.hits.0 += hits;
                            domain.hits.1 += 2 * batch.len();
                        }
                        return Ok(());
                    }
                }
            }
        }
        let inputs = self.epoch_inputs();
        let (x, y) = self.batch(inputs, batch)?;
        let mask = match mask {
            Some(values) => {
                Some(Tensor::from_vec(values, (batch.len(), self.config.hidden), self.data.inputs.device())?)
            }
            None => None,
        };
        let loss = match self.domain.is_some() {
            true => self.dann_loss(&x, &y, mask.as_ref(), progress)?,
            false => candle_nn::loss::cross_entropy(&self.network.logits(&x, mask.as_ref(), true)?, &y)?,
        };
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() || value > DIVERGED_LOSS {
            return Err(self.diverged(self.epoch + 1));
        }
        let grads = loss.backward()?;
        for group in &mut self.groups {
            group.optimizer.step(&grads)?;
        }
        if let Some(domain) = self.domain.as_mut() {
            domain.optimizer.step(&grads)?;
        }
        Ok(())
    }

    /// The DANN loss of a source batch `(x, y)` paired with as many target rows, at training
    /// `progress` (0..1); counts the domain classifier's hits.
    fn dann_loss(&mut self, x: &Tensor, y: &Tensor, mask: Option<&Tensor>, progress: f64) -> Result<Tensor> {
        let weight = f64::from(self.config.adapt.weight);
        let Some(domain) = self.domain.as_mut() else {
            return Err(GraftError::Training("this run does not adapt".into()));
        };
        let rows = domain.next_rows(x.dim(0)?);
        let target = domain.rows(&rows)?;
        let network = &self.network;
        let h_source = network.head.features(&network.features(x, true)?)?;
        let h_target = network.head.features(&network.features(&target, true)?)?;
        let logits = network.head.classify(&h_source, mask)?;
        let losses = dann_losses(&logits, y, (&h_source, &h_target), &domain.classifier, grl_lambda(progress, weight))?;
        domain.hits.0 += losses.domain_correct;
        domain.hits.1 += 2 * x.dim(0)?;
        Ok(losses.total)
    }

    /// What this epoch trains on: the plain inputs, or one of the augmented views.
    fn epoch_inputs(&self) -> &Tensor {
        match self.data.views.len() {
            0 => &self.data.inputs,
            views => &self.data.views[self.epoch % views],
        }
    }

    /// The GPU's rows for samples `batch` (offset into the resident views when a head-only
    /// run trains on augmented features) and, when blocks come first, their boundary
    /// activations (plain when scoring, the epoch's view when `training`).
    fn gpu_rows(&self, batch: &[usize], training: bool) -> Result<(Vec<usize>, Option<Vec<f32>>)> {
        let inputs = if training { self.epoch_inputs() } else { &self.data.inputs };
        if self.network.suffix.is_some() {
            let values = self.batch(inputs, batch)?.0.flatten_all()?.to_vec1::<f32>()?;
            return Ok((batch.to_vec(), Some(values)));
        }
        let views = self.data.views.len();
        let offset = if training && views > 0 { (self.epoch % views + 1) * self.data.labels.len() } else { 0 };
        Ok((batch.iter().map(|&i| i + offset).collect(), None))
    }

    /// An adapting run's next `n` target rows on the GPU: offset past the source rows and
    /// their views among the resident features, or, when blocks come first, with their
    /// boundary activations appended to `inputs`. `None` when the run does not adapt.
    fn gpu_target_rows(&mut self, n: usize, inputs: Option<&mut Vec<f32>>) -> Result<Option<Vec<usize>>> {
        let Some(domain) = self.domain.as_mut() else { return Ok(None) };
        let rows = domain.next_rows(n);
        if let Some(inputs) = inputs {
            inputs.extend(domain.rows(&rows)?.flatten_all()?.to_vec1::<f32>()?);
            return Ok(Some(rows));
        }
        let offset = (1 + self.data.views.len()) * self.data.labels.len();
        Ok(Some(rows.into_iter().map(|r| r + offset).collect()))
    }

    async fn end_epoch(&mut self) -> Result<EpochMetrics> {
        self.epoch += 1;
        let train = self.score(&self.split.train.clone()).await?;
        let val = if self.split.val.is_empty() { None } else { Some(self.score(&self.split.val.clone()).await?) };
        let selection_loss = val.as_ref().map_or(train.loss, |v| v.loss);
        if !selection_loss.is_finite() || train.loss > DIVERGED_LOSS {
            return Err(self.diverged(self.epoch));
        }
        let keep_final = self.keeps_final();
        if keep_final || self.best.as_ref().is_none_or(|(best, _, _)| selection_loss < *best) {
            let snapshot = self.snapshot().await?;
            self.best = Some((selection_loss, self.epoch, snapshot));
        }
        Ok(EpochMetrics {
            epoch: self.epoch,
            stage: self.stage(),
            train_loss: train.loss,
            train_accuracy: train.confusion.accuracy(),
            val_loss: val.as_ref().map(|v| v.loss),
            val_accuracy: val.as_ref().map(|v| v.confusion.accuracy()),
            confusion: val.map_or(train.confusion, |v| v.confusion),
            domain_accuracy: self.domain.as_ref().map(|d| d.hits.0 as f32 / d.hits.1.max(1) as f32),
        })
    }

    /// Restores the best weights of every trainable group and scores them.
    pub async fn finish(mut self) -> Result<TrainedHead> {
        if self.diverged && self.best.is_none() {
            return Err(GraftError::Diverged { epoch: self.epoch + 1, advice: DivergedAdvice::NoWeightsKept });
        }
        if self.best.is_none() {
            // Stopped before the first epoch ended: the current weights are the result.
            let current = self.snapshot().await?;
            self.best = Some((f32::INFINITY, 0, current));
        }
        self.gpu = None;
        self.restore_best()?;
        let scored_on = if self.split.val.is_empty() { &self.split.train } else { &self.split.val };
        let scores = self.score(&scored_on.clone()).await?;
        let report = TrainReport {
            epochs_run: self.epoch,
            best_epoch: self.best.as_ref().map_or(0, |(_, epoch, _)| *epoch),
            val_accuracy: scores.confusion.accuracy(),
            val_loss: scores.loss,
            per_class_accuracy: scores.confusion.per_class_accuracy(),
            confusion: scores.confusion,
            train_samples: self.split.train.len(),
            val_samples: self.split.val.len(),
            kept_final: self.keeps_final(),
        };
        let Network { suffix, head, head_vars } = self.network;
        Ok(TrainedHead::new(head_vars, head, suffix.map(|(s, _)| s), report))
    }

    /// Rows `indices` of `inputs` and their labels.
    fn batch(&self, inputs: &Tensor, indices: &[usize]) -> Result<(Tensor, Tensor)> {
        let device = inputs.device();
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = Tensor::new(idx.as_slice(), device)?;
        let y: Vec<u32> = indices.iter().map(|&i| self.data.labels[i] as u32).collect();
        Ok((inputs.index_select(&idx, 0)?, Tensor::new(y.as_slice(), device)?))
    }

    /// The dropout mask `(rows, hidden)` of the next batch, from the run's seeded generator:
    /// 0 or `1 / (1 - p)`.
    fn dropout_mask(&mut self, rows: usize) -> Option<Vec<f32>> {
        let p = self.config.dropout;
        if self.config.hidden == 0 || p <= 0.0 {
            return None;
        }
        let keep = 1.0 / (1.0 - p);
        Some((0..rows * self.config.hidden).map(|_| if self.rng.next_f32() < p { 0.0 } else { keep }).collect())
    }

    async fn score(&mut self, indices: &[usize]) -> Result<Scores> {
        let truth: Vec<usize> = indices.iter().map(|&i| self.data.labels[i]).collect();
        let classes = self.data.class_names.len();
        if self.gpu.is_some() {
            match self.score_on_gpu(indices).await {
                Ok((loss, predicted)) => {
                    return Ok(Scores { loss, confusion: Confusion::new(classes, &truth, &predicted) })
                }
                Err(e) if e.is_gpu() => self.leave_gpu(&e)?,
                Err(e) => return Err(e),
            }
        }
        // In chunks: a whole split at once would hold every sample's activations in the
        // unfrozen blocks at the same time (hundreds of MB for a thousand images).
        let executor = self.suffix_executor();
        let mut parts = Vec::new();
        for chunk in indices.chunks(SCORE_CHUNK) {
            let (x, _) = self.batch(&self.data.inputs, chunk)?;
            let logits = match &executor {
                Some(executor) => self.network.head.forward_with_mask(&executor.pooled_nhwc(&x)?, None)?,
                None => self.network.logits(&x, None, false)?,
            };
            parts.push(logits.detach());
        }
        let logits = Tensor::cat(&parts, 0)?;
        let y: Vec<u32> = truth.iter().map(|&l| l as u32).collect();
        let y = Tensor::new(y.as_slice(), logits.device())?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let predicted: Vec<usize> = predicted.into_iter().map(|p| p as usize).collect();
        Ok(Scores { loss, confusion: Confusion::new(classes, &truth, &predicted) })
    }

    /// The unfrozen blocks folded with their current weights into the fast executor, which
    /// scores them in inference mode (frozen statistics) 2-3x faster than the training ops;
    /// `None` without blocks, or for blocks it has no kernel for.
    fn suffix_executor(&self) -> Option<CpuExecutor> {
        let (suffix, _) = self.network.suffix.as_ref()?;
        CpuExecutor::of_blocks(suffix.blocks())
    }

    /// The mean loss and predictions of `indices` on the GPU: in one pass over resident
    /// features, or in chunks whose boundary activations are written one after another.
    async fn score_on_gpu(&mut self, indices: &[usize]) -> Result<(f32, Vec<usize>)> {
        let chunk = if self.network.suffix.is_some() { SCORE_CHUNK } else { indices.len().max(1) };
        let (mut total, mut predicted) = (0f64, Vec::with_capacity(indices.len()));
        for part in indices.chunks(chunk) {
            let (rows, inputs) = self.gpu_rows(part, false)?;
            let Some(gpu) = self.gpu.as_mut() else { break };
            let (loss, classes) = gpu.score(&rows, inputs.as_deref()).await?;
            total += loss as f64 * part.len() as f64;
            predicted.extend(classes);
        }
        Ok(((total / indices.len().max(1) as f64) as f32, predicted))
    }

    /// Copies of every trainable variable, by name (read back from the GPU when it trains).
    async fn snapshot(&mut self) -> Result<HashMap<String, Tensor>> {
        if let Some(gpu) = self.gpu.as_ref() {
            match gpu.weights().await {
                Ok(weights) => return self.tensors_of(weights),
                Err(e) if e.is_gpu() => self.leave_gpu(&e)?,
                Err(e) => return Err(e),
            }
        }
        self.weights().into_iter().map(|(name, var)| Ok((name, var.as_tensor().copy()?))).collect()
    }
}

impl Trainer {
    fn tensors_of(&self, mut weights: HashMap<String, Vec<f32>>) -> Result<HashMap<String, Tensor>> {
        let mut tensors = HashMap::new();
        for (name, var) in self.weights() {
            let values = weights.remove(&name).ok_or_else(|| GraftError::Gpu(format!("{name} was not read back")))?;
            tensors.insert(name, Tensor::from_vec(values, var.shape(), var.device())?);
        }
        Ok(tensors)
    }

    /// Every variable the run may change: the head's, and the unfrozen blocks' (batch-norm
    /// statistics included) whether or not they learn yet (a best epoch in the head-only stage
    /// restores their pretrained values).
    fn weights(&self) -> Vec<(String, Var)> {
        let head = self.groups.first().map(|g| g.vars.clone()).unwrap_or_default();
        let blocks: Vec<_> =
            self.network.suffix.as_ref().map(|(s, _)| s.tensors().cloned().collect()).unwrap_or_default();
        head.into_iter().chain(blocks).collect()
    }

    /// Whether the unfrozen blocks learn from now on (the second stage of fine-tuning), or only
    /// run forward (the first, head-only stage). Their optimizer starts fresh when they join.
    pub fn set_suffix_mode(&mut self, mode: SuffixMode) -> Result<()> {
        let Some((suffix, current)) = self.network.suffix.as_mut() else {
            return Err(GraftError::Training("this run has no unfrozen blocks".into()));
        };
        if *current == mode {
            return Ok(());
        }
        *current = mode;
        if let Some(gpu) = self.gpu.as_mut() {
            gpu.set_suffix_learns(mode == SuffixMode::Trainable)?;
        }
        match mode {
            SuffixMode::Trainable => {
                let vars = suffix.vars().to_vec();
                let group = param_group(vars, self.config.backbone_learning_rate, self.config.weight_decay)?;
                self.groups.push(group);
                self.joined_at = Some(self.epoch);
            }
            SuffixMode::Frozen => {
                self.groups.truncate(1);
                self.joined_at = None;
            }
        }
        Ok(())
    }

    /// The current learning rate of each parameter group: the head's, then the blocks' once
    /// they train.
    pub fn learning_rates(&self) -> Vec<f64> {
        self.groups.iter().map(|g| g.optimizer.learning_rate()).collect()
    }

    /// What learns now: the head, or the head with the unfrozen blocks.
    pub fn stage(&self) -> Stage {
        match self.suffix_mode() {
            Some(SuffixMode::Trainable) => Stage::FineTune,
            _ => Stage::Head,
        }
    }

    /// Whether the run keeps its final weights rather than the best validation loss's.
    fn keeps_final(&self) -> bool {
        match self.config.keep {
            Keep::Auto => self.domain.is_some(),
            Keep::BestValidation => false,
            Keep::Final => true,
        }
    }

    /// The unfrozen blocks' mode, when the run has some.
    pub fn suffix_mode(&self) -> Option<SuffixMode> {
        self.network.suffix.as_ref().map(|(_, mode)| *mode)
    }
}

/// Every variable of `vars` by name, flattened: what the GPU uploads.
fn flat_values(vars: &VarMap) -> Result<HashMap<String, Vec<f32>>> {
    named_vars(vars)?
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
        .collect()
}

fn param_group(vars: Vec<(String, Var)>, learning_rate: f64, weight_decay: f64) -> Result<ParamGroup> {
    let params = ParamsAdamW { lr: learning_rate, weight_decay, ..Default::default() };
    let optimizer = AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), params)?;
    Ok(ParamGroup { vars, optimizer })
}

/// Why classes with these sample counts cannot be trained, naming the class at fault: fewer
/// than two classes, or an empty class. The one place that says so, for the engine and the page.
pub fn class_problem(class_names: &[String], sample_counts: &[usize]) -> Option<ClassProblem> {
    if class_names.len() < 2 {
        return Some(ClassProblem::TooFewClasses);
    }
    let empty = class_names.iter().zip(sample_counts).find(|(_, &count)| count == 0);
    empty.map(|(name, _)| ClassProblem::EmptyClass(name.clone()))
}

/// Why a project's classes cannot train yet.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassProblem {
    TooFewClasses,
    EmptyClass(String),
    /// Adaptation is on but the new domain has no images.
    NoTargetImages,
}

impl std::fmt::Display for ClassProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassProblem::TooFewClasses => write!(f, "add at least two classes to train"),
            ClassProblem::EmptyClass(name) => write!(f, "class \"{name}\" has no samples"),
            ClassProblem::NoTargetImages => write!(f, "add unlabelled images of the new domain to adapt to it"),
        }
    }
}

impl ClassProblem {
    pub fn user_message(&self) -> UserMessage {
        match self {
            ClassProblem::TooFewClasses => UserMessage::new("blocker-two-classes"),
            ClassProblem::EmptyClass(name) => UserMessage::new("blocker-empty-class").arg("name", name),
            ClassProblem::NoTargetImages => UserMessage::new("blocker-no-target"),
        }
    }
}

fn check_classes(labels: &[usize], class_names: &[String]) -> Result<()> {
    let counts: Vec<usize> = (0..class_names.len()).map(|c| labels.iter().filter(|&&l| l == c).count()).collect();
    if let Some(problem) = class_problem(class_names, &counts) {
        return Err(GraftError::Training(problem.to_string()));
    }
    if let Some(bad) = labels.iter().find(|&&l| l >= class_names.len()) {
        return Err(GraftError::Training(format!("label {bad} is not a class")));
    }
    Ok(())
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
