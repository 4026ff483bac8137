//! The model worker: owns the engine. Loads the backbone, classifies with the ImageNet head
//! (smoke path), embeds training examples once and caches their features, trains heads epoch
//! by epoch while staying responsive to `StopTraining`, and predicts with the trained head.
//! Runs in a Web Worker (`graft-worker` binary), so the page never computes.

use std::collections::HashMap;

use candle_core::Tensor;
use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use graft::classify::ImageNetClassifier;
use graft::manifest::ModelManifest;
use graft::preprocess::{decode_image, image_from_rgba};
use graft::train::{HeadTrainer, TrainedHead};
use graft::GraftError;
use image::RgbImage;
use yew_agent::prelude::*;

use crate::fetch::{fetch_bytes, fetch_text};
use crate::protocol::{ClassSamples, FromWorker, ImageData, ToWorker};

/// What the page shows as the compute backend.
pub const CPU_BACKEND: &str = "CPU · WebAssembly SIMD128";

type Scope = ReactorScope<ToWorker, FromWorker>;

fn now_millis() -> f64 {
    js_sys::Date::now()
}

/// Resolves `file` against the folder of `manifest_url`.
fn sibling_url(manifest_url: &str, file: &str) -> String {
    match manifest_url.rfind('/') {
        Some(slash) => format!("{}{file}", &manifest_url[..=slash]),
        None => file.to_string(),
    }
}

fn decode(image: ImageData) -> Result<RgbImage, GraftError> {
    match image {
        ImageData::File { file_name, bytes } => decode_image(&file_name, &bytes),
        ImageData::Frame { width, height, rgba } => image_from_rgba("webcam frame", width, height, rgba),
    }
}

/// A training run in progress.
struct Run {
    trainer: HeadTrainer,
    started: f64,
    samples_per_epoch: usize,
}

#[derive(Default)]
struct Worker {
    classifier: Option<ImageNetClassifier>,
    /// Cached features `(1280,)` per sample id.
    embeddings: HashMap<u64, Tensor>,
    run: Option<Run>,
    head: Option<TrainedHead>,
}

