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
//! are kept and restored at the end, also when the run is stopped early. One divergence rule
//! for every device, checked when an epoch is scored: a non-finite selection or training loss,
//! or a training loss above [`DIVERGED_LOSS`], stops the run with `GraftError::Diverged`;
//! [`Trainer::finish`] still returns the best weights kept before it. (The GPU step reads
//! nothing back while it trains, so a per-batch rule could only hold on the CPU.)
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

use super::candle_step::{CandleStep, StepSpec};
use super::config::{Keep, TrainConfig};
use super::dann::grl_lambda;
pub use super::data::TrainData;
use super::fallback::FallbackStep;
use super::head_file::TrainedHead;
use super::metrics::Confusion;
use super::report::{EpochMetrics, Stage, TrainReport};
use super::rng::SplitMix64;
use super::split::{stratified_split, Split};
use super::step::{Batch, Rates, TargetBatch, TrainStep, Weights};
use crate::backbone::{Backbone, TrainableSuffix};
use crate::error::{DivergedAdvice, GraftError, Result};
use crate::gpu::GpuContext;
use crate::message::UserMessage;
use crate::model::MlpHeadSpec;

/// A scored training loss above this (cross-entropy starts near `ln C`) means the run exploded.
pub const DIVERGED_LOSS: f32 = 1e3;

/// Whether unfrozen backbone blocks learn in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuffixMode {
    /// Forward only (the first stage of fine-tuning trains the head alone).
    Frozen,
    /// A parameter group of their own, at the backbone learning rate.
    Trainable,
}

/// The target rows of an adapting run: their shuffled order, how far into it the run is, and
/// the epoch's domain hits (right, asked).
struct TargetFeed {
    order: Vec<usize>,
    next: usize,
    hits: (usize, usize),
}

impl TargetFeed {
    /// The indices of the next `n` target rows (cycling through the shuffled order).
    fn next_rows(&mut self, n: usize) -> Vec<usize> {
        let rows = (0..n).map(|i| self.order[(self.next + i) % self.order.len()]).collect();
        self.next = (self.next + n) % self.order.len();
        rows
    }
}

/// The current epoch's shuffled order and how far into it the run is.
struct EpochCursor {
    order: Vec<usize>,
    next: usize,
}

/// The weights kept: the selection loss they scored, their epoch (0: none finished), and them.
struct Kept {
    loss: f32,
    epoch: usize,
    weights: Weights,
}

