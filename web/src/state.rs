//! The page's state: a `Reducible` driven by `Action`s (worker messages and user choices).

use std::rc::Rc;

use graft::classify::Prediction;
use yew::Reducible;

use crate::protocol::FromWorker;

#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    Loading { loaded_bytes: u64, total_bytes: u64 },
    Ready { model_name: String, backend: String, load_millis: f64 },
    Failed { message: String },
}

/// The image being (or last) classified.
#[derive(Clone)]
pub struct ChosenImage {
    pub request_id: u64,
    pub file_name: String,
    pub preview_url: Rc<gloo::file::ObjectUrl>,
}

impl PartialEq for ChosenImage {
    fn eq(&self, other: &Self) -> bool {
        self.request_id == other.request_id
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub file_name: String,
    pub top5: Vec<Prediction>,
    pub millis: f64,
}

#[derive(Clone, PartialEq)]
pub struct AppState {
    pub model: ModelStatus,
    pub chosen: Option<ChosenImage>,
    pub busy: bool,
    pub result: Option<Classification>,
    pub error: Option<String>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            model: ModelStatus::Loading {
                loaded_bytes: 0,
                total_bytes: 0,
            },
            chosen: None,
            busy: false,
            result: None,
            error: None,
        }
    }
}

pub enum Action {
    Worker(FromWorker),
    /// The user picked an image; its bytes are on their way to the worker.
    Chose(ChosenImage),
    Error { message: String },
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
            FromWorker::LoadProgress {
                loaded_bytes,
                total_bytes,
            } => {
                self.model = ModelStatus::Loading {
                    loaded_bytes,
                    total_bytes,
                }
            }
            FromWorker::ModelReady {
                model_name,
                backend,
                load_millis,
            } => {
                self.model = ModelStatus::Ready {
                    model_name,
                    backend,
                    load_millis,
                }
            }
            FromWorker::LoadFailed { message } => {
                self.error = Some(format!("The model could not be loaded: {message}"));
                self.model = ModelStatus::Failed { message };
            }
            FromWorker::Classified {
                request_id,
                file_name,
                top5,
                millis,
            } if self.is_current(request_id) => {
                self.busy = false;
                self.error = None;
                self.result = Some(Classification { file_name, top5, millis });
            }
            FromWorker::ClassifyFailed {
                request_id,
                message,
                ..
            } if self.is_current(request_id) => {
                self.busy = false;
                self.result = None;
                self.error = Some(message);
            }
            // An answer to an image the user has since replaced.
            FromWorker::Classified { .. } | FromWorker::ClassifyFailed { .. } => {}
        }
    }
}
