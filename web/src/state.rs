//! The page's state: a serde [`Project`] (what is saved) and view state (pictures, progress,
//! curves, messages), one `Reducible` driven by `Action`s (worker messages and user actions).

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use graft::backbone::{Architecture, BlockInfo};
use graft::classify::Prediction;
use graft::exec::BackendStatus;
use graft::gpu::BackendChoice;
use graft::train::{EpochMetrics, Stage, TrainConfig, TrainReport};
use graft::transfer::baseline::TransferCheck;
use yew::Reducible;

use crate::i18n::Text;

use crate::components::check_panel::CheckRow;
use crate::project::{CheckScore, ClassEntry, Project, TARGET_NAME};
use crate::protocol::{BackboneOption, BackboneScore, FromWorker, PoolStatus, ProjectSummary};

thread_local! {
    /// Ids start at the page's opening time in milliseconds times 1000 (below 2^53, so they
    /// survive JavaScript numbers): what a person makes before a saved project opens, or in
    /// another tab, never takes an id that project already uses.
    static NEXT_ID: Cell<u64> = Cell::new((crate::clock::now_millis() as u64).saturating_mul(1000).max(1));
}

/// Makes every later [`next_id`] larger than `max_id` (after a project is restored).
pub fn reserve_ids_through(max_id: u64) {
    NEXT_ID.with(|id| id.set(id.get().max(max_id + 1)));
}

/// A fresh id for a class, a sample, a request or a training run.
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
    Ready { model_name: String, load_millis: f64 },
    Failed { message: Text },
}

/// A picture the page can show: an object URL (kept alive while shown) or a data URL.
#[derive(Clone)]
pub enum Picture {
    Object(Rc<gloo::file::ObjectUrl>),
    Data(Rc<str>),
}

impl PartialEq for Picture {
    /// The same picture: the same URL.
    fn eq(&self, other: &Self) -> bool {
        self.src() == other.src()
    }
}

impl Picture {
    pub fn src(&self) -> String {
        match self {
            Picture::Object(url) => url.to_string(),
            Picture::Data(url) => url.to_string(),
        }
    }
}

/// What the page shows of a sample: its picture and whether the worker has embedded it (its
/// image and features are in the worker, its id in the project).
#[derive(Clone)]
pub struct Sample {
    pub id: u64,
    pub picture: Picture,
    pub embedded: bool,
}

/// A class as its card shows it: the project's class with its samples' views.
#[derive(Clone)]
pub struct ClassState {
    pub id: u64,
    pub name: String,
    pub samples: Vec<Sample>,
}

/// What a message on the page is about: it goes when its cause does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Load,
    Classify,
    Training,
    Predict,
    Settings,
    /// WebGPU could not start, or the GPU failed and the CPU took over.
    Backend,
    /// A file could not be read, or the camera failed.
    Input,
    /// Saving, opening, importing or exporting a project.
    Storage,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub cause: Cause,
    pub message: Text,
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
    /// Where the run's head trains (`"WebGPU · <adapter>"` or `"CPU"`).
    pub device: Option<String>,
    /// `(prepared, total)` while the frozen part runs on the stored images.
    pub preparing: Option<(usize, usize)>,
    /// The run's unfrozen blocks and head-only epochs, as it was started.
    pub unfreeze: usize,
    pub head_epochs: usize,
    /// Augmented views cached per image, and the cache's bytes.
    pub views: usize,
    pub cache_bytes: usize,
    /// Why the run stopped early when its loss exploded.
    pub diverged: Option<Text>,
}

