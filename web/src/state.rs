//! The page's state: a `Reducible` driven by `Action`s (worker messages and user actions).

use std::cell::Cell;
use std::rc::Rc;

use graft::classify::Prediction;
use graft::train::{EpochMetrics, TrainConfig, TrainReport};
use yew::Reducible;

use crate::protocol::FromWorker;

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// A fresh id for a class, a sample or a request.
pub fn next_id() -> u64 {
    NEXT_ID.with(|id| {
        let value = id.get();
        id.set(value + 1);
        value
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    Loading { loaded_bytes: u64, total_bytes: u64 },
    Ready { model_name: String, backend: String, load_millis: f64 },
    Failed { message: String },
}

/// A picture the page can show: an object URL (kept alive while shown) or a data URL.
#[derive(Clone)]
pub enum Picture {
    Object(Rc<gloo::file::ObjectUrl>),
    Data(Rc<str>),
}

impl Picture {
    pub fn src(&self) -> String {
        match self {
            Picture::Object(url) => url.to_string(),
            Picture::Data(url) => url.to_string(),
        }
    }
}

#[derive(Clone)]
pub struct Sample {
    pub id: u64,
    pub picture: Picture,
    pub embedded: bool,
}

#[derive(Clone)]
pub struct ClassState {
    pub id: u64,
    pub name: String,
    pub samples: Vec<Sample>,
}

impl ClassState {
    pub fn new(name: String) -> Self {
        Self { id: next_id(), name, samples: Vec::new() }
    }
}

/// The image being (or last) classified by the ImageNet smoke path.
#[derive(Clone)]
pub struct ChosenImage {
    pub request_id: u64,
    pub file_name: String,
    pub preview_url: Rc<gloo::file::ObjectUrl>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub file_name: String,
    pub top5: Vec<Prediction>,
    pub millis: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrainStatus {
    Idle,
    Training,
    Done,
    Error,
}

/// Everything the training panel shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainingView {
    pub running: bool,
    pub failed: bool,
    pub history: Vec<EpochMetrics>,
    pub epochs_planned: usize,
    pub samples_per_second: f64,
    pub elapsed_millis: f64,
    pub report: Option<TrainReport>,
    /// Class names in the order the head was trained with.
    pub class_names: Vec<String>,
    /// The data changed after training.
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PredictionView {
    pub request_id: u64,
    pub probs: Vec<f32>,
    pub millis: f64,
    pub label: String,
}

#[derive(Clone)]
pub struct AppState {
    pub model: ModelStatus,
    pub classes: Vec<ClassState>,
    pub settings: TrainConfig,
    pub training: TrainingView,
    pub prediction: Option<PredictionView>,
    pub pending_prediction: Option<(u64, String)>,
    pub skipped: Vec<String>,
    pub chosen: Option<ChosenImage>,
    pub busy: bool,
    pub result: Option<Classification>,
    pub error: Option<String>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            model: ModelStatus::Loading { loaded_bytes: 0, total_bytes: 0 },
            classes: vec![ClassState::new("Class 1".into()), ClassState::new("Class 2".into())],
            settings: TrainConfig::default(),
            training: TrainingView::default(),
            prediction: None,
            pending_prediction: None,
            skipped: Vec::new(),
            chosen: None,
            busy: false,
            result: None,
            error: None,
        }
    }
}

impl AppState {
    pub fn pending_samples(&self) -> usize {
        self.classes.iter().flat_map(|c| &c.samples).filter(|s| !s.embedded).count()
    }

    pub fn train_status(&self) -> TrainStatus {
        if self.training.running {
            TrainStatus::Training
        } else if self.training.failed {
            TrainStatus::Error
        } else if self.training.report.is_some() {
            TrainStatus::Done
        } else {
            TrainStatus::Idle
        }
    }

    /// Why training cannot start now, naming the class at fault.
    pub fn training_blocker(&self) -> Option<String> {
        if self.classes.len() < 2 {
            return Some("Add at least two classes to train.".into());
        }
        self.classes.iter().find(|c| c.samples.is_empty()).map(|c| format!("Class \"{}\" has no samples yet.", c.name))
    }

    fn mark_stale(&mut self) {
        if self.training.report.is_some() {
            self.training.stale = true;
        }
    }

    fn class_mut(&mut self, id: u64) -> Option<&mut ClassState> {
        self.classes.iter_mut().find(|c| c.id == id)
    }
}

pub enum Action {
    Worker(FromWorker),
    /// The user picked an image for the ImageNet smoke path.
    Chose(ChosenImage),
    Error {
        message: String,
    },
    AddClass,
    RenameClass {
        class_id: u64,
        name: String,
    },
    DeleteClass {
        class_id: u64,
    },
    AddSamples {
        class_id: u64,
        samples: Vec<Sample>,
    },
    RemoveSample {
        class_id: u64,
        sample_id: u64,
    },
    Settings(TrainConfig),
    TrainingRequested {
        class_names: Vec<String>,
    },
    PredictRequested {
        request_id: u64,
        label: String,
    },
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Chose(image) => {
                next.chosen = Some(image);
                next.busy = true;
                next.error = None;
            }
            Action::Error { message } => {
                next.busy = false;
                next.error = Some(message);
            }
            Action::AddClass => {
                let name = format!("Class {}", next.classes.len() + 1);
                next.classes.push(ClassState::new(name));
            }
            Action::RenameClass { class_id, name } => {
                if let Some(class) = next.class_mut(class_id) {
                    class.name = name;
                }
                next.mark_stale();
            }
            Action::DeleteClass { class_id } => {
                next.classes.retain(|c| c.id != class_id);
                next.mark_stale();
            }
            Action::AddSamples { class_id, samples } => {
                if let Some(class) = next.class_mut(class_id) {
                    class.samples.extend(samples);
                }
                next.skipped.clear();
                next.mark_stale();
            }
            Action::RemoveSample { class_id, sample_id } => {
                if let Some(class) = next.class_mut(class_id) {
                    class.samples.retain(|s| s.id != sample_id);
                }
                next.mark_stale();
            }
            Action::Settings(settings) => next.settings = settings,
            Action::TrainingRequested { class_names } => {
                next.training = TrainingView {
                    running: true,
                    epochs_planned: next.settings.epochs,
                    class_names,
                    ..TrainingView::default()
                };
                next.prediction = None;
                next.error = None;
            }
            Action::PredictRequested { request_id, label } => {
                next.pending_prediction = Some((request_id, label));
            }
            Action::Worker(message) => next.apply_worker(message),
        }
        Rc::new(next)
    }
}

