//! The training scheduler: one run at a time, identified by the page's run id, advanced in
//! time slices between messages so that Stop (or a new sample) is handled within one slice
//! however long an epoch takes.

use graft::backbone::BackboneKey;
use graft::train::{SavedHead, TrainedHead, Trainer};

use crate::protocol::FromWorker;

/// Milliseconds of training between two looks at the message queue.
pub const SLICE_MILLIS: f64 = 50.0;

struct Run {
    run_id: u64,
    trainer: Trainer,
    class_names: Vec<String>,
    started: f64,
    epoch_started: f64,
}

/// The run in progress and the last trained head.
#[derive(Default)]
pub struct Training {
    run: Option<Run>,
    head: Option<(TrainedHead, SavedHead)>,
}

impl Training {
    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Starts run `run_id` (a run in progress is dropped: the page started a new one).
    pub fn start(&mut self, run_id: u64, trainer: Trainer, class_names: Vec<String>, now: f64) -> FromWorker {
        let split = trainer.split();
        let reply = FromWorker::TrainingStarted {
            run_id,
            train_samples: split.train.len(),
            val_samples: split.val.len(),
            device: trainer.device_description(),
        };
        self.run = Some(Run { run_id, trainer, class_names, started: now, epoch_started: now });
        reply
    }

    /// Trains for one slice; returns an epoch's metrics when one ended, and the end of the run
    /// when it ended (done, or failed).
    pub async fn slice(&mut self, clock: fn() -> f64, backbone: &BackboneKey) -> Vec<FromWorker> {
        let Some(run) = self.run.as_mut() else {
            return Vec::new();
        };
        let run_id = run.run_id;
        match run.trainer.step_for(&clock, SLICE_MILLIS).await {
            Ok(None) => Vec::new(),
            Ok(Some(metrics)) => {
                let now = clock();
                let seconds = ((now - run.epoch_started) / 1000.0).max(1e-3);
                let samples_per_second = run.trainer.split().train.len() as f64 / seconds;
                run.epoch_started = now;
                let epoch =
                    FromWorker::EpochDone { run_id, metrics, samples_per_second, elapsed_millis: now - run.started };
                let mut replies = vec![epoch];
                if run.trainer.is_done() {
                    replies.extend(self.finish(run_id, false, backbone).await);
                }
                replies
            }
            Err(e) => {
                self.run = None;
                vec![FromWorker::TrainingFailed { run_id, message: e.to_string() }]
            }
        }
    }

    /// Ends run `run_id` (if it is the one in progress), keeping its best weights.
    pub async fn finish(&mut self, run_id: u64, stopped_early: bool, backbone: &BackboneKey) -> Option<FromWorker> {
        if self.run.as_ref().is_none_or(|r| r.run_id != run_id) {
            return None;
        }
        let run = self.run.take()?;
        let outcome = run.trainer.finish().await.and_then(|head| {
            let saved = SavedHead::new(&head, backbone.clone(), run.class_names)?;
            Ok((head, saved))
        });
        Some(match outcome {
            Ok((head, saved)) => {
                let reply = FromWorker::TrainingDone {
                    run_id,
                    report: head.report.clone(),
                    stopped_early,
                    head: saved.clone(),
                };
                self.head = Some((head, saved));
                reply
            }
            Err(e) => FromWorker::TrainingFailed { run_id, message: e.to_string() },
        })
    }

    pub fn head(&self) -> Option<&(TrainedHead, SavedHead)> {
        self.head.as_ref()
    }

    pub fn set_head(&mut self, head: TrainedHead, saved: SavedHead) {
        self.head = Some((head, saved));
    }
}