#[reactor(GraftWorker)]
pub async fn graft_worker(mut scope: Scope) {
    let mut worker = Worker::default();
    loop {
        let message = if worker.run.is_some() {
            // Between epochs, look for a message (a Stop, a sample) without waiting for one.
            let tick = gloo::timers::future::TimeoutFuture::new(0);
            match select(scope.next(), tick).await {
                Either::Left((message, _)) => message,
                Either::Right(_) => {
                    let reply = worker.train_epoch();
                    if scope.send(reply).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        } else {
            scope.next().await
        };
        let Some(message) = message else { break };
        let reply = match message {
            ToWorker::LoadModel { manifest_url } => worker.load(&manifest_url, &mut scope).await,
            ToWorker::Classify { request_id, file_name, bytes } => worker.classify(request_id, file_name, &bytes),
            ToWorker::AddSample { sample_id, image } => worker.add_sample(sample_id, image),
            ToWorker::RemoveSample { sample_id } => {
                worker.embeddings.remove(&sample_id);
                continue;
            }
            ToWorker::Train { classes, config } => worker.start_training(classes, config),
            ToWorker::StopTraining => match worker.finish_training(true) {
                Some(reply) => reply,
                None => continue,
            },
            ToWorker::Predict { request_id, image } => worker.predict(request_id, image),
        };
        if scope.send(reply).await.is_err() {
            break;
        }
    }
}

impl Worker {
    async fn load(&mut self, manifest_url: &str, scope: &mut Scope) -> FromWorker {
        let started = now_millis();
        match load_model(manifest_url, scope).await {
            Ok((model, name)) => {
                self.classifier = Some(model);
                FromWorker::ModelReady {
                    model_name: name,
                    backend: CPU_BACKEND.to_string(),
                    load_millis: now_millis() - started,
                }
            }
            Err(message) => FromWorker::LoadFailed { message },
        }
    }

    fn classify(&self, request_id: u64, file_name: String, bytes: &[u8]) -> FromWorker {
        let Some(classifier) = &self.classifier else {
            return FromWorker::ClassifyFailed { request_id, file_name, message: "the model is not loaded yet".into() };
        };
        let started = now_millis();
        let outcome = decode_image(&file_name, bytes).and_then(|image| classifier.top_k(&[image], 5));
        match outcome {
            Ok(mut top) => FromWorker::Classified {
                request_id,
                file_name,
                top5: top.pop().unwrap_or_default(),
                millis: now_millis() - started,
            },
            Err(e) => FromWorker::ClassifyFailed { request_id, file_name, message: e.to_string() },
        }
    }

    fn embed(&self, image: ImageData) -> Result<Tensor, String> {
        let classifier = self.classifier.as_ref().ok_or("the model is not loaded yet")?;
        let image = decode(image).map_err(|e| e.to_string())?;
        let features = classifier.extractor().embed(&[image]).map_err(|e| e.to_string())?;
        features.squeeze(0).map_err(|e| e.to_string())
    }

    fn add_sample(&mut self, sample_id: u64, image: ImageData) -> FromWorker {
        let started = now_millis();
        match self.embed(image) {
            Ok(features) => {
                self.embeddings.insert(sample_id, features);
                FromWorker::SampleEmbedded { sample_id, millis: now_millis() - started }
            }
            Err(message) => FromWorker::SampleRejected { sample_id, message },
        }
    }

    fn start_training(&mut self, classes: Vec<ClassSamples>, config: graft::train::TrainConfig) -> FromWorker {
        match self.new_trainer(classes, config) {
            Ok(trainer) => {
                let split = trainer.split();
                let reply =
                    FromWorker::TrainingStarted { train_samples: split.train.len(), val_samples: split.val.len() };
                self.run = Some(Run { samples_per_epoch: split.train.len(), trainer, started: now_millis() });
                reply
            }
            Err(message) => FromWorker::TrainingFailed { message },
        }
    }

    fn new_trainer(
        &self,
        classes: Vec<ClassSamples>,
        config: graft::train::TrainConfig,
    ) -> Result<HeadTrainer, String> {
        let names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            for id in &class.sample_ids {
                // Samples still being embedded (or rejected) are left out of this run.
                if let Some(features) = self.embeddings.get(id) {
                    rows.push(features.clone());
                    labels.push(label);
                }
            }
        }
        if let Some(empty) = classes.iter().enumerate().find(|(label, _)| !labels.contains(label)) {
            return Err(format!("class \"{}\" has no samples", empty.1.name));
        }
        let features = Tensor::stack(&rows, 0).map_err(|e| e.to_string())?;
        HeadTrainer::new(features, labels, &names, config).map_err(|e| e.to_string())
    }

    fn train_epoch(&mut self) -> FromWorker {
        let Some(run) = self.run.as_mut() else {
            return FromWorker::TrainingFailed { message: "no training in progress".into() };
        };
        if run.trainer.is_done() {
            return self
                .finish_training(false)
                .unwrap_or(FromWorker::TrainingFailed { message: "no training in progress".into() });
        }
        let started = now_millis();
        match run.trainer.run_epoch() {
            Ok(metrics) => FromWorker::EpochDone {
                metrics,
                samples_per_second: run.samples_per_epoch as f64 / ((now_millis() - started) / 1000.0).max(1e-3),
                elapsed_millis: now_millis() - run.started,
            },
            Err(e) => {
                self.run = None;
                FromWorker::TrainingFailed { message: e.to_string() }
            }
        }
    }

    /// Ends the run (if any), keeping its best weights.
    fn finish_training(&mut self, stopped_early: bool) -> Option<FromWorker> {
        let run = self.run.take()?;
        Some(match run.trainer.finish() {
            Ok(head) => {
                let report = head.report.clone();
                self.head = Some(head);
                FromWorker::TrainingDone { report, stopped_early }
            }
            Err(e) => FromWorker::TrainingFailed { message: e.to_string() },
        })
    }

    fn predict(&self, request_id: u64, image: ImageData) -> FromWorker {
        let started = now_millis();
        let outcome = (|| {
            let head = self.head.as_ref().ok_or("train the model first")?;
            let features = self.embed(image)?.unsqueeze(0).map_err(|e| e.to_string())?;
            let probs = head.predict(&features).map_err(|e| e.to_string())?;
            probs.squeeze(0).and_then(|p| p.to_vec1::<f32>()).map_err(|e| e.to_string())
        })();
        match outcome {
            Ok(probs) => FromWorker::Predicted { request_id, probs, millis: now_millis() - started },
            Err(message) => FromWorker::PredictFailed { request_id, message },
        }
    }
}

async fn load_model(manifest_url: &str, scope: &mut Scope) -> Result<(ImageNetClassifier, String), String> {
    let manifest = ModelManifest::from_json(&fetch_text(manifest_url).await?).map_err(|e| e.to_string())?;
    let labels = fetch_text(&sibling_url(manifest_url, &manifest.labels)).await?;
    let weights_url = sibling_url(manifest_url, &manifest.weights);
    // The download queues progress; a second task forwards it to the page meanwhile.
    let (progress_tx, mut progress_rx) = futures::channel::mpsc::unbounded();
    let download = fetch_bytes(&weights_url, manifest.weights_bytes, move |loaded, total| {
        let _ = progress_tx.unbounded_send(FromWorker::LoadProgress { loaded_bytes: loaded, total_bytes: total });
    });
    let forward = async {
        while let Some(progress) = progress_rx.next().await {
            let _ = scope.send(progress).await;
        }
    };
    let (weights, ()) = futures::join!(download, forward);
    let classifier =
        ImageNetClassifier::load(&manifest, weights?, &labels, &candle_core::Device::Cpu).map_err(|e| e.to_string())?;
    Ok((classifier, manifest.display_name))
}