impl TrainingView {
    /// `preparing`, then `head` or `fine-tune` while running; the last epoch's stage after.
    pub fn stage(&self) -> Option<&'static str> {
        if self.preparing.is_some() && self.running {
            return Some("preparing");
        }
        if self.running {
            let fine = self.unfreeze > 0 && self.history.len() >= self.head_epochs;
            return Some(if fine { Stage::FineTune.name() } else { Stage::Head.name() });
        }
        self.history.last().map(|m| m.stage.name())
    }

    /// The epoch (1-based) where the unfrozen blocks began to learn, if they did.
    pub fn fine_tune_start(&self) -> Option<usize> {
        self.history.iter().find(|m| m.stage == Stage::FineTune).map(|m| m.epoch)
    }

    /// Epochs in a row, up to the last, in which validation loss rose while training loss fell.
    pub fn overfitting_epochs(&self) -> usize {
        self.history
            .windows(2)
            .rev()
            .take_while(|w| match (w[0].val_loss, w[1].val_loss) {
                (Some(a), Some(b)) => b > a && w[1].train_loss < w[0].train_loss,
                _ => false,
            })
            .count()
    }
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
    /// What is saved.
    pub project: Project,
    pub model: ModelStatus,
    /// Which backend computes, as the worker last said.
    pub backend: Option<BackendStatus>,
    /// The embedding pool, as the worker last said.
    pub pool: Option<PoolStatus>,
    /// The backbone's blocks (the freeze picture), once the model is loaded.
    pub blocks: Vec<BlockInfo>,
    /// Augmented views of a few samples, as last asked for.
    pub augment_preview: Vec<Picture>,
    pub samples: HashMap<u64, Sample>,
    pub training: TrainingView,
    /// The training run in progress (its id), if any.
    pub run_id: Option<u64>,
    /// Bumped when the settings change from outside the inputs (a restore): the inputs take
    /// their text again.
    pub settings_revision: u64,
    pub prediction: Option<PredictionView>,
    pub pending_prediction: Option<(u64, String)>,
    pub skipped: Vec<Text>,
    pub chosen: Option<ChosenImage>,
    pub busy: bool,
    pub result: Option<Classification>,
    pub error: Option<Notice>,
    /// The open project (its id and name), once the worker opened one.
    pub project_id: Option<String>,
    /// Until the first project opens, the project as the page first showed it: what a person
    /// changes meanwhile (the draft) is applied to the project that opens.
    pub draft_origin: Option<Project>,
    pub project_name: String,
    /// Every saved project.
    pub projects: Vec<ProjectSummary>,
    /// What of the open project could not be read when it opened, and was left out.
    pub storage_problems: Vec<Text>,
    /// Another tab edits the open project: `Some(true)` when it took it over from this one.
    /// This tab then shows the project but changes nothing until it takes it over.
    pub held_elsewhere: Option<bool>,
    /// Bytes the browser stores for this site, and its quota.
    pub storage: Option<(f64, f64)>,
    /// A project is being opened, imported or exported, or the backbone switched.
    pub project_busy: bool,
    /// The backbones the site serves.
    pub backbone_options: Vec<BackboneOption>,
    /// Milliseconds per image of each backbone loaded so far, measured in this browser.
    pub ms_per_image: HashMap<Architecture, f64>,
    /// Stored images embedded again by a new backbone: done, total.
    pub reembedding: Option<(usize, usize)>,
    /// The backbones are being ranked.
    pub ranking: bool,
    /// The last ranking, best first.
    pub scores: Vec<BackboneScore>,
    /// The run whose no-transfer baseline is training.
    pub baseline_run: Option<u64>,
}

impl Default for AppState {
    fn default() -> Self {
        Self::with_draft(Project::new(next_id))
    }
}

impl AppState {
    /// The page before any project opened: `draft` is shown and can be changed at once.
    pub fn with_draft(draft: Project) -> Self {
        Self {
            draft_origin: Some(draft.clone()),
            project: draft,
            model: ModelStatus::Loading { loaded_bytes: 0, total_bytes: 0 },
            backend: None,
            pool: None,
            blocks: Vec::new(),
            augment_preview: Vec::new(),
            samples: HashMap::new(),
            training: TrainingView::default(),
            run_id: None,
            settings_revision: 0,
            prediction: None,
            pending_prediction: None,
            skipped: Vec::new(),
            chosen: None,
            busy: false,
            result: None,
            error: None,
            project_id: None,
            project_name: String::new(),
            projects: Vec::new(),
            storage_problems: Vec::new(),
            held_elsewhere: None,
            storage: None,
            project_busy: false,
            backbone_options: Vec::new(),
            ms_per_image: HashMap::new(),
            reembedding: None,
            ranking: false,
            scores: Vec::new(),
            baseline_run: None,
        }
    }
}

impl AppState {
    pub fn pending_samples(&self) -> usize {
        self.samples.values().filter(|s| !s.embedded).count()
    }

