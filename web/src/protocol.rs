//! Messages between the page and the model worker. Serde enums with named fields; the worker
//! answers every request with exactly one final message (plus progress while loading).

use graft::classify::Prediction;
use graft::train::{EpochMetrics, TrainConfig, TrainReport};
use serde::{Deserialize, Serialize};

/// An example's pixels: an image file's bytes, or a webcam frame already drawn to RGBA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImageData {
    File { file_name: String, bytes: Vec<u8> },
    Frame { width: u32, height: u32, rgba: Vec<u8> },
}

impl ImageData {
    pub fn name(&self) -> &str {
        match self {
            ImageData::File { file_name, .. } => file_name,
            ImageData::Frame { .. } => "webcam frame",
        }
    }
}

/// One class as sent for training: its name and the samples it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSamples {
    pub name: String,
    pub sample_ids: Vec<u64>,
}

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Fetch the manifest at `manifest_url`, then its weights and labels, and build the model.
    LoadModel { manifest_url: String },
    /// Classify one image file's bytes with the pretrained ImageNet head.
    Classify { request_id: u64, file_name: String, bytes: Vec<u8> },
    /// Embed a training example and cache its features under `sample_id`.
    AddSample { sample_id: u64, image: ImageData },
    /// Forget a sample's cached features.
    RemoveSample { sample_id: u64 },
    /// Train a new head on the cached features of these classes' samples.
    Train { classes: Vec<ClassSamples>, config: TrainConfig },
    /// End training now, keeping the best weights so far.
    StopTraining,
    /// Classify an image with the trained head.
    Predict { request_id: u64, image: ImageData },
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    LoadProgress { loaded_bytes: u64, total_bytes: u64 },
    ModelReady { model_name: String, backend: String, load_millis: f64 },
    LoadFailed { message: String },
    Classified { request_id: u64, file_name: String, top5: Vec<Prediction>, millis: f64 },
    ClassifyFailed { request_id: u64, file_name: String, message: String },
    SampleEmbedded { sample_id: u64, millis: f64 },
    SampleRejected { sample_id: u64, message: String },
    TrainingStarted { train_samples: usize, val_samples: usize },
    EpochDone { metrics: EpochMetrics, samples_per_second: f64, elapsed_millis: f64 },
    TrainingDone { report: TrainReport, stopped_early: bool },
    TrainingFailed { message: String },
    Predicted { request_id: u64, probs: Vec<f32>, millis: f64 },
    PredictFailed { request_id: u64, message: String },
}
