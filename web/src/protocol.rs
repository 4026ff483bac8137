//! Messages between the page and the model worker. Serde enums with named fields; the worker
//! answers every request with exactly one final message (plus progress while loading and
//! epochs while training), which [`ToWorker::request`] and [`FromWorker::answers`] pair up.

use graft::backbone::{Architecture, BackboneKey, BlockInfo};
use graft::classify::Prediction;
use graft::embed::EmbeddingCache;
use graft::exec::BackendStatus;
use graft::gpu::BackendChoice;
use graft::message::UserMessage as Text;
use graft::preprocess::StoredImage;
use graft::project::Project;
use graft::train::{EpochMetrics, SavedHead, TrainConfig, TrainReport};
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

/// A saved project as the project picker lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch of the last save.
    pub modified: f64,
    pub samples: usize,
    /// Its record could not be read: opening it makes a new one from its samples.
    #[serde(default)]
    pub damaged: bool,
}

/// A sample's thumbnail, for the page to show after a project is opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub sample_id: u64,
    pub image: StoredImage,
}

/// One class as sent for training: its name and the samples it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSamples {
    pub name: String,
    pub sample_ids: Vec<u64>,
}

/// The embedding pool as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Workers embedding new samples (1: the model worker alone).
    pub workers: u32,
    /// Of those, the ones holding the loaded backbone (the others are still loading it).
    pub loaded: u32,
    /// Logical cores (`navigator.hardwareConcurrency`).
    pub cores: u32,
    /// Device memory in GB where the browser says (`navigator.deviceMemory`).
    pub device_gb: Option<f64>,
    /// The embedders' wasm memory together.
    pub memory_bytes: u64,
    /// Why fewer workers than asked for, or what went wrong.
    pub note: Option<Text>,
}

/// The project to start when none is saved: named, and its classes named, in the page's language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreshProject {
    pub name: String,
    pub project: Project,
}

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Fetch the manifest at `manifest_url`, then its weights and labels, build the model and
    /// move it to `backend`.
    LoadModel { manifest_url: String, backend: BackendChoice },
    /// Move the backbone (and the head's training) to `choice`.
    SelectBackend { choice: BackendChoice },
    /// Embed new samples on `workers` Web Workers running `script_url` (the worker's own
    /// script, absolute), or one per core where `None`; answered by `PoolChanged`.
    SetPool { script_url: String, workers: Option<u32> },
    /// Test hook: destroy the GPU device, as a driver reset would (no answer; the worker
    /// reports `BackendChanged` when the work in flight moves to the CPU).
    LoseGpuDevice,
    /// Classify one image file's bytes with the pretrained classifier.
    Classify { request_id: u64, file_name: String, bytes: Vec<u8> },
    /// Embed a training example, keep its image and cache its features under `sample_id`.
    AddSample { sample_id: u64, image: ImageData },
    /// Forget a sample (no answer: nothing can fail).
    RemoveSample { sample_id: u64 },
    /// Train a new head on the cached features of these classes' samples; with unfrozen blocks
    /// or augmentation, first run the frozen part on their stored images (and views).
    /// `target`: unlabelled samples of the new domain, which a run adapts to when
    /// `config.adapt` says so. `check`: labelled images of the new domain per class (in class
    /// order), never trained on, scored once the run ends (`CheckScored`).
    Train { run_id: u64, classes: Vec<ClassSamples>, config: TrainConfig, target: Vec<u64>, check: Vec<Vec<u64>> },
    /// A few augmented views of stored samples at `strength`, to show what augmentation does.
    PreviewAugment { request_id: u64, sample_ids: Vec<u64>, strength: f32 },
    /// End run `run_id` now, keeping the best weights so far (no answer of its own: the run
    /// ends with `TrainingDone`).
    StopTraining { run_id: u64 },
    /// Classify an image with the trained head.
    Predict { request_id: u64, image: ImageData },
    /// A sample's stored image (downscaled, encoded), for saving it.
    ExportSample { request_id: u64, sample_id: u64 },
    /// The trained head with its class names and report.
    ExportHead { request_id: u64 },
    /// Use `head` (from a saved project) as the trained head.
    ImportHead { request_id: u64, head: SavedHead },
    /// The embedding cache, keyed by the backbone that made it.
    ExportEmbeddings { request_id: u64 },
    /// Open a saved project (`None`: the last one saved, or `fresh` if there is none): its
    /// samples, embeddings and trained model replace the worker's.
    OpenProject { request_id: u64, project_id: Option<String>, fresh: FreshProject },
    /// Start a new, empty project with `project` (two empty classes) and save it.
    NewProject { request_id: u64, name: String, project: Project },
    /// Save the open project's classes, settings and curves (its model is saved by the worker
    /// when training ends). No answer; a failure comes as `StorageFailed`.
    SaveProject { name: String, project: Project },
    /// Take the open project over from the tab that edits it (`ProjectHeldElsewhere`), then
    /// open it again as saved (`fresh` if that tab deleted it); answered with `ProjectOpened`.
    TakeOver { request_id: u64, fresh: FreshProject },
    /// Delete the open project; the last one saved (or `fresh`) opens.
    DeleteProject { request_id: u64, fresh: FreshProject },
    /// The open project as a `.graft` file.
    ExportProject { request_id: u64, name: String, project: Project },
    /// Check a `.graft` file, then open it as a new saved project.
    ImportProject { request_id: u64, file_name: String, bytes: Vec<u8> },
    /// The trained model as one `.safetensors` file with its metadata.
    ExportModel { request_id: u64, class_names: Vec<String> },
    /// Add an exported embedding cache (it must come from the loaded backbone).
    ImportEmbeddings { request_id: u64, cache: EmbeddingCache },
    /// Use `architecture` as the backbone (on `backend`): load it (or take it back if it was
    /// loaded before), then embed the open project's stored images again where its features
    /// are not saved yet (`Reembedding` progress); answered with `ProjectOpened`.
    SwitchBackbone { request_id: u64, architecture: Architecture, backend: BackendChoice },
    /// LogME of every available backbone's features of these classes' samples, without
    /// training; answered with `BackbonesRanked`.
    RankBackbones { request_id: u64, classes: Vec<ClassSamples>, backend: BackendChoice },
}