    /// The classes as their cards show them.
    pub fn class_views(&self) -> Vec<ClassState> {
        self.project.classes.iter().map(|class| self.class_view(class)).collect()
    }

    /// Each class's check bin, as the check panel shows it.
    pub fn check_rows(&self) -> Vec<CheckRow> {
        let row = |class: &ClassEntry| {
            let bin = self.project.check_bin(class.id)?;
            let pending = bin.sample_ids.iter().filter(|id| self.samples.get(id).is_some_and(|s| !s.embedded)).count();
            Some(CheckRow { bin_id: bin.id, class_name: class.name.clone(), images: bin.sample_ids.len(), pending })
        };
        self.project.classes.iter().filter_map(row).collect()
    }

    /// The unlabelled bin of the new domain as its card shows it.
    pub fn target_view(&self) -> Option<ClassState> {
        self.project.target.as_ref().map(|target| self.class_view(target))
    }

    fn class_view(&self, class: &ClassEntry) -> ClassState {
        let samples = class.sample_ids.iter().filter_map(|id| self.samples.get(id).cloned()).collect();
        ClassState { id: class.id, name: class.name.clone(), samples }
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

    /// Why training cannot start now, naming the class at fault, as a sentence.
    pub fn training_blocker(&self) -> Option<Text> {
        self.project.training_blocker().map(|problem| problem.user_message())
    }

    /// The data changed: a trained model is stale, and a message about the data may be moot.
    fn data_changed(&mut self) {
        if self.training.report.is_some() {
            self.training.stale = true;
        }
        self.clear(Cause::Training);
    }

    fn notify(&mut self, cause: Cause, message: Text) {
        self.error = Some(Notice { cause, message });
    }

    /// Removes the message if `cause` put it there.
    fn clear(&mut self, cause: Cause) {
        if self.error.as_ref().is_some_and(|n| n.cause == cause) {
            self.error = None;
        }
    }
}

pub enum Action {
    Worker(FromWorker),
    /// The user picked an image for the pretrained classifier's smoke path.
    Chose(ChosenImage),
    Error {
        cause: Cause,
        message: Text,
    },
    /// A new class, named in the page's language.
    AddClass {
        class_id: u64,
        name: String,
    },
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
    /// Settings as typed: kept even when invalid (the inputs show them), with the reason.
    Settings(TrainConfig),
    TrainingRequested {
        run_id: u64,
        class_names: Vec<String>,
    },
    PredictRequested {
        request_id: u64,
        label: String,
    },
    /// The user picked where the model computes.
    BackendChosen(BackendChoice),
    /// Augmented views to show (the worker's `AugmentPreview`, as pictures).
    AugmentPreview(Vec<Picture>),
    /// A saved project replaces the current one (its samples come back through the worker).
    Restore(Project),
    /// The worker opened a project: it, its samples' pictures and every saved project.
    Opened {
        project_id: String,
        name: String,
        project: Project,
        pictures: Vec<(u64, Picture)>,
        projects: Vec<ProjectSummary>,
        /// What of it could not be read and was left out.
        lost: Vec<Text>,
    },
    RenameProject(String),
    /// Files left out before they were read (too large), with why.
    Skipped(Vec<Text>),
    /// A request about projects went to the worker (open, new, delete, import, export, a
    /// backbone switch).
    ProjectRequested,
    /// The page asked the worker to rank the backbones.
    RankRequested,
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Chose(image) => {
                next.chosen = Some(image);
                next.busy = true;
                next.clear(Cause::Classify);
            }
            Action::Error { cause, message } => {
                next.busy = false;
                next.notify(cause, message);
            }
            Action::Worker(message) => next.apply_worker(message),
            Action::BackendChosen(choice) => {
                next.project.backend = choice;
                next.clear(Cause::Backend);
            }
            Action::Restore(project) => next.restore(project),
            Action::Opened { project_id, name, mut project, pictures, projects, lost } => {
                (next.storage_problems, next.held_elsewhere) = (lost, None);
                // A project saved before a model loaded names no backbone: it has the loaded one.
                let loaded = next.project.backbone.take();
                let draft = next.draft_origin.take().map(|pristine| (next.project.clone(), pristine));
                let absorbed =
                    draft.as_ref().is_some_and(|(draft, pristine)| project.absorb_draft(draft, pristine, next_id));
                let draft_samples = std::mem::take(&mut next.samples);
                next.restore(project);
                if next.project.backbone.is_none() {
                    next.project.backbone = loaded;
                }
                next.samples =
                    pictures.into_iter().map(|(id, picture)| (id, Sample { id, picture, embedded: true })).collect();
                if draft.is_some() {
                    // The draft's samples keep their pictures (and whether they are embedded yet).
                    let listed: Vec<u64> = next.project.entries().flat_map(|c| c.sample_ids.clone()).collect();
                    let kept = draft_samples.into_iter().filter(|(id, _)| listed.contains(id));
                    next.samples.extend(kept);
                }
                if absorbed {
                    next.data_changed();
                }
                (next.project_id, next.project_name, next.projects) = (Some(project_id), name, projects);
                (next.project_busy, next.reembedding, next.baseline_run) = (false, None, None);
            }
            Action::RenameProject(name) => next.project_name = name,
            Action::Skipped(messages) => next.skipped.extend(messages),
            Action::ProjectRequested => {
                next.project_busy = true;
                next.clear(Cause::Storage);
            }
            Action::RankRequested => {
                next.ranking = true;
                next.clear(Cause::Storage);
            }
            Action::AugmentPreview(pictures) => next.augment_preview = pictures,
            other => next.apply_project_action(other),
        }
        Rc::new(next)
    }
}

