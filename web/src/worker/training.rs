//! The training scheduler: one run at a time, identified by the page's run id, advanced in
//! time slices between messages so that Stop (or a new sample) is handled within one slice
//! however long an epoch takes.
//!
//! A run that trains on cached features starts at once. One with unfrozen blocks or
//! augmentation first prepares its inputs: each slice decodes a few stored images and runs
//! the frozen part of the backbone on them (and their augmented views), reporting progress;
//! then training begins. After a run, its no-transfer baseline (the same head on raw pixels,
//! same samples in the same order, so the same split) trains in the slices that follow and
//! ends with `BaselineDone`; a new run drops it.

use candle_core::Device;
use graft::preprocess::{baseline_pixels, decode_image};
use graft::train::{Augment, InputBuilder, SavedHead, TrainConfig, TrainedHead, Trainer};
use graft::transfer::baseline::baseline_trainer;
use graft::GraftError;

use super::model::Model;
use super::samples::SampleStore;
use crate::protocol::FromWorker;
use graft::message::UserMessage;

/// Milliseconds of training between two looks at the message queue.
pub const SLICE_MILLIS: f64 = 50.0;
/// Stored images decoded and run through the frozen part at a time while preparing.
const PREPARE_BATCH: usize = 4;

/// Inputs being made from stored images before a run can train.
pub struct Preparation {
    /// Taken when the inputs are complete.
    builder: Option<InputBuilder>,
    /// `(sample id, label)` of every sample, in order; `next` is the first not yet done.
    queue: Vec<(u64, usize)>,
    next: usize,
    config: TrainConfig,
    /// Unlabelled target samples (domain adaptation), prepared after the labelled ones, never
    /// augmented; `target_next` is the first not yet done.
    target: Vec<u64>,
    target_next: usize,
    target_builder: Option<InputBuilder>,
}

impl Preparation {
    pub fn new(config: TrainConfig, blocks: usize, queue: Vec<(u64, usize)>, target: Vec<u64>) -> Self {
        let plain = TrainConfig { augment: Augment { enabled: false, ..config.augment }, ..config.clone() };
        let target_builder = (!target.is_empty()).then(|| InputBuilder::new(&plain, blocks, target.len()));
        let builder = Some(InputBuilder::new(&config, blocks, queue.len()));
        Self { builder, queue, next: 0, config, target, target_next: 0, target_builder }
    }

    /// Prepares the next few samples; samples whose image is gone (deleted meanwhile) are
    /// skipped.
    async fn step(&mut self, model: &Model, samples: &SampleStore) -> Result<(), UserMessage> {
        if self.next >= self.queue.len() {
            return self.step_target(model, samples).await;
        }
        let end = (self.next + PREPARE_BATCH).min(self.queue.len());
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for &(id, label) in &self.queue[self.next..end] {
            if let Some(stored) = samples.image(id) {
                images.push(decode_image("stored sample", &stored.bytes).map_err(UserMessage::from)?);
                labels.push(label);
            }
        }
        let builder = self.builder.as_mut().ok_or_else(|| UserMessage::verbatim("the inputs are already complete"))?;
        builder.add(&model.extractor, &images, &labels).await.map_err(UserMessage::from)?;
        self.next = end;
        Ok(())
    }

    /// The next few target samples.
    async fn step_target(&mut self, model: &Model, samples: &SampleStore) -> Result<(), UserMessage> {
        let end = (self.target_next + PREPARE_BATCH).min(self.target.len());
        let images = self.target[self.target_next..end]
            .iter()
            .filter_map(|&id| samples.image(id))
            .map(|stored| decode_image("stored sample", &stored.bytes).map_err(UserMessage::from))
            .collect::<Result<Vec<_>, UserMessage>>()?;
        if let Some(builder) = self.target_builder.as_mut() {
            builder.add(&model.extractor, &images, &vec![0; images.len()]).await.map_err(UserMessage::from)?;
        }
        self.target_next = end;
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.next >= self.queue.len() && self.target_next >= self.target.len()
    }

    /// Samples prepared, of all.
    fn progress(&self) -> (usize, usize) {
        (self.next + self.target_next, self.queue.len() + self.target.len())
    }
}

enum Phase {
    Preparing(Box<Preparation>),
    Training(Box<Trainer>),
}

struct Run {
    run_id: u64,
    phase: Phase,
    class_names: Vec<String>,
    started: f64,
    epoch_started: f64,
    /// The run's settings and `(sample id, label)` order, for its baseline.
    config: TrainConfig,
    order: Vec<(u64, usize)>,
}

/// The no-transfer baseline of the last run: pixels made a slice at a time, then trained.
struct Baseline {
    run_id: u64,
    order: Vec<(u64, usize)>,
    next: usize,
    pixels: Vec<f32>,
    labels: Vec<usize>,
    class_names: Vec<String>,
    config: TrainConfig,
    trainer: Option<Box<Trainer>>,
    /// The run's validation accuracy.
    transferred: f32,
}