/// A backbone the page can switch to, from its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneOption {
    pub architecture: Architecture,
    pub name: String,
    /// Size of its weights download.
    pub weights_bytes: u64,
    /// Published ImageNet top-1 accuracy, %.
    pub imagenet_top1: f32,
}

/// One backbone's transferability to the project's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneScore {
    pub architecture: Architecture,
    /// LogME: the mean log evidence per sample and class (higher transfers better).
    pub logme: f64,
    pub images: usize,
    /// Embedding (when not cached) and scoring.
    pub millis: f64,
}

/// What a request is answered for: the pairing key between a request and its final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    Load,
    Backend,
    Classify(u64),
    Sample(u64),
    Train(u64),
    Other(u64),
}

impl ToWorker {
    /// The request this message opens, if it expects a final answer.
    pub fn request(&self) -> Option<Request> {
        Some(match self {
            ToWorker::LoadModel { .. } => Request::Load,
            ToWorker::SelectBackend { .. } => Request::Backend,
            ToWorker::Classify { request_id, .. } => Request::Classify(*request_id),
            ToWorker::AddSample { sample_id, .. } => Request::Sample(*sample_id),
            ToWorker::Train { run_id, .. } => Request::Train(*run_id),
            ToWorker::Predict { request_id, .. }
            | ToWorker::ExportSample { request_id, .. }
            | ToWorker::ExportHead { request_id }
            | ToWorker::ImportHead { request_id, .. }
            | ToWorker::ExportEmbeddings { request_id }
            | ToWorker::OpenProject { request_id, .. }
            | ToWorker::NewProject { request_id, .. }
            | ToWorker::DeleteProject { request_id, .. }
            | ToWorker::TakeOver { request_id, .. }
            | ToWorker::ExportProject { request_id, .. }
            | ToWorker::ImportProject { request_id, .. }
            | ToWorker::ExportModel { request_id, .. }
            | ToWorker::ImportEmbeddings { request_id, .. }
            | ToWorker::SwitchBackbone { request_id, .. }
            | ToWorker::RankBackbones { request_id, .. }
            | ToWorker::PreviewAugment { request_id, .. } => Request::Other(*request_id),
            ToWorker::RemoveSample { .. }
            | ToWorker::StopTraining { .. }
            | ToWorker::LoseGpuDevice
            | ToWorker::SetPool { .. }
            | ToWorker::SaveProject { .. } => return None,
        })
    }
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    LoadProgress {
        loaded_bytes: u64,
        total_bytes: u64,
    },
    ModelReady {
        model_name: String,
        backend: BackendStatus,
        backbone: BackboneKey,
        /// The backbone's blocks, in order (the freeze picture).
        blocks: Vec<BlockInfo>,
        load_millis: f64,
        /// One image through the backbone, measured in this browser after loading.
        ms_per_image: f64,
    },
    /// The backbones whose manifests the site serves (after the first model loaded).
    BackbonesListed {
        options: Vec<BackboneOption>,
    },
    /// Stored images embedded again by a new backbone: `done` of `total`.
    Reembedding {
        done: usize,
        total: usize,
    },
    /// The run's no-transfer baseline (the same head on raw 32 x 32 pixels, same split and
    /// seed) finished: its validation accuracy beside the transferred model's.
    BaselineDone {
        run_id: u64,
        baseline_accuracy: f32,
        transferred_accuracy: f32,
    },
    /// The baseline could not be trained (the comparison is not shown).
    BaselineFailed {
        run_id: u64,
        message: Text,
    },
    /// Run `run_id`'s model on its check images (labelled new-domain images it never trained
    /// on); `adapted`: whether the run adapted to the new domain.
    CheckScored {
        run_id: u64,
        adapted: bool,
        accuracy: f32,
        images: usize,
    },
    /// The check images could not be scored.
    CheckFailed {
        run_id: u64,
        message: Text,
    },
    /// The answer to `RankBackbones`: best first.
    BackbonesRanked {
        request_id: u64,
        scores: Vec<BackboneScore>,
    },
    LoadFailed {
        message: Text,
    },
    /// The answer to `SelectBackend`: what runs now, and why WebGPU could not when it was asked
    /// for.
    BackendSelected {
        status: BackendStatus,
        error: Option<Text>,
    },
    /// The backend changed on its own: the GPU failed and the CPU took over.
    BackendChanged {
        status: BackendStatus,
    },
    /// The embedding pool started, lost a worker, or grew in memory.
    PoolChanged {
        pool: PoolStatus,
    },
    Classified {
        request_id: u64,
        file_name: String,
        top5: Vec<Prediction>,
        millis: f64,
    },
    ClassifyFailed {
        request_id: u64,
        file_name: String,
        message: Text,
    },
    SampleEmbedded {
        sample_id: u64,
        millis: f64,
    },
    SampleRejected {
        sample_id: u64,
        message: Text,
    },
    /// The frozen part has run on `prepared` of `total` samples (fine-tuning, augmentation).
    TrainingPreparing {
        run_id: u64,
        prepared: usize,
        total: usize,
    },
    TrainingStarted {
        run_id: u64,
        train_samples: usize,
        val_samples: usize,
        /// Where the run trains (`"WebGPU · <adapter>"` or `"CPU"`, and which part).
        device: String,
        /// Augmented views cached per sample (0: none).
        views: usize,
        /// Memory of the cached inputs (features, or activations at the freeze boundary).
        cache_bytes: usize,
    },
    EpochDone {
        run_id: u64,
        metrics: EpochMetrics,
        samples_per_second: f64,
        elapsed_millis: f64,
    },
    TrainingDone {
        run_id: u64,
        report: TrainReport,
        stopped_early: bool,
        head: SavedHead,
        /// Why the run stopped when its loss exploded (the best weights were kept).
        diverged: Option<Text>,
    },
    TrainingFailed {
        run_id: u64,
        message: Text,
    },
    Predicted {
        request_id: u64,
        probs: Vec<f32>,
        millis: f64,
    },
    PredictFailed {
        request_id: u64,
        message: Text,
    },
    SampleExported {
        request_id: u64,
        sample_id: u64,
        image: StoredImage,
    },
    HeadExported {
        request_id: u64,
        head: SavedHead,
    },
    HeadImported {
        request_id: u64,
        class_names: Vec<String>,
    },
    EmbeddingsExported {
        request_id: u64,
        cache: EmbeddingCache,
    },
    EmbeddingsImported {
        request_id: u64,
        sample_ids: Vec<u64>,
    },
    /// Augmented views (PNG), in the order of the request's samples.
    AugmentPreview {
        request_id: u64,
        images: Vec<StoredImage>,
    },
    /// A project opened (after a reload, a switch, an import or a new one): what the page
    /// shows of it, and every saved project.
    ProjectOpened {
        request_id: u64,
        project_id: String,
        name: String,
        project: Box<Project>,
        thumbnails: Vec<Thumbnail>,
        projects: Vec<ProjectSummary>,
        /// What could not be read and was left out (a broken sample or model record).
        lost: Vec<Text>,
    },
    /// A file for the page to offer as a download (a `.graft` project, a model).
    FileReady {
        request_id: u64,
        file_name: String,
        mime: String,
        bytes: Vec<u8>,
    },
    /// The saved projects changed (a save, a rename, a deletion).
    ProjectsListed {
        projects: Vec<ProjectSummary>,
    },
    /// Another tab edits the open project (it holds the project's lock): this tab shows it
    /// but saves nothing until it takes it over; `taken_over` when that tab took it from this one.
    ProjectHeldElsewhere {
        name: String,
        taken_over: bool,
    },
    /// How much the browser stores for this site, and its quota (bytes).
    StorageUsed {
        usage: f64,
        quota: f64,
    },
    /// Saving failed (the storage is full or unavailable); what was saved before is intact.
    StorageFailed {
        message: Text,
    },
    /// Saving, paused because the storage was full, went through again (with what waited).
    StorageResumed,
    /// A request of the `Other` kind failed (exports, imports).
    RequestFailed {
        request_id: u64,
        message: Text,
    },
}