impl AppState {
    /// Actions on the project's classes, samples and settings.
    fn apply_project_action(&mut self, action: Action) {
        match action {
            Action::AddClass { class_id, name } => {
                self.project.classes.push(ClassEntry { id: class_id, name, sample_ids: Vec::new() });
                self.project.sync_check_bins(next_id);
                self.clear(Cause::Training);
            }
            Action::RenameClass { class_id, name } => {
                if let Some(class) = self.project.class_mut(class_id) {
                    class.name = name;
                }
                self.data_changed();
            }
            Action::DeleteClass { class_id } => {
                if let Some(class) = self.project.classes.iter().find(|c| c.id == class_id) {
                    for id in &class.sample_ids {
                        self.samples.remove(id);
                    }
                }
                self.project.classes.retain(|c| c.id != class_id);
                for id in self.project.sync_check_bins(next_id) {
                    self.samples.remove(&id);
                }
                self.data_changed();
            }
            Action::AddSamples { class_id, samples } => {
                if let Some(class) = self.project.class_mut(class_id) {
                    class.sample_ids.extend(samples.iter().map(|s| s.id));
                    self.samples.extend(samples.into_iter().map(|sample| (sample.id, sample)));
                }
                self.skipped.clear();
                self.data_changed();
            }
            Action::RemoveSample { class_id, sample_id } => {
                if let Some(class) = self.project.class_mut(class_id) {
                    class.sample_ids.retain(|id| *id != sample_id);
                }
                self.samples.remove(&sample_id);
                self.data_changed();
            }
            Action::Settings(mut settings) => {
                // Augmentation follows the method: off for the head alone, on for fine-tuning.
                let before = self.project.settings.unfreeze > 0;
                if (settings.unfreeze > 0) != before {
                    settings.augment.enabled = settings.unfreeze > 0;
                }
                match self.validate(&settings) {
                    Ok(()) => self.clear(Cause::Settings),
                    Err(message) => self.notify(Cause::Settings, message),
                }
                self.project.settings = settings;
            }
            Action::TrainingRequested { run_id, class_names } => {
                self.run_id = Some(run_id);
                (self.project.transfer_check, self.baseline_run) = (None, None);
                let settings = &self.project.settings;
                self.training = TrainingView {
                    running: true,
                    epochs_planned: settings.epochs,
                    class_names,
                    unfreeze: settings.unfreeze,
                    head_epochs: settings.head_epochs,
                    ..TrainingView::default()
                };
                self.prediction = None;
                self.clear(Cause::Training);
                self.clear(Cause::Predict);
            }
            Action::PredictRequested { request_id, label } => {
                self.pending_prediction = Some((request_id, label));
            }
            Action::Chose(_)
            | Action::Error { .. }
            | Action::Worker(_)
            | Action::Restore(_)
            | Action::Opened { .. }
            | Action::RenameProject(_)
            | Action::Skipped(_)
            | Action::ProjectRequested
            | Action::RankRequested
            | Action::BackendChosen(_)
            | Action::AugmentPreview(_) => {}
        }
    }