/// The run in progress, the baseline after it, and the last trained head.
#[derive(Default)]
pub struct Training {
    run: Option<Run>,
    baseline: Option<Baseline>,
    head: Option<(TrainedHead, SavedHead)>,
}

/// The message that says a run began training.
fn started_message(run_id: u64, trainer: &Trainer, views: usize, cache_bytes: usize) -> FromWorker {
    let split = trainer.split();
    FromWorker::TrainingStarted {
        run_id,
        train_samples: split.train.len(),
        val_samples: split.val.len(),
        device: trainer.device_description(),
        views,
        cache_bytes,
    }
}

impl Training {
    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// A run or a baseline has slices to run.
    pub fn has_work(&self) -> bool {
        self.run.is_some() || self.baseline.is_some()
    }

    /// Starts run `run_id` on cached features, given with its settings and sample order (a
    /// run in progress is dropped: the page started a new one).
    pub fn start(
        &mut self,
        run_id: u64,
        (trainer, config, order): (Trainer, TrainConfig, Vec<(u64, usize)>),
        class_names: Vec<String>,
        now: f64,
    ) -> FromWorker {
        let reply = started_message(run_id, &trainer, 0, trainer.data().cache_bytes());
        let phase = Phase::Training(Box::new(trainer));
        self.baseline = None;
        self.run = Some(Run { run_id, phase, class_names, started: now, epoch_started: now, config, order });
        reply
    }

    /// Starts run `run_id` by preparing its inputs from stored images.
    pub fn prepare(&mut self, run_id: u64, preparation: Preparation, class_names: Vec<String>, now: f64) -> FromWorker {
        let total = preparation.progress().1;
        let (config, order) = (preparation.config.clone(), preparation.queue.clone());
        let phase = Phase::Preparing(Box::new(preparation));
        self.baseline = None;
        self.run = Some(Run { run_id, phase, class_names, started: now, epoch_started: now, config, order });
        FromWorker::TrainingPreparing { run_id, prepared: 0, total }
    }

    /// Works for one slice: prepares inputs, or trains; returns progress, an epoch's metrics,
    /// and the end of the run when it ended (done, diverged or failed).
    pub async fn slice(&mut self, clock: fn() -> f64, model: &Model, samples: &SampleStore) -> Vec<FromWorker> {
        let Some(run) = self.run.as_mut() else {
            return self.baseline_slice(clock, samples).await;
        };
        let run_id = run.run_id;
        let outcome = match &mut run.phase {
            Phase::Preparing(_) => prepare_slice(run, clock, model, samples).await,
            Phase::Training(trainer) => match trainer.step_for(&clock, SLICE_MILLIS).await {
                Ok(None) => Ok(Vec::new()),
                Ok(Some(metrics)) => {
                    let now = clock();
                    let seconds = ((now - run.epoch_started) / 1000.0).max(1e-3);
                    let samples_per_second = trainer.split().train.len() as f64 / seconds;
                    run.epoch_started = now;
                    let elapsed_millis = now - run.started;
                    let mut replies =
                        vec![FromWorker::EpochDone { run_id, metrics, samples_per_second, elapsed_millis }];
                    if trainer.is_done() {
                        replies.extend(self.finish(run_id, false, model).await);
                    }
                    return replies;
                }
                Err(e @ GraftError::Diverged { .. }) => {
                    return self.end(run_id, false, Some(e.user_message()), model).await.into_iter().collect();
                }
                Err(e) => Err(e.user_message()),
            },
        };
        outcome.unwrap_or_else(|message| {
            self.run = None;
            vec![FromWorker::TrainingFailed { run_id, message }]
        })
    }

    /// Ends run `run_id` (if it is the one in progress), keeping its best weights.
    pub async fn finish(&mut self, run_id: u64, stopped_early: bool, model: &Model) -> Option<FromWorker> {
        self.end(run_id, stopped_early, None, model).await
    }

    async fn end(
        &mut self,
        run_id: u64,
        stopped_early: bool,
        diverged: Option<UserMessage>,
        model: &Model,
    ) -> Option<FromWorker> {
        if self.run.as_ref().is_none_or(|r| r.run_id != run_id) {
            return None;
        }
        let Run { phase, class_names, config, order, .. } = self.run.take()?;
        let Phase::Training(trainer) = phase else {
            let message = UserMessage::new("training-stopped-preparing");
            return Some(FromWorker::TrainingFailed { run_id, message });
        };
        let key = model.extractor.key().clone();
        let names = class_names.clone();
        let outcome = trainer.finish().await.and_then(|head| {
            let saved = SavedHead::new(&head, key, class_names)?;
            Ok((head, saved))
        });
        Some(match outcome {
            Ok((head, saved)) => {
                let report = head.report.clone();
                let transferred = report.val_accuracy;
                self.baseline = Some(Baseline {
                    run_id,
                    order,
                    next: 0,
                    pixels: Vec::new(),
                    labels: Vec::new(),
                    class_names: names,
                    config,
                    trainer: None,
                    transferred,
                });
                let reply = FromWorker::TrainingDone { run_id, report, stopped_early, head: saved.clone(), diverged };
                self.head = Some((head, saved));
                reply
            }
            Err(e) => FromWorker::TrainingFailed { run_id, message: e.user_message() },
        })
    }