impl AppState {
    fn is_current(&self, request_id: u64) -> bool {
        self.chosen.as_ref().is_some_and(|c| c.request_id == request_id)
    }

    fn apply_worker(&mut self, message: FromWorker) {
        match message {
            FromWorker::LoadProgress { loaded_bytes, total_bytes } => {
                self.model = ModelStatus::Loading { loaded_bytes, total_bytes }
            }
            FromWorker::ModelReady { model_name, backend, load_millis } => {
                self.model = ModelStatus::Ready { model_name, backend, load_millis }
            }
            FromWorker::LoadFailed { message } => {
                self.error = Some(format!("The model could not be loaded: {message}"));
                self.model = ModelStatus::Failed { message };
            }
            FromWorker::Classified { request_id, file_name, top5, millis } if self.is_current(request_id) => {
                self.busy = false;
                self.error = None;
                self.result = Some(Classification { file_name, top5, millis });
            }
            FromWorker::ClassifyFailed { request_id, message, .. } if self.is_current(request_id) => {
                self.busy = false;
                self.result = None;
                self.error = Some(message);
            }
            FromWorker::Classified { .. } | FromWorker::ClassifyFailed { .. } => {}
            FromWorker::SampleEmbedded { sample_id, .. } => {
                for sample in self.classes.iter_mut().flat_map(|c| c.samples.iter_mut()) {
                    if sample.id == sample_id {
                        sample.embedded = true;
                    }
                }
            }
            FromWorker::SampleRejected { sample_id, message } => {
                for class in &mut self.classes {
                    class.samples.retain(|s| s.id != sample_id);
                }
                self.skipped.push(message);
            }
            FromWorker::TrainingStarted { .. } => {}
            FromWorker::EpochDone { metrics, samples_per_second, elapsed_millis } => {
                self.training.history.push(metrics);
                self.training.samples_per_second = samples_per_second;
                self.training.elapsed_millis = elapsed_millis;
            }
            FromWorker::TrainingDone { report, .. } => {
                self.training.running = false;
                self.training.report = Some(report);
            }
            FromWorker::TrainingFailed { message } => {
                self.training.running = false;
                self.training.failed = true;
                self.error = Some(message);
            }
            FromWorker::Predicted { request_id, probs, millis } => {
                let label = match &self.pending_prediction {
                    Some((id, label)) if *id == request_id => label.clone(),
                    _ => "webcam".into(),
                };
                self.prediction = Some(PredictionView { request_id, probs, millis, label });
            }
            FromWorker::PredictFailed { message, .. } => self.error = Some(message),
        }
    }
}