    fn restore(&mut self, mut project: Project) {
        reserve_ids_through(project.max_id());
        // A project saved before the target bin existed gets an empty one.
        if project.target.is_none() {
            project.target = Some(ClassEntry { id: next_id(), name: TARGET_NAME.into(), sample_ids: Vec::new() });
        }
        // So does one saved before check bins, or whose classes lack theirs.
        project.sync_check_bins(next_id);
        self.training = TrainingView::default();
        if let Some(head) = &project.head {
            self.training.report = Some(head.report.clone());
            self.training.class_names = head.class_names.clone();
            self.training.history = project.history.clone();
            self.training.epochs_planned = project.history.len();
        }
        self.prediction = None;
        self.samples.retain(|id, _| project.entries().any(|c| c.sample_ids.contains(id)));
        self.project = project;
        self.run_id = None;
        self.settings_revision += 1;
        self.error = None;
    }

    /// The settings' problem, if any: every range, and the unfrozen blocks against the backbone.
    pub fn validate(&self, settings: &TrainConfig) -> Result<(), Text> {
        match self.blocks.len() {
            0 => settings.validate(),
            blocks => settings.validate_for(blocks),
        }
        .map_err(|e| e.user_message())
    }

    fn is_current(&self, request_id: u64) -> bool {
        self.chosen.as_ref().is_some_and(|c| c.request_id == request_id)
    }

    fn is_current_run(&self, run_id: u64) -> bool {
        self.run_id == Some(run_id)
    }

    fn apply_worker(&mut self, message: FromWorker) {
        match message {
            FromWorker::LoadProgress { loaded_bytes, total_bytes } => {
                self.model = ModelStatus::Loading { loaded_bytes, total_bytes }
            }
            FromWorker::ModelReady { model_name, backend, backbone, blocks, load_millis, ms_per_image } => {
                self.ms_per_image.insert(backbone.architecture, ms_per_image);
                self.project.backbone = Some(backbone);
                self.blocks = blocks;
                self.model = ModelStatus::Ready { model_name, load_millis };
                self.clear(Cause::Load);
                self.backend_changed(backend, None);
            }
            FromWorker::BackendSelected { status, error } => self.backend_changed(status, error),
            FromWorker::PoolChanged { pool } => self.pool = Some(pool),
            FromWorker::BackendChanged { status } => {
                let reason = status.cpu_reason.as_ref().map(|r| r.user_message());
                self.backend_changed(status, reason);
            }
            FromWorker::LoadFailed { message } => {
                self.notify(Cause::Load, Text::new("load-failed").arg("message", message.clone()));
                self.model = ModelStatus::Failed { message };
            }
            FromWorker::Classified { request_id, file_name, top5, millis } if self.is_current(request_id) => {
                self.busy = false;
                self.clear(Cause::Classify);
                self.result = Some(Classification { file_name, top5, millis });
            }
            FromWorker::ClassifyFailed { request_id, message, .. } if self.is_current(request_id) => {
                self.busy = false;
                self.result = None;
                self.notify(Cause::Classify, message);
            }
            FromWorker::SampleEmbedded { sample_id, .. } => {
                if let Some(sample) = self.samples.get_mut(&sample_id) {
                    sample.embedded = true;
                }
            }
            FromWorker::SampleRejected { sample_id, message } => {
                for class in self.project.entries_mut() {
                    class.sample_ids.retain(|id| *id != sample_id);
                }
                self.samples.remove(&sample_id);
                self.skipped.push(message);
            }
            other => self.apply_training_message(other),
        }
    }

    /// What computes now; `problem`, when there is one, is said (why WebGPU is not in use).
    fn backend_changed(&mut self, status: BackendStatus, problem: Option<Text>) {
        self.backend = Some(status);
        match problem {
            Some(problem) => self.notify(Cause::Backend, Text::new("backend-problem").arg("problem", problem)),
            None => self.clear(Cause::Backend),
        }
    }