impl FromWorker {
    /// The request this message finally answers, if it is a final answer.
    pub fn answers(&self) -> Option<Request> {
        Some(match self {
            FromWorker::ModelReady { .. } | FromWorker::LoadFailed { .. } => Request::Load,
            FromWorker::BackendSelected { .. } => Request::Backend,
            FromWorker::Classified { request_id, .. } | FromWorker::ClassifyFailed { request_id, .. } => {
                Request::Classify(*request_id)
            }
            FromWorker::SampleEmbedded { sample_id, .. } | FromWorker::SampleRejected { sample_id, .. } => {
                Request::Sample(*sample_id)
            }
            FromWorker::TrainingDone { run_id, .. } | FromWorker::TrainingFailed { run_id, .. } => {
                Request::Train(*run_id)
            }
            FromWorker::Predicted { request_id, .. }
            | FromWorker::PredictFailed { request_id, .. }
            | FromWorker::SampleExported { request_id, .. }
            | FromWorker::HeadExported { request_id, .. }
            | FromWorker::HeadImported { request_id, .. }
            | FromWorker::EmbeddingsExported { request_id, .. }
            | FromWorker::EmbeddingsImported { request_id, .. }
            | FromWorker::AugmentPreview { request_id, .. }
            | FromWorker::ProjectOpened { request_id, .. }
            | FromWorker::BackbonesRanked { request_id, .. }
            | FromWorker::FileReady { request_id, .. }
            | FromWorker::RequestFailed { request_id, .. } => Request::Other(*request_id),
            FromWorker::LoadProgress { .. }
            | FromWorker::BackbonesListed { .. }
            | FromWorker::BaselineDone { .. }
            | FromWorker::BaselineFailed { .. }
            | FromWorker::CheckScored { .. }
            | FromWorker::CheckFailed { .. }
            | FromWorker::Reembedding { .. }
            | FromWorker::BackendChanged { .. }
            | FromWorker::PoolChanged { .. }
            | FromWorker::TrainingPreparing { .. }
            | FromWorker::TrainingStarted { .. }
            | FromWorker::EpochDone { .. }
            | FromWorker::ProjectsListed { .. }
            | FromWorker::StorageUsed { .. }
            | FromWorker::ProjectHeldElsewhere { .. }
            | FromWorker::StorageResumed
            | FromWorker::StorageFailed { .. } => return None,
        })
    }
}