    /// One slice of the baseline: its pixels a few images at a time, then its epochs; the
    /// comparison when it is done.
    async fn baseline_slice(&mut self, clock: fn() -> f64, samples: &SampleStore) -> Vec<FromWorker> {
        let Some(baseline) = self.baseline.as_mut() else { return Vec::new() };
        let (run_id, transferred) = (baseline.run_id, baseline.transferred);
        let outcome = match baseline.trainer.as_mut() {
            None => baseline.make_pixels(clock, samples).map(|()| None),
            Some(trainer) => match trainer.step_for(&clock, SLICE_MILLIS).await {
                Ok(_) if !trainer.is_done() => Ok(None),
                Ok(_) | Err(GraftError::Diverged { .. }) => match baseline.trainer.take() {
                    Some(trainer) => {
                        trainer.finish().await.map(|head| Some(head.report.val_accuracy)).map_err(UserMessage::from)
                    }
                    None => Ok(None),
                },
                Err(e) => Err(e.user_message()),
            },
        };
        match outcome {
            Ok(None) => Vec::new(),
            Ok(Some(baseline_accuracy)) => {
                self.baseline = None;
                vec![FromWorker::BaselineDone { run_id, baseline_accuracy, transferred_accuracy: transferred }]
            }
            Err(message) => {
                self.baseline = None;
                vec![FromWorker::BaselineFailed { run_id, message }]
            }
        }
    }

    pub fn head(&self) -> Option<&(TrainedHead, SavedHead)> {
        self.head.as_ref()
    }

    pub fn set_head(&mut self, head: TrainedHead, saved: SavedHead) {
        self.head = Some((head, saved));
    }
}

impl Baseline {
    /// Squeezes stored images to the baseline's pixels until the slice is used up; the
    /// trainer once all are done. A sample deleted meanwhile is left out of both.
    fn make_pixels(&mut self, clock: fn() -> f64, samples: &SampleStore) -> Result<(), UserMessage> {
        let started = clock();
        while self.next < self.order.len() && clock() - started < SLICE_MILLIS {
            let (id, label) = self.order[self.next];
            self.next += 1;
            let Some(stored) = samples.image(id) else { continue };
            let image = decode_image("stored sample", &stored.bytes).map_err(UserMessage::from)?;
            self.pixels.extend(baseline_pixels(&image));
            self.labels.push(label);
        }
        if self.next == self.order.len() {
            let (pixels, labels) = (std::mem::take(&mut self.pixels), std::mem::take(&mut self.labels));
            let trainer = baseline_trainer(pixels, labels, self.class_names.clone(), &self.config);
            self.trainer = Some(Box::new(trainer.map_err(UserMessage::from)?));
        }
        Ok(())
    }
}

/// One slice of preparation: a few samples at a time until the slice is used up; when all
/// are done the trainer is built and the run starts training.
async fn prepare_slice(
    run: &mut Run,
    clock: fn() -> f64,
    model: &Model,
    samples: &SampleStore,
) -> Result<Vec<FromWorker>, UserMessage> {
    let Phase::Preparing(preparation) = &mut run.phase else {
        return Ok(Vec::new());
    };
    let started = clock();
    while !preparation.is_done() && clock() - started < SLICE_MILLIS {
        preparation.step(model, samples).await?;
    }
    let (prepared, total) = preparation.progress();
    let run_id = run.run_id;
    let progress = FromWorker::TrainingPreparing { run_id, prepared, total };
    if !preparation.is_done() {
        return Ok(vec![progress]);
    }
    let builder = preparation.builder.take().ok_or_else(|| UserMessage::verbatim("the inputs are already complete"))?;
    let views = builder.views();
    let mut data = builder.finish(run.class_names.clone(), &Device::Cpu).map_err(UserMessage::from)?;
    if let Some(target) = preparation.target_builder.take() {
        let target = target.finish(vec!["target".into()], &Device::Cpu).map_err(UserMessage::from)?;
        data.target = Some(target.inputs);
    }
    let cache_bytes = data.cache_bytes();
    let config = preparation.config.clone();
    let mut trainer = Trainer::fine_tuning(data, config, model.extractor.backbone()).map_err(UserMessage::from)?;
    if let Some(gpu) = model.extractor.executor().gpu() {
        // Refused where the GPU kernels do not cover the blocks (training-mode batch norm, the
        // stem); the start message says why.
        let _ = trainer.use_gpu(gpu.context().clone()).await;
    }
    let reply = started_message(run_id, &trainer, views, cache_bytes);
    let now = clock();
    (run.started, run.epoch_started) = (now, now);
    run.phase = Phase::Training(Box::new(trainer));
    Ok(vec![progress, reply])
}