    /// Training and prediction messages; those of an older run are ignored.
    fn apply_training_message(&mut self, message: FromWorker) {
        match message {
            FromWorker::TrainingPreparing { run_id, prepared, total } if self.is_current_run(run_id) => {
                self.training.preparing = Some((prepared, total));
            }
            FromWorker::TrainingStarted { run_id, device, views, cache_bytes, .. } if self.is_current_run(run_id) => {
                self.training.device = Some(device);
                self.training.preparing = None;
                (self.training.views, self.training.cache_bytes) = (views, cache_bytes);
            }
            FromWorker::EpochDone { run_id, metrics, samples_per_second, elapsed_millis }
                if self.is_current_run(run_id) =>
            {
                self.training.history.push(metrics);
                self.training.samples_per_second = samples_per_second;
                self.training.elapsed_millis = elapsed_millis;
            }
            FromWorker::TrainingDone { run_id, report, head, diverged, .. } if self.is_current_run(run_id) => {
                self.run_id = None;
                self.training.running = false;
                if let Some(why) = &diverged {
                    let kept = Text::new("training-stopped").arg("why", why.clone()).arg("epoch", report.best_epoch);
                    self.notify(Cause::Training, kept);
                }
                self.training.diverged = diverged;
                self.training.report = Some(report);
                self.project.head = Some(head);
                self.project.history = self.training.history.clone();
                self.baseline_run = Some(run_id);
            }
            FromWorker::BaselineDone { run_id, baseline_accuracy, transferred_accuracy }
                if self.baseline_run == Some(run_id) =>
            {
                self.baseline_run = None;
                self.project.transfer_check = Some(TransferCheck { baseline_accuracy, transferred_accuracy });
            }
            FromWorker::CheckScored { adapted, accuracy, images, .. } => {
                self.project.check_scores.record(adapted, CheckScore { accuracy, images });
            }
            FromWorker::CheckFailed { message, .. } => {
                self.notify(Cause::Training, Text::new("check-failed").arg("message", message));
            }
            FromWorker::BaselineFailed { run_id, message } if self.baseline_run == Some(run_id) => {
                self.baseline_run = None;
                self.notify(Cause::Training, Text::new("baseline-failed").arg("message", message));
            }
            FromWorker::TrainingFailed { run_id, message } if self.is_current_run(run_id) => {
                self.run_id = None;
                self.training.running = false;
                self.training.preparing = None;
                self.training.failed = true;
                self.notify(Cause::Training, message);
            }
            FromWorker::Predicted { request_id, probs, millis } => {
                let label = match &self.pending_prediction {
                    Some((id, label)) if *id == request_id => label.clone(),
                    _ => "webcam".into(),
                };
                self.clear(Cause::Predict);
                self.prediction = Some(PredictionView { request_id, probs, millis, label });
            }
            FromWorker::PredictFailed { message, .. } => self.notify(Cause::Predict, message),
            FromWorker::BackbonesListed { options } => self.backbone_options = options,
            FromWorker::Reembedding { done, total } => self.reembedding = Some((done, total)),
            FromWorker::BackbonesRanked { scores, .. } => (self.scores, self.ranking) = (scores, false),
            FromWorker::RequestFailed { message, .. } => {
                (self.project_busy, self.ranking, self.reembedding) = (false, false, None);
                self.notify(Cause::Storage, message);
            }
            FromWorker::FileReady { .. } => self.project_busy = false,
            FromWorker::ProjectsListed { projects } => self.projects = projects,
            FromWorker::ProjectHeldElsewhere { taken_over, .. } => self.held_elsewhere = Some(taken_over),
            FromWorker::StorageResumed => self.clear(Cause::Storage),
            FromWorker::StorageUsed { usage, quota } => self.storage = Some((usage, quota)),
            FromWorker::StorageFailed { message } => {
                self.notify(Cause::Storage, Text::new("not-saved").arg("message", message))
            }
            FromWorker::HeadImported { class_names, .. } => self.training.class_names = class_names,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use graft::backbone::{Architecture, BackboneKey};

    use super::*;
    use crate::i18n::Lang;

    fn reduce(state: AppState, action: Action) -> AppState {
        (*Rc::new(state).reduce(action)).clone()
    }

    fn sample(id: u64) -> Sample {
        Sample { id, picture: Picture::Data("data:,".into()), embedded: false }
    }

    #[test]
    fn the_project_round_trips_through_serde_and_restores_with_fresh_ids() {
        let mut state = AppState::default();
        let class_id = state.project.classes[0].id;
        state = reduce(state, Action::AddSamples { class_id, samples: vec![sample(500), sample(501)] });
        state = reduce(state, Action::RenameClass { class_id, name: "Cats".into() });
        state.project.backbone =
            Some(BackboneKey { architecture: Architecture::MobileNetV2, weights_sha256: "ab".into() });
        let json = state.project.to_json().unwrap();
        let back = Project::from_json(&json).unwrap();
        assert_eq!(back, state.project);
        assert!(Project::from_json("{\"version\": 1}").is_err());

        let restored = reduce(AppState::default(), Action::Restore(back));
        assert_eq!(restored.project.classes[0].name, "Cats");
        assert_eq!(restored.project.classes[0].sample_ids, vec![500, 501]);
        assert!(next_id() > 501, "ids after a restore never collide with the project's");
    }

    #[test]
    fn the_empty_class_message_goes_when_the_class_gets_samples() {
        let state = AppState::default();
        let blocker = state.training_blocker().unwrap();
        assert_eq!(blocker, Text::new("blocker-empty-class").arg("name", "Class 1"));
        let state = reduce(state, Action::Error { cause: Cause::Training, message: blocker });
        let class_id = state.project.classes[0].id;
        let state = reduce(state, Action::AddSamples { class_id, samples: vec![sample(900)] });
        assert_eq!(state.error, None);
        // A message of another cause stays.
        let state =
            reduce(state, Action::Error { cause: Cause::Input, message: Text::verbatim("x.png could not be read") });
        let state = reduce(state, Action::AddSamples { class_id, samples: vec![sample(901)] });
        assert!(state.error.is_some());
    }

    #[test]
    fn messages_of_an_older_run_are_ignored() {
        let state = reduce(AppState::default(), Action::TrainingRequested { run_id: 2, class_names: vec![] });
        let stale = FromWorker::TrainingFailed { run_id: 1, message: Text::verbatim("old") };
        let state = reduce(state, Action::Worker(stale));
        assert!(state.training.running && state.error.is_none());
        let current = FromWorker::TrainingFailed { run_id: 2, message: Text::verbatim("diverged") };
        let state = reduce(state, Action::Worker(current));
        assert_eq!(state.train_status(), TrainStatus::Error);
        assert_eq!(state.error.map(|n| n.message), Some(Text::verbatim("diverged")));
    }

    fn epoch(epoch: usize, stage: Stage, train_loss: f32, val_loss: f32) -> EpochMetrics {
        let confusion = graft::train::metrics::Confusion::new(2, &[0, 1], &[0, 1]);
        let (train_accuracy, val_accuracy) = (1.0, Some(1.0));
        EpochMetrics {
            epoch,
            stage,
            train_loss,
            train_accuracy,
            val_loss: Some(val_loss),
            val_accuracy,
            confusion,
            domain_accuracy: None,
        }
    }

    #[test]
    fn augmentation_follows_the_method_and_the_stage_follows_the_epochs() {
        let fine = TrainConfig { unfreeze: 2, head_epochs: 1, epochs: 6, ..TrainConfig::default() };
        let state = reduce(AppState::default(), Action::Settings(fine.clone()));
        assert!(state.project.settings.augment.enabled, "on when blocks are unfrozen");
        let state = reduce(state, Action::TrainingRequested { run_id: 4, class_names: vec![] });
        let prepare = FromWorker::TrainingPreparing { run_id: 4, prepared: 3, total: 9 };
        let mut state = reduce(state, Action::Worker(prepare));
        assert_eq!(state.training.stage(), Some("preparing"));
        state.training.preparing = None;
        assert_eq!(state.training.stage(), Some("head"));
        let losses = [(Stage::Head, 1.0, 1.0), (Stage::FineTune, 0.8, 0.9), (Stage::FineTune, 0.6, 1.0)];
        for (i, (stage, train, val)) in losses.into_iter().enumerate() {
            let metrics = epoch(i + 1, stage, train, val);
            let done = FromWorker::EpochDone { run_id: 4, metrics, samples_per_second: 1.0, elapsed_millis: 1.0 };
            state = reduce(state, Action::Worker(done));
            assert_eq!(state.training.stage(), Some("fine-tune"));
        }
        assert_eq!(state.training.fine_tune_start(), Some(2));
        assert_eq!(state.training.overfitting_epochs(), 1, "validation loss rose once while training loss fell");
        let state = reduce(state, Action::Settings(TrainConfig { unfreeze: 0, ..fine }));
        assert!(!state.project.settings.augment.enabled, "off for the head alone");
    }

    #[test]
    fn invalid_settings_are_kept_as_typed_with_the_reason() {
        let settings = TrainConfig { epochs: 0, ..TrainConfig::default() };
        let state = reduce(AppState::default(), Action::Settings(settings.clone()));
        assert_eq!(state.project.settings, settings);
        assert!(state
            .error
            .as_ref()
            .is_some_and(|n| n.cause == Cause::Settings && Lang::En.text(&n.message).contains("epochs")));
        let state = reduce(state, Action::Settings(TrainConfig::default()));
        assert_eq!(state.error, None);
    }

    #[test]
    fn a_new_project_has_the_loaded_backbone_and_the_baseline_of_the_last_run_is_kept() {
        let key = BackboneKey { architecture: Architecture::EfficientNetLite0, weights_sha256: "cd".into() };
        let mut state = AppState::default();
        state.project.backbone = Some(key.clone());
        let fresh = Project::new(next_id);
        let opened = Action::Opened {
            project_id: "p1".into(),
            name: "P".into(),
            project: fresh,
            pictures: vec![],
            projects: vec![],
            lost: vec![],
        };
        let mut state = reduce(state, opened);
        assert_eq!(state.project.backbone, Some(key));
        state.baseline_run = Some(7);
        let other = FromWorker::BaselineDone { run_id: 6, baseline_accuracy: 0.5, transferred_accuracy: 0.9 };
        let state = reduce(state, Action::Worker(other));
        assert_eq!(state.project.transfer_check, None, "another run's baseline is ignored");
        let done = FromWorker::BaselineDone { run_id: 7, baseline_accuracy: 0.95, transferred_accuracy: 0.96 };
        let state = reduce(state, Action::Worker(done));
        assert!(state.project.transfer_check.is_some_and(|c| !c.helps()), "one point ahead is not clearly better");
        let state = reduce(state, Action::TrainingRequested { run_id: 8, class_names: vec![] });
        assert_eq!(state.project.transfer_check, None, "a new run clears the comparison");
    }

    #[test]
    fn what_is_done_before_the_first_project_opens_joins_it_and_later_opens_replace() {
        let state = AppState::default();
        let first = state.project.classes[0].id;
        let state = reduce(state, Action::RenameClass { class_id: first, name: "fish".into() });
        let sample = Sample { id: next_id(), picture: Picture::Data("data:,".into()), embedded: false };
        let state = reduce(state, Action::AddSamples { class_id: first, samples: vec![sample.clone()] });
        let mut saved = Project::new(next_id);
        saved.classes[1].name = "cat".into();
        let opened = |project: Project| Action::Opened {
            project_id: "p1".into(),
            name: "P".into(),
            project,
            pictures: vec![],
            projects: vec![],
            lost: vec![Text::new("storage-model-unreadable")],
        };
        let state = reduce(state, opened(saved));
        let names: Vec<String> = state.class_views().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["Class 1", "cat", "fish"], "the draft's untouched class is not added");
        let fish = &state.class_views()[2];
        assert_eq!(fish.samples.len(), 1, "the sample keeps its picture");
        assert!(!fish.samples[0].embedded, "and is still being embedded");
        assert_eq!(state.storage_problems.len(), 1);
        let state = reduce(state, opened(Project::new(next_id)));
        let names: Vec<String> = state.class_views().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["Class 1", "Class 2"], "a project opened later replaces the open one");
        assert!(state.samples.is_empty());
    }
}