/// The schedule of a run; the step ([`FallbackStep`]) does the arithmetic on its device.
pub struct Trainer {
    step: FallbackStep,
    data: TrainData,
    split: Split,
    config: TrainConfig,
    rng: SplitMix64,
    epoch: usize,
    cursor: Option<EpochCursor>,
    best: Option<Kept>,
    /// The unfrozen blocks' stage, when the run has some.
    blocks: Option<SuffixMode>,
    /// The epoch (0-based) at which the unfrozen blocks joined, for their cosine schedule.
    joined_at: Option<usize>,
    rates: Rates,
    /// The epoch whose loss exploded: the run cannot continue, its best weights remain.
    diverged: Option<usize>,
    /// Domain adaptation, when the run adapts to target rows.
    target: Option<TargetFeed>,
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
        check_data(&data, &config)?;
        let in_dim = match &suffix {
            Some((s, _)) => s.feature_dim(),
            None => data.inputs.dims2()?.1,
        };
        let head = MlpHeadSpec { in_dim, hidden: config.hidden, classes: data.class_names.len() };
        let adapting = config.adapt.enabled && data.target.is_some();
        let mut rng = SplitMix64::new(config.seed);
        let blocks = suffix.as_ref().map(|(_, mode)| *mode);
        let spec = StepSpec { head, suffix: suffix.map(|(s, _)| s), adapting };
        let mut step = CandleStep::new(spec, &config, data.inputs.device(), &mut rng)?;
        if blocks == Some(SuffixMode::Trainable) {
            step.set_blocks_learn(true)?;
        }
        let target = match (&data.target, adapting) {
            (Some(target), true) => {
                let mut order: Vec<usize> = (0..target.dim(0)?).collect();
                rng.shuffle(&mut order);
                Some(TargetFeed { order, next: 0, hits: (0, 0) })
            }
            _ => None,
        };
        let split = stratified_split(&data.labels, data.class_names.len(), config.val_fraction, config.seed);
        Ok(Self {
            step: FallbackStep::new(step),
            joined_at: (blocks == Some(SuffixMode::Trainable)).then_some(0),
            rates: Rates::of(&config),
            blocks,
            target,
            diverged: None,
            data,
            split,
            config,
            rng,
            epoch: 0,
            cursor: None,
            best: None,
        })
    }

    /// Trains on the GPU from now on, with the same batches, dropout masks and optimizer as
    /// on the CPU: the head, its weights and the features resident there (with every
    /// augmented view), or the head after the unfrozen blocks, whose boundary activations
    /// are written batch by batch. Blocks the GPU kernels do not cover stay on the CPU, and
    /// [`Self::device_description`] says why.
    pub async fn use_gpu(&mut self, context: GpuContext) -> Result<()> {
        self.step.use_gpu(context, &self.data, &self.config).await
    }

    /// `"WebGPU · <adapter>"` when the run trains on the GPU, else `"CPU"` (and why, when
    /// a GPU was wanted).
    pub fn device_description(&self) -> String {
        self.step.device().to_string()
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
        if self.diverged.is_some() {
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
        if self.blocks == Some(SuffixMode::Frozen) && self.epoch == self.config.head_epochs {
            self.set_suffix_mode(SuffixMode::Trainable)?;
        }
        self.set_scheduled_rates();
        let mut order = self.split.train.clone();
        self.rng.shuffle(&mut order);
        if let Some(target) = self.target.as_mut() {
            target.hits = (0, 0);
        }
        Ok(EpochCursor { order, next: 0 })
    }

    /// The rates of the current epoch: the configured ones, each times the cosine decay
    /// `(1 + cos(pi t / T)) / 2` when on, `t` the epochs since its group began training.
    fn set_scheduled_rates(&mut self) {
        self.rates = Rates::of(&self.config);
        if self.config.cosine_decay {
            let (epoch, total) = (self.epoch, self.config.epochs);
            let decay = |start: usize| {
                let progress = (epoch - start.min(epoch)) as f64 / (total - start.min(total)).max(1) as f64;
                0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            };
            self.rates.head *= decay(0);
            self.rates.blocks *= decay(self.joined_at.unwrap_or(0));
        }
        self.step.set_learning_rates(self.rates);
    }

    /// The error of a run whose loss exploded in epoch `epoch`, with what to try.
    fn diverged(&mut self, epoch: usize) -> GraftError {
        self.diverged = Some(epoch);
        let advice = match self.blocks {
            Some(SuffixMode::Trainable) => DivergedAdvice::SmallerBackboneRate,
            _ => DivergedAdvice::SmallerLearningRate,
        };
        GraftError::Diverged { epoch, advice }
    }

    /// One step on `samples`: this epoch's view, the next dropout mask from the run's seeded
    /// generator, and as many target rows when adapting.
    async fn train_batch(&mut self, samples: &[usize], progress: f64) -> Result<()> {
        let mask = self.dropout_mask(samples.len());
        let target_rows = self.target.as_mut().map(|t| t.next_rows(samples.len()));
        let lambda = grl_lambda(progress, f64::from(self.config.adapt.weight));
        let views = self.data.views.len();
        let batch = Batch {
            samples,
            view: (views > 0).then(|| self.epoch % views),
            dropout_mask: mask.as_deref(),
            target: target_rows.as_deref().map(|rows| TargetBatch { rows, lambda }),
        };
        let hits = self.step.train_batch(&self.data, &batch).await?;
        if let (Some(hits), Some(target)) = (hits, self.target.as_mut()) {
            target.hits.0 += hits;
            target.hits.1 += 2 * samples.len();
        }
        Ok(())
    }

    /// Scores both splits; the one divergence rule (for every device: the GPU step reads
    /// nothing back while it trains) is a non-finite or exploding loss here; keeps the weights
    /// when they are the best so far (or the final ones are kept).
    async fn end_epoch(&mut self) -> Result<EpochMetrics> {
        self.epoch += 1;
        let train = self.score(&self.split.train.clone()).await?;
        let val = if self.split.val.is_empty() { None } else { Some(self.score(&self.split.val.clone()).await?) };
        let selection_loss = val.as_ref().map_or(train.0, |v| v.0);
        if !selection_loss.is_finite() || !train.0.is_finite() || train.0 > DIVERGED_LOSS {
            return Err(self.diverged(self.epoch));
        }
        if self.keeps_final() || self.best.as_ref().is_none_or(|best| selection_loss < best.loss) {
            let weights = self.step.snapshot().await?;
            self.best = Some(Kept { loss: selection_loss, epoch: self.epoch, weights });
        }
        Ok(EpochMetrics {
            epoch: self.epoch,
            stage: self.stage(),
            train_loss: train.0,
            train_accuracy: train.1.accuracy(),
            val_loss: val.as_ref().map(|v| v.0),
            val_accuracy: val.as_ref().map(|v| v.1.accuracy()),
            confusion: val.map_or(train.1, |v| v.1),
            domain_accuracy: self.target.as_ref().map(|t| t.hits.0 as f32 / t.hits.1.max(1) as f32),
        })
    }

    /// Restores the best weights of every trainable group and scores them on the CPU.
    pub async fn finish(mut self) -> Result<TrainedHead> {
        let kept = match self.best.take() {
            Some(kept) => kept,
            None => {
                if let Some(epoch) = self.diverged {
                    return Err(GraftError::Diverged { epoch, advice: DivergedAdvice::NoWeightsKept });
                }
                // Stopped before the first epoch ended: the current weights are the result.
                Kept { loss: f32::INFINITY, epoch: 0, weights: self.step.snapshot().await? }
            }
        };
        let kept_final = self.keeps_final();
        let mut cpu = self.step.into_cpu();
        cpu.restore(&kept.weights)?;
        let scored_on = if self.split.val.is_empty() { &self.split.train } else { &self.split.val };
        let scored = cpu.score(&self.data, scored_on).await?;
        let confusion = confusion_of(&self.data, scored_on, &scored.predicted);
        let report = TrainReport {
            epochs_run: self.epoch,
            best_epoch: kept.epoch,
            val_accuracy: confusion.accuracy(),
            val_loss: scored.loss,
            per_class_accuracy: confusion.per_class_accuracy(),
            confusion,
            train_samples: self.split.train.len(),
            val_samples: self.split.val.len(),
            kept_final,
        };
        let (head_vars, head, suffix) = cpu.into_parts();
        Ok(TrainedHead::new(head_vars, head, suffix, report))
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

    /// The mean loss of `samples` and their confusion matrix.
    async fn score(&mut self, samples: &[usize]) -> Result<(f32, Confusion)> {
        let scored = self.step.score(&self.data, samples).await?;
        Ok((scored.loss, confusion_of(&self.data, samples, &scored.predicted)))
    }

    /// Whether the unfrozen blocks learn from now on (the second stage of fine-tuning), or only
    /// run forward (the first, head-only stage). Their optimizer starts fresh when they join.
    pub fn set_suffix_mode(&mut self, mode: SuffixMode) -> Result<()> {
        let Some(current) = self.blocks else {
            return Err(GraftError::Training("this run has no unfrozen blocks".into()));
        };
        if current == mode {
            return Ok(());
        }
        self.step.set_blocks_learn(mode == SuffixMode::Trainable)?;
        self.blocks = Some(mode);
        self.joined_at = (mode == SuffixMode::Trainable).then_some(self.epoch);
        self.set_scheduled_rates();
        Ok(())
    }

    /// The current learning rate of each parameter group: the head's, then the blocks' once
    /// they train.
    pub fn learning_rates(&self) -> Vec<f64> {
        match self.blocks {
            Some(SuffixMode::Trainable) => vec![self.rates.head, self.rates.blocks],
            _ => vec![self.rates.head],
        }
    }

    /// What learns now: the head, or the head with the unfrozen blocks.
    pub fn stage(&self) -> Stage {
        match self.blocks {
            Some(SuffixMode::Trainable) => Stage::FineTune,
            _ => Stage::Head,
        }
    }

    /// Whether the run keeps its final weights rather than the best validation loss's.
    fn keeps_final(&self) -> bool {
        match self.config.keep {
            Keep::Auto => self.target.is_some(),
            Keep::BestValidation => false,
            Keep::Final => true,
        }
    }

    /// The unfrozen blocks' mode, when the run has some.
    pub fn suffix_mode(&self) -> Option<SuffixMode> {
        self.blocks
    }
}

/// The confusion matrix of `samples` predicted as `predicted`.
fn confusion_of(data: &TrainData, samples: &[usize], predicted: &[usize]) -> Confusion {
    let truth: Vec<usize> = samples.iter().map(|&i| data.labels[i]).collect();
    Confusion::new(data.class_names.len(), &truth, predicted)
}

/// Refuses bad settings, classes that cannot train, inputs that do not match their labels, and
/// views or target rows shaped unlike the inputs.
fn check_data(data: &TrainData, config: &TrainConfig) -> Result<()> {
    config.validate()?;
    check_classes(&data.labels, &data.class_names)?;
    let n = data.inputs.dim(0)?;
    if n != data.labels.len() {
        return Err(GraftError::Training(format!("{n} input rows for {} labels", data.labels.len())));
    }
    if let Some(bad) = data.views.iter().find(|v| v.dims() != data.inputs.dims()) {
        return Err(GraftError::Training(format!("a view has shape {:?}, not {:?}", bad.dims(), data.inputs.dims())));
    }
    if let (Some(target), true) = (&data.target, config.adapt.enabled) {
        if target.dim(0)? == 0 || target.dims().get(1..) != data.inputs.dims().get(1..) {
            return Err(GraftError::Training(format!(
                "the target inputs have shape {:?}; adapting needs some, shaped like the inputs {:?}",
                target.dims(),
                data.inputs.dims()
            )));
        }
    }
    Ok(())
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
