//! The worker's message dispatch, apart from the Web Worker plumbing so that it runs (and is
//! tested) natively too: every request gets exactly one final answer.

use candle_core::{Device, Tensor};
use graft::augment::{augmented_image, random_view};
use graft::backbone::Architecture;
use graft::exec::{BackendKind, BackendStatus};
use graft::gpu::BackendChoice;
use graft::preprocess::{decode_image, store_image, StoredImage};
use graft::project::archive::{read_archive, write_archive, ArchiveLimits, ProjectArchive};
use graft::project::Project;
use graft::train::rng::SplitMix64;
use graft::train::{class_problem, ClassProblem, ModelFile, SavedHead, TrainConfig, TrainData, Trainer};
use image::RgbImage;

use super::model::Model;
use super::pool::Made;
use super::samples::{decode, make_sample, thumbnail, SampleStore, StoredSample};
use super::training::{Preparation, Training};
use crate::protocol::{ClassSamples, FromWorker, ImageData, ToWorker};
use graft::message::UserMessage;

fn not_loaded() -> UserMessage {
    UserMessage::new("worker-not-loaded")
}

fn train_first() -> UserMessage {
    UserMessage::new("worker-train-first")
}
/// Images of an imported project embedded at a time.
const IMPORT_BATCH: usize = 8;
/// Side of the augmentation preview's pictures, in pixels.
const PREVIEW_SIDE: u32 = 96;
/// Check images classified at a time.
const CHECK_CHUNK: usize = 8;

/// A run's check images (per class, in class order), due once the run has ended.
struct PendingCheck {
    run_id: u64,
    adapted: bool,
    classes: Vec<Vec<u64>>,
    due: bool,
}

pub struct WorkerCore {
    model: Option<Model>,
    /// Backbones loaded before (or to rank them), kept for switching back.
    spare: Vec<Model>,
    /// The backend the page was last told about, to report a change (a GPU fallback) once.
    reported_backend: Option<BackendStatus>,
    samples: SampleStore,
    training: Training,
    /// The check images of the run in progress (per class), and whether it adapts; scored
    /// when it ends ([`Self::score_check`]).
    check: Option<PendingCheck>,
    /// Milliseconds (`Date.now()` in the browser).
    clock: fn() -> f64,
}

/// A project name as a file name: letters, digits, `-` and `_` kept, the rest `-`.
pub fn file_stem(name: &str) -> String {
    let stem: String =
        name.trim().chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    if stem.is_empty() {
        "graft-project".into()
    } else {
        stem
    }
}

impl WorkerCore {
    pub fn new(clock: fn() -> f64) -> Self {
        Self {
            model: None,
            spare: Vec::new(),
            reported_backend: None,
            samples: SampleStore::default(),
            training: Training::default(),
            check: None,
            clock,
        }
    }

    /// Uses `model` (on the CPU) and moves it to `backend`; the `ModelReady` answer.
    /// A model used before stays loaded as a spare (switching back, ranking).
    pub async fn set_model(&mut self, model: Model, backend: BackendChoice, load_millis: f64) -> FromWorker {
        // An explicit WebGPU that cannot run leaves the CPU in use, with the reason in the
        // status the page shows.
        let _ = model.extractor.select_backend(backend).await;
        let status = model.extractor.executor().status();
        self.reported_backend = Some(status.clone());
        let reply = FromWorker::ModelReady {
            model_name: model.name.clone(),
            backend: status,
            backbone: model.extractor.key().clone(),
            blocks: model.extractor.backbone().block_infos(),
            load_millis,
            ms_per_image: self.time_one_image(&model).await,
        };
        self.spare.extend(self.model.replace(model));
        reply
    }

    /// Milliseconds of one image through `model`'s backbone (after one untimed warm-up run).
    async fn time_one_image(&self, model: &Model) -> f64 {
        let side = model.extractor.input_spec().crop;
        let probe = RgbImage::from_pixel(side, side, image::Rgb([128, 128, 128]));
        let _ = model.extractor.embed(std::slice::from_ref(&probe)).await;
        let started = (self.clock)();
        let _ = model.extractor.embed(&[probe]).await;
        (self.clock)() - started
    }

    /// The loaded backbone's architecture.
    pub fn architecture(&self) -> Option<Architecture> {
        Some(self.model.as_ref()?.extractor.key().architecture)
    }

    /// A model loaded before, taken out of the spares.
    pub fn take_spare(&mut self, architecture: Architecture) -> Option<Model> {
        let index = self.spare.iter().position(|m| m.extractor.key().architecture == architecture)?;
        Some(self.spare.swap_remove(index))
    }

    /// The loaded model or a spare of `architecture`.
    pub fn model_of(&self, architecture: Architecture) -> Option<&Model> {
        self.model.iter().chain(&self.spare).find(|m| m.extractor.key().architecture == architecture)
    }

    /// Keeps `model` loaded without using it (a backbone loaded to rank it).
    pub fn keep_spare(&mut self, model: Model) {
        self.spare.push(model);
    }

    /// `BackendChanged` when the backend is no longer the one last reported (the GPU failed
    /// during the last message or slice and the CPU took over).
    pub fn backend_change(&mut self) -> Option<FromWorker> {
        let status = self.model.as_ref()?.extractor.executor().status();
        if self.reported_backend.as_ref() == Some(&status) {
            return None;
        }
        self.reported_backend = Some(status.clone());
        Some(FromWorker::BackendChanged { status })
    }

    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    pub fn is_training(&self) -> bool {
        self.training.is_running()
    }

    /// A run, the scoring of its check images, or the no-transfer baseline after it, has
    /// slices to run.
    pub fn has_work(&self) -> bool {
        self.training.has_work() || self.check.as_ref().is_some_and(|c| c.due)
    }

    /// One time slice of the training run (or the scoring of the check images of the run that
    /// just ended), and what it has to say.
    pub async fn train_slice(&mut self) -> Vec<FromWorker> {
        if let Some(reply) = self.score_check().await {
            return vec![reply];
        }
        let replies = match &self.model {
            Some(model) => self.training.slice(self.clock, model, &self.samples).await,
            None => Vec::new(),
        };
        replies.iter().for_each(|reply| self.note_run_end(reply));
        replies
    }

    /// Marks the check images of a run that just ended as due for scoring.
    fn note_run_end(&mut self, reply: &FromWorker) {
        match (reply, self.check.as_mut()) {
            (FromWorker::TrainingDone { run_id, .. }, Some(check)) if check.run_id == *run_id => check.due = true,
            (FromWorker::TrainingFailed { run_id, .. }, Some(check)) if check.run_id == *run_id => self.check = None,
            _ => {}
        }
    }

    /// Classifies the check images of the run that ended with its model: `CheckScored`, or
    /// `CheckFailed`; `None` when nothing is due.
    async fn score_check(&mut self) -> Option<FromWorker> {
        if !self.check.as_ref().is_some_and(|c| c.due) {
            return None;
        }
        let PendingCheck { run_id, adapted, classes, .. } = self.check.take()?;
        let outcome = async {
            let (head, _) = self.training.head().ok_or_else(train_first)?;
            let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
            let (mut correct, mut images) = (0, 0);
            let labelled = classes.iter().enumerate().flat_map(|(label, ids)| ids.iter().map(move |&id| (id, label)));
            // Images deleted since the run started are left out.
            let stored: Vec<_> = labelled.filter_map(|(id, label)| Some((self.samples.image(id)?, label))).collect();
            for chunk in stored.chunks(CHECK_CHUNK) {
                let decoded = chunk
                    .iter()
                    .map(|(image, _)| decode_image("check image", &image.bytes).map_err(UserMessage::from))
                    .collect::<Result<Vec<_>, UserMessage>>()?;
                let probs = head.predict_images(extractor, &decoded).await.map_err(UserMessage::from)?;
                let predicted: Vec<u32> = probs.argmax(1).and_then(|p| p.to_vec1()).map_err(UserMessage::from)?;
                correct += chunk.iter().zip(&predicted).filter(|((_, label), &p)| *label == p as usize).count();
                images += chunk.len();
            }
            Ok::<_, UserMessage>((correct as f32 / images.max(1) as f32, images))
        };
        Some(match outcome.await {
            Ok((_, 0)) => return None,
            Ok((accuracy, images)) => FromWorker::CheckScored { run_id, adapted, accuracy, images },
            Err(message) => FromWorker::CheckFailed { run_id, message },
        })
    }

    /// Handles every message but `LoadModel` (which needs the network): the final answer, if
    /// the message is a request.
    pub async fn handle(&mut self, message: ToWorker) -> Option<FromWorker> {
        Some(match message {
            ToWorker::LoadModel { .. } => {
                FromWorker::LoadFailed { message: UserMessage::verbatim("loading needs the worker's network") }
            }
            ToWorker::SwitchBackbone { request_id, .. } | ToWorker::RankBackbones { request_id, .. } => {
                FromWorker::RequestFailed {
                    request_id,
                    message: UserMessage::verbatim("backbones are switched by the worker's loop"),
                }
            }
            ToWorker::Classify { request_id, file_name, bytes } => self.classify(request_id, file_name, &bytes).await,
            ToWorker::AddSample { sample_id, image } => self.add_sample(sample_id, image).await,
            ToWorker::RemoveSample { sample_id } => {
                self.samples.remove(sample_id);
                return None;
            }
            ToWorker::SelectBackend { choice } => self.select_backend(choice).await,
            // The pool belongs to the worker's loop (Web Workers); nothing to answer here.
            ToWorker::SetPool { .. } => return None,
            ToWorker::LoseGpuDevice => {
                if let Some(gpu) = self.model.as_ref()?.extractor.executor().gpu() {
                    gpu.context().lose_device();
                }
                return None;
            }
            ToWorker::Train { run_id, classes, config, target, check } => {
                let pending = check.iter().any(|ids| !ids.is_empty());
                let adapted = config.adapt.enabled;
                self.check = pending.then_some(PendingCheck { run_id, adapted, classes: check, due: false });
                let reply = self.start_training(run_id, classes, config, &target).await;
                self.note_run_end(&reply);
                reply
            }
            ToWorker::StopTraining { run_id } => {
                let reply = self.training.finish(run_id, true, self.model.as_ref()?).await?;
                self.note_run_end(&reply);
                reply
            }
            ToWorker::Predict { request_id, image } => self.predict(request_id, image).await,
            ToWorker::ExportSample { request_id, sample_id } => match self.samples.image(sample_id) {
                Some(image) => FromWorker::SampleExported { request_id, sample_id, image: image.clone() },
                None => FromWorker::RequestFailed {
                    request_id,
                    message: UserMessage::new("worker-sample-missing").arg("id", sample_id),
                },
            },
            ToWorker::ExportHead { request_id } => match self.training.head() {
                Some((_, saved)) => FromWorker::HeadExported { request_id, head: saved.clone() },
                None => FromWorker::RequestFailed { request_id, message: train_first() },
            },
            ToWorker::ImportHead { request_id, head } => self.import_head(request_id, head),
            ToWorker::PreviewAugment { request_id, sample_ids, strength } => {
                match self.preview_augment(&sample_ids, strength) {
                    Ok(images) => FromWorker::AugmentPreview { request_id, images },
                    Err(message) => FromWorker::RequestFailed { request_id, message },
                }
            }
            ToWorker::ExportEmbeddings { request_id } => match self.samples.export() {
                Some(cache) => FromWorker::EmbeddingsExported { request_id, cache },
                None => FromWorker::RequestFailed { request_id, message: UserMessage::new("worker-nothing-embedded") },
            },
            ToWorker::ExportProject { request_id, name, project } => match self.export_project(&name, project) {
                Ok(bytes) => FromWorker::FileReady {
                    request_id,
                    file_name: format!("{}.graft", file_stem(&name)),
                    mime: "application/zip".into(),
                    bytes,
                },
                Err(message) => FromWorker::RequestFailed { request_id, message },
            },
            ToWorker::ExportModel { request_id, class_names } => match self.export_model(&class_names) {
                Ok(bytes) => FromWorker::FileReady {
                    request_id,
                    file_name: "graft-model.safetensors".into(),
                    mime: "application/octet-stream".into(),
                    bytes,
                },
                Err(message) => FromWorker::RequestFailed { request_id, message },
            },
            // The browser's storage answers these (`super::persist`); without it they fail.
            ToWorker::OpenProject { request_id, .. }
            | ToWorker::NewProject { request_id, .. }
            | ToWorker::DeleteProject { request_id, .. }
            | ToWorker::TakeOver { request_id, .. }
            | ToWorker::ImportProject { request_id, .. } => FromWorker::RequestFailed {
                request_id,
                message: UserMessage::verbatim("projects are saved only in the browser"),
            },
            ToWorker::SaveProject { .. } => return None,
            ToWorker::ImportEmbeddings { request_id, cache } => {
                let outcome = match &self.model {
                    Some(m) => self.samples.import(m.extractor.key(), m.extractor.feature_dim(), cache),
                    None => Err(not_loaded()),
                };
                match outcome {
                    Ok(sample_ids) => FromWorker::EmbeddingsImported { request_id, sample_ids },
                    Err(message) => FromWorker::RequestFailed { request_id, message },
                }
            }
        })
    }

    async fn classify(&self, request_id: u64, file_name: String, bytes: &[u8]) -> FromWorker {
        let started = (self.clock)();
        let outcome = async {
            let model = self.model.as_ref().ok_or_else(not_loaded)?;
            let head = model.pretrained.as_ref().ok_or_else(|| UserMessage::new("worker-no-pretrained"))?;
            let image = decode_image(&file_name, bytes).map_err(UserMessage::from)?;
            let features = model.extractor.embed(&[image]).await.map_err(UserMessage::from)?;
            head.top_k(&features, 5).map_err(UserMessage::from)
        };
        match outcome.await {
            Ok(mut top) => FromWorker::Classified {
                request_id,
                file_name,
                top5: top.pop().unwrap_or_default(),
                millis: (self.clock)() - started,
            },
            Err(message) => FromWorker::ClassifyFailed { request_id, file_name, message },
        }
    }

    async fn add_sample(&mut self, sample_id: u64, image: ImageData) -> FromWorker {
        let started = (self.clock)();
        let made = self.make_sample(image).await;
        self.accept_sample(sample_id, made, started)
    }

    /// A new sample made here, with the key of the backbone that embedded it.
    pub async fn make_sample(&self, image: ImageData) -> Made {
        let model = self.model.as_ref().ok_or_else(not_loaded)?;
        Ok((model.extractor.key().clone(), make_sample(&model.extractor, image).await?))
    }

    /// Whether the loaded backbone computes on the CPU.
    pub fn on_cpu(&self) -> bool {
        self.model.as_ref().is_some_and(|m| m.extractor.executor().status().kind == BackendKind::Cpu)
    }

    /// Keeps a sample made here or by the embedding pool (whose backbone `key` must be the
    /// loaded one); its answer.
    pub fn accept_sample(&mut self, sample_id: u64, made: Made, started: f64) -> FromWorker {
        let outcome = made.and_then(|(key, (stored, row))| {
            if self.backbone_key() != Some(&key) {
                return Err(UserMessage::new("worker-backbone-changed").arg("key", key.to_string()));
            }
            self.samples.insert(sample_id, stored, &key, row)
        });
        match outcome {
            Ok(()) => FromWorker::SampleEmbedded { sample_id, millis: (self.clock)() - started },
            Err(message) => FromWorker::SampleRejected { sample_id, message },
        }
    }

    async fn select_backend(&mut self, choice: BackendChoice) -> FromWorker {
        let Some(model) = &self.model else {
            return FromWorker::BackendSelected {
                status: BackendStatus { kind: BackendKind::Cpu, description: "no model".into(), cpu_reason: None },
                error: Some(not_loaded()),
            };
        };
        let error = model.extractor.select_backend(choice).await.err().map(UserMessage::from);
        let status = model.extractor.executor().status();
        self.reported_backend = Some(status.clone());
        FromWorker::BackendSelected { status, error }
    }

    async fn start_training(
        &mut self,
        run_id: u64,
        classes: Vec<ClassSamples>,
        config: TrainConfig,
        target: &[u64],
    ) -> FromWorker {
        let names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
        let now = (self.clock)();
        // The target samples the run adapts to (stored ones; none unless adapting).
        let target: Vec<u64> = match config.adapt.enabled {
            true => target.iter().copied().filter(|&id| self.samples.image(id).is_some()).collect(),
            false => Vec::new(),
        };
        if config.adapt.enabled && target.is_empty() {
            let message = ClassProblem::NoTargetImages.user_message();
            return FromWorker::TrainingFailed { run_id, message };
        }
        if config.unfreeze > 0 || config.augment.enabled {
            return match self.preparation(&classes, config, target) {
                Ok(preparation) => self.training.prepare(run_id, preparation, names, now),
                Err(message) => FromWorker::TrainingFailed { run_id, message },
            };
        }
        match self.new_trainer(&classes, config.clone(), &target) {
            Ok((mut trainer, order)) => {
                // The head trains where the backbone runs; a GPU that cannot take it leaves
                // the run on the CPU, which the start message names.
                let gpu = self.model.as_ref().and_then(|m| m.extractor.executor().gpu());
                if let Some(gpu) = gpu {
                    let _ = trainer.use_gpu(gpu.context().clone()).await;
                }
                self.training.start(run_id, (trainer, config, order), names, now)
            }
            Err(message) => FromWorker::TrainingFailed { run_id, message },
        }
    }

    /// A run that starts from the stored images: its settings and classes are checked first,
    /// so that a mistake is reported before any image is processed.
    fn preparation(
        &self,
        classes: &[ClassSamples],
        config: TrainConfig,
        target: Vec<u64>,
    ) -> Result<Preparation, UserMessage> {
        let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
        let blocks = extractor.backbone().num_blocks();
        config.validate_for(blocks).map_err(UserMessage::from)?;
        let stored = |class: &ClassSamples| -> Vec<u64> {
            class.sample_ids.iter().copied().filter(|&id| self.samples.image(id).is_some()).collect()
        };
        let stored: Vec<Vec<u64>> = classes.iter().map(stored).collect();
        let names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
        let counts: Vec<usize> = stored.iter().map(Vec::len).collect();
        if let Some(problem) = class_problem(&names, &counts) {
            return Err(UserMessage::new("worker-cannot-train").arg("problem", problem.user_message()));
        }
        let queue = stored.iter().enumerate().flat_map(|(label, ids)| ids.iter().map(move |&id| (id, label))).collect();
        Ok(Preparation::new(config, blocks, queue, target))
    }

    /// The trainer of a run on cached features, and its `(sample id, label)` order.
    fn new_trainer(
        &self,
        classes: &[ClassSamples],
        config: TrainConfig,
        target: &[u64],
    ) -> Result<(Trainer, Vec<(u64, usize)>), UserMessage> {
        let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
        let mut rows = Vec::new();
        let mut order = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            // Samples still being embedded (or rejected) are left out of this run; a class
            // left empty is refused by the trainer, by name.
            for &id in &class.sample_ids {
                if let Some(row) = self.samples.embedding(extractor.key(), id) {
                    rows.extend_from_slice(row);
                    order.push((id, label));
                }
            }
        }
        let class_names = classes.iter().map(|c| c.name.clone()).collect();
        let labels = order.iter().map(|&(_, label)| label).collect();
        let shape = (order.len(), extractor.feature_dim());
        let inputs = Tensor::from_vec(rows, shape, &Device::Cpu).map_err(UserMessage::from)?;
        let mut data = TrainData::new(inputs, labels, class_names);
        let target_rows: Vec<f32> =
            target.iter().filter_map(|&id| self.samples.embedding(extractor.key(), id)).flatten().copied().collect();
        if !target_rows.is_empty() {
            let shape = (target_rows.len() / extractor.feature_dim(), extractor.feature_dim());
            data.target = Some(Tensor::from_vec(target_rows, shape, &Device::Cpu).map_err(UserMessage::from)?);
        }
        let trainer = Trainer::new(data, config).map_err(UserMessage::from)?;
        Ok((trainer, order))
    }

    /// One augmented view of each sample (those still stored), as small pictures.
    fn preview_augment(&self, sample_ids: &[u64], strength: f32) -> Result<Vec<StoredImage>, UserMessage> {
        let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
        let mut rng = SplitMix64::new((self.clock)().to_bits());
        let mut images = Vec::new();
        for stored in sample_ids.iter().filter_map(|&id| self.samples.image(id)) {
            let image = decode_image("stored sample", &stored.bytes).map_err(UserMessage::from)?;
            let view = random_view(image.width() as usize, image.height() as usize, strength, &mut rng);
            let picture = augmented_image(&image, PREVIEW_SIDE, &view);
            images.push(store_image(&picture, extractor.input_spec()).map_err(UserMessage::from)?);
        }
        Ok(images)
    }

    async fn predict(&self, request_id: u64, image: ImageData) -> FromWorker {
        let started = (self.clock)();
        let outcome = async {
            let (head, _) = self.training.head().ok_or_else(train_first)?;
            let model = self.model.as_ref().ok_or_else(not_loaded)?;
            let image = decode(image)?;
            let probs = head.predict_images(&model.extractor, &[image]).await.map_err(UserMessage::from)?;
            probs.squeeze(0).and_then(|p| p.to_vec1::<f32>()).map_err(UserMessage::from)
        };
        match outcome.await {
            Ok(probs) => FromWorker::Predicted { request_id, probs, millis: (self.clock)() - started },
            Err(message) => FromWorker::PredictFailed { request_id, message },
        }
    }

    /// The samples and the trained model, for saving.
    pub fn samples(&self) -> &SampleStore {
        &self.samples
    }

    pub fn trained_head(&self) -> Option<&SavedHead> {
        self.training.head().map(|(_, saved)| saved)
    }

    /// Forgets every sample and the trained model: another project opens.
    pub fn clear_project(&mut self) {
        self.samples = SampleStore::default();
        self.training = Training::default();
    }

    pub fn backbone_key(&self) -> Option<&graft::backbone::BackboneKey> {
        self.model.as_ref().map(|m| m.extractor.key())
    }

    /// Takes back a saved sample, with its saved embedding when it was made by the loaded
    /// backbone, else embedded again from its stored image (then `Ok(true)`).
    pub async fn restore_sample(
        &mut self,
        id: u64,
        sample: StoredSample,
        row: Option<Vec<f32>>,
    ) -> Result<bool, UserMessage> {
        let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
        let (row, computed) = match row.filter(|r| r.len() == extractor.feature_dim()) {
            Some(row) => (row, false),
            None => {
                let image = decode_image("stored sample", &sample.image.bytes).map_err(UserMessage::from)?;
                let features = extractor.embed(&[image]).await.map_err(UserMessage::from)?;
                (features.squeeze(0).and_then(|f| f.to_vec1()).map_err(UserMessage::from)?, true)
            }
        };
        let key = extractor.key().clone();
        self.samples.insert(id, sample, &key, row)?;
        Ok(computed)
    }

    /// Uses a saved model as the trained head (checked against the loaded backbone).
    pub fn restore_head(&mut self, head: SavedHead) -> Result<(), UserMessage> {
        let model = self.model.as_ref().ok_or_else(not_loaded)?;
        let trained =
            head.restore(model.extractor.key(), model.extractor.backbone(), &Device::Cpu).map_err(UserMessage::from)?;
        self.training.set_head(trained, head);
        Ok(())
    }

    /// The open project as a `.graft` file, with the trained model and every stored image.
    pub fn export_project(&self, name: &str, mut project: Project) -> Result<Vec<u8>, UserMessage> {
        project.head = self.trained_head().cloned();
        let images = self.samples.images_of(project.entries().flat_map(|c| &c.sample_ids));
        project.entries_mut().for_each(|c| c.sample_ids.retain(|id| images.contains_key(id)));
        write_archive(name, &project, &images).map_err(UserMessage::from)
    }

    /// Checks a `.graft` file completely (the model against the loaded backbone, every image
    /// decoded and embedded) before it replaces the worker's samples and model.
    pub async fn import_project(&mut self, file_name: &str, bytes: &[u8]) -> Result<ProjectArchive, UserMessage> {
        let archive = read_archive(file_name, bytes, &ArchiveLimits::default()).map_err(UserMessage::from)?;
        let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
        let head = match &archive.project.head {
            Some(saved) => Some((
                saved.restore(extractor.key(), extractor.backbone(), &Device::Cpu).map_err(|e| {
                    UserMessage::new("worker-in-file").arg("file", file_name).arg("problem", UserMessage::from(e))
                })?,
                saved.clone(),
            )),
            None => None,
        };
        let mut samples = SampleStore::default();
        let ids: Vec<&u64> = archive.images.keys().collect();
        for chunk in ids.chunks(IMPORT_BATCH) {
            let mut images = Vec::with_capacity(chunk.len());
            for &&id in chunk {
                let name = format!("{file_name}: sample {id}");
                images.push(decode_image(&name, &archive.images[&id].bytes).map_err(UserMessage::from)?);
            }
            let features = extractor.embed(&images).await.map_err(UserMessage::from)?;
            let rows: Vec<Vec<f32>> = features.to_vec2().map_err(UserMessage::from)?;
            for ((&&id, image), row) in chunk.iter().zip(&images).zip(rows) {
                let sample = StoredSample { image: archive.images[&id].clone(), thumbnail: thumbnail(image)? };
                samples.insert(id, sample, extractor.key(), row)?;
            }
        }
        self.samples = samples;
        self.training = Training::default();
        if let Some((trained, saved)) = head {
            self.training.set_head(trained, saved);
        }
        Ok(archive)
    }

    /// The trained model as one `.safetensors` file with its metadata.
    pub fn export_model(&self, class_names: &[String]) -> Result<Vec<u8>, UserMessage> {
        let (head, _) = self.training.head().ok_or_else(train_first)?;
        let extractor = &self.model.as_ref().ok_or_else(not_loaded)?.extractor;
        ModelFile::write(head, extractor.backbone(), extractor.key(), class_names).map_err(UserMessage::from)
    }

    fn import_head(&mut self, request_id: u64, head: SavedHead) -> FromWorker {
        let Some(model) = &self.model else {
            return FromWorker::RequestFailed { request_id, message: not_loaded() };
        };
        match head.restore(model.extractor.key(), model.extractor.backbone(), &Device::Cpu) {
            Ok(trained) => {
                let class_names = head.class_names.clone();
                self.training.set_head(trained, head);
                FromWorker::HeadImported { request_id, class_names }
            }
            Err(e) => FromWorker::RequestFailed { request_id, message: UserMessage::from(e) },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};
    use graft::backbone::Architecture;
    use graft::embed::{block_on, FeatureExtractor};
    use graft::manifest::{ModelManifest, WeightsSource};
    use graft::train::Stage;

    use super::*;
    use crate::i18n::Lang;

    /// A worker's message as the English page shows it.
    fn english(message: &UserMessage) -> String {
        Lang::En.text(message)
    }

    fn clock() -> f64 {
        super::super::now_millis()
    }

    /// A worker core whose model is MobileNetV2 with random weights (no network needed).
    fn core_with_model() -> WorkerCore {
        let source =
            WeightsSource { package: "test".into(), file: "test".into(), sha256: "0".into(), license: "-".into() };
        let manifest = ModelManifest::imagenet(Architecture::MobileNetV2, 0, "ab12".into(), source);
        let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
        let extractor = FeatureExtractor::new(&manifest, &vb, &Device::Cpu).unwrap();
        let mut core = WorkerCore::new(clock);
        let model = Model { name: "test".into(), extractor, pretrained: None };
        block_on(core.set_model(model, BackendChoice::Cpu, 0.0));
        core
    }

    fn png(shade: u8) -> ImageData {
        let image = image::RgbImage::from_fn(40, 30, |x, _| image::Rgb([shade, (x * 6) as u8, 255 - shade]));
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        ImageData::File { file_name: format!("{shade}.png"), bytes }
    }

    /// Every message the worker sends for `message` until its final answer (training is
    /// driven slice by slice); fails if no final answer comes.
    fn answers(core: &mut WorkerCore, message: ToWorker) -> Vec<FromWorker> {
        let request = message.request().expect("a request");
        let mut replies: Vec<FromWorker> = block_on(core.handle(message)).into_iter().collect();
        for _ in 0..10_000 {
            if replies.iter().any(|r| r.answers() == Some(request)) {
                break;
            }
            replies.extend(block_on(core.train_slice()));
        }
        let finals = replies.iter().filter(|r| r.answers() == Some(request)).count();
        assert_eq!(finals, 1, "{request:?} got {finals} final answers: {replies:?}");
        replies
    }

    #[test]
    fn an_adapting_run_needs_target_samples_and_reports_the_domain_accuracy() {
        let mut core = core_with_model();
        for sample_id in 10..20 {
            answers(&mut core, ToWorker::AddSample { sample_id, image: png((sample_id * 20) as u8) });
        }
        let classes = vec![
            ClassSamples { name: "a".into(), sample_ids: vec![10, 11, 12] },
            ClassSamples { name: "b".into(), sample_ids: vec![13, 14, 15] },
        ];
        let adapt = graft::train::Adapt { enabled: true, weight: 1.0 };
        let config = TrainConfig { epochs: 2, hidden: 4, adapt, ..TrainConfig::default() };
        // Samples 16..20 are the new domain, unlabelled; 20 and 21 label two of its images.
        for sample_id in 20..22 {
            answers(&mut core, ToWorker::AddSample { sample_id, image: png((sample_id * 20) as u8) });
        }
        let check = vec![vec![20], vec![21]];
        let train = |run_id, target: Vec<u64>| ToWorker::Train {
            run_id,
            classes: classes.clone(),
            config: config.clone(),
            target,
            check: check.clone(),
        };
        let refused = answers(&mut core, train(40, vec![]));
        assert!(
            matches!(&refused[0], FromWorker::TrainingFailed { message, .. } if english(message).contains("unlabelled"))
        );
        let adapted = answers(&mut core, train(41, vec![16, 17, 18, 19]));
        let domain: Vec<Option<f32>> = adapted
            .iter()
            .filter_map(|r| match r {
                FromWorker::EpochDone { metrics, .. } => Some(metrics.domain_accuracy),
                _ => None,
            })
            .collect();
        assert!(domain.len() == 2 && domain.iter().all(Option::is_some), "{adapted:?}");
        let Some(FromWorker::TrainingDone { report, .. }) = adapted.last() else { panic!("{adapted:?}") };
        assert!(report.kept_final, "an adapting run keeps its final weights");
        // The check images are scored in the next slice, before the baseline's.
        let scored = block_on(core.train_slice());
        let [FromWorker::CheckScored { run_id: 41, adapted: true, accuracy, images: 2 }] = scored.as_slice() else {
            panic!("{scored:?}")
        };
        assert!([0.0, 0.5, 1.0].contains(accuracy), "{accuracy}");
        // A run without adaptation is scored too, as such; a failed run is not.
        let plain = TrainConfig { adapt: graft::train::Adapt::default(), ..config.clone() };
        let mut message = train(42, vec![]);
        if let ToWorker::Train { config, .. } = &mut message {
            *config = plain;
        }
        answers(&mut core, message);
        let scored = block_on(core.train_slice());
        assert!(
            matches!(scored.as_slice(), [FromWorker::CheckScored { run_id: 42, adapted: false, .. }]),
            "{scored:?}"
        );
        answers(&mut core, train(43, vec![]));
        assert!(!block_on(core.train_slice()).iter().any(|r| matches!(r, FromWorker::CheckScored { .. })));
    }

    fn every_request(sample: ImageData) -> Vec<ToWorker> {
        let classes = vec![ClassSamples { name: "a".into(), sample_ids: vec![1] }];
        vec![
            ToWorker::Classify { request_id: 1, file_name: "x.png".into(), bytes: vec![1, 2, 3] },
            ToWorker::AddSample { sample_id: 2, image: sample.clone() },
            ToWorker::Train { run_id: 3, classes, config: TrainConfig::default(), target: vec![], check: vec![] },
            ToWorker::Predict { request_id: 4, image: sample },
            ToWorker::ExportSample { request_id: 7, sample_id: 2 },
            ToWorker::ExportHead { request_id: 5 },
            ToWorker::ExportEmbeddings { request_id: 6 },
        ]
    }

    #[test]
    fn every_request_gets_one_final_answer_without_a_model() {
        let mut core = WorkerCore::new(clock);
        for message in every_request(png(9)) {
            answers(&mut core, message);
        }
        assert!(block_on(core.handle(ToWorker::RemoveSample { sample_id: 2 })).is_none());
    }

    #[test]
    fn samples_train_predict_and_export_through_the_dispatch() {
        let mut core = core_with_model();
        for message in every_request(png(9)) {
            answers(&mut core, message);
        }
        let mut ids = [Vec::new(), Vec::new()];
        for sample_id in 10..18 {
            let reply = answers(&mut core, ToWorker::AddSample { sample_id, image: png((sample_id * 20) as u8) });
            assert!(matches!(reply[0], FromWorker::SampleEmbedded { .. }), "{reply:?}");
            ids[(sample_id % 2) as usize].push(sample_id);
        }
        let reply = answers(&mut core, ToWorker::ExportSample { request_id: 19, sample_id: 10 });
        let FromWorker::SampleExported { image, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!((image.mime.as_str(), image.width, image.height), ("image/png", 40, 30));
        let classes =
            ids.iter().enumerate().map(|(i, ids)| ClassSamples { name: format!("c{i}"), sample_ids: ids.clone() });
        let config = TrainConfig { epochs: 3, hidden: 0, ..TrainConfig::default() };
        let replies = answers(
            &mut core,
            ToWorker::Train { run_id: 20, classes: classes.collect(), config, target: vec![], check: vec![] },
        );
        assert!(matches!(replies[0], FromWorker::TrainingStarted { run_id: 20, .. }));
        let epochs = replies.iter().filter(|r| matches!(r, FromWorker::EpochDone { run_id: 20, .. })).count();
        assert_eq!(epochs, 3);
        let Some(FromWorker::TrainingDone { head, .. }) = replies.last() else { panic!("{replies:?}") };
        assert_eq!(head.class_names, ["c0", "c1"]);
        // The no-transfer baseline trains in the slices after the run, then says how it did.
        let mut after = Vec::new();
        while core.has_work() {
            after.extend(block_on(core.train_slice()));
        }
        let [FromWorker::BaselineDone { run_id: 20, baseline_accuracy, transferred_accuracy }] = after.as_slice()
        else {
            panic!("{after:?}")
        };
        assert!((0.0..=1.0).contains(baseline_accuracy));
        assert_eq!(*transferred_accuracy, head.report.val_accuracy);

        let reply = answers(&mut core, ToWorker::Predict { request_id: 21, image: png(40) });
        let FromWorker::Predicted { probs, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(probs.len(), 2);
        assert!(matches!(
            answers(&mut core, ToWorker::ExportHead { request_id: 22 })[0],
            FromWorker::HeadExported { .. }
        ));
        let reply = answers(&mut core, ToWorker::ImportHead { request_id: 23, head: head.clone() });
        assert!(matches!(reply[0], FromWorker::HeadImported { .. }), "{reply:?}");
        let reply = answers(&mut core, ToWorker::ExportEmbeddings { request_id: 24 });
        let FromWorker::EmbeddingsExported { cache, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(cache.len(), 9, "eight samples and the one of every_request");

        // A fresh worker with the same backbone takes the cache and the head back.
        let mut fresh = core_with_model();
        let reply = answers(&mut fresh, ToWorker::ImportEmbeddings { request_id: 25, cache: cache.clone() });
        let FromWorker::EmbeddingsImported { sample_ids, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(sample_ids.len(), 9);
        answers(&mut fresh, ToWorker::ImportHead { request_id: 26, head: head.clone() });
        let reply = answers(&mut fresh, ToWorker::Predict { request_id: 27, image: png(40) });
        // (Its random weights differ from the first worker's: only the shape can be compared.)
        assert!(matches!(&reply[0], FromWorker::Predicted { probs: again, .. } if again.len() == 2), "{reply:?}");
    }

    fn probabilities(core: &mut WorkerCore, request_id: u64) -> Result<Vec<f32>, UserMessage> {
        match answers(core, ToWorker::Predict { request_id, image: png(40) }).remove(0) {
            FromWorker::Predicted { probs, .. } => Ok(probs),
            FromWorker::PredictFailed { message, .. } => Err(message),
            other => panic!("{other:?}"),
        }
    }

    /// Export, then import into the same worker (another worker would have other random
    /// weights): the same samples and predictions; a broken file changes nothing.
    #[test]
    fn a_project_file_round_trips_through_the_worker_and_a_broken_one_changes_nothing() {
        let mut core = core_with_model();
        let mut project = Project::new(|| 0);
        for sample_id in 1..=6 {
            answers(&mut core, ToWorker::AddSample { sample_id, image: png((sample_id * 35) as u8) });
            project.classes[(sample_id % 2) as usize].sample_ids.push(sample_id);
        }
        let classes =
            project.classes.iter().map(|c| ClassSamples { name: c.name.clone(), sample_ids: c.sample_ids.clone() });
        let config = TrainConfig { epochs: 2, ..TrainConfig::default() };
        answers(
            &mut core,
            ToWorker::Train { run_id: 1, classes: classes.collect(), config, target: vec![], check: vec![] },
        );
        let trained = probabilities(&mut core, 2).unwrap();
        let reply = answers(&mut core, ToWorker::ExportProject { request_id: 3, name: "Lesson 1".into(), project });
        let FromWorker::FileReady { file_name, bytes, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(file_name, "Lesson-1.graft");

        let refused = block_on(core.import_project("bad.graft", &bytes[..bytes.len() / 2])).unwrap_err();
        let refused = english(&refused);
        assert!(refused.starts_with("bad.graft is not a usable Graft project"), "{refused}");
        assert_eq!(probabilities(&mut core, 4).unwrap(), trained, "the open project is untouched");
        core.clear_project();
        assert_eq!(english(&probabilities(&mut core, 5).unwrap_err()), "Train the model first.");

        let archive = block_on(core.import_project("lesson.graft", bytes)).unwrap();
        assert_eq!(archive.name, "Lesson 1");
        assert!((1..=6).all(|id| core.samples().sample(id).is_some()));
        let imported = probabilities(&mut core, 6).unwrap();
        assert!(imported.iter().zip(&trained).all(|(a, b)| (a - b).abs() < 1e-6), "{imported:?} vs {trained:?}");
        let reply =
            answers(&mut core, ToWorker::ExportModel { request_id: 7, class_names: vec!["a".into(), "b".into()] });
        let FromWorker::FileReady { bytes, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(graft::train::ModelFile::parse("m", bytes.clone()).unwrap().meta.classes, ["a", "b"]);
    }

    /// Unfreezing the last two blocks with augmentation: the stored images are prepared in
    /// slices, the head trains alone for one epoch and the blocks join; the fine-tuned model
    /// predicts, and a fresh worker restores it with its blocks.
    #[test]
    fn a_fine_tuning_run_prepares_trains_in_two_stages_and_restores() {
        let mut core = core_with_model();
        let mut ids = [Vec::new(), Vec::new()];
        for sample_id in 1..=8 {
            answers(&mut core, ToWorker::AddSample { sample_id, image: png((sample_id * 30) as u8) });
            ids[(sample_id % 2) as usize].push(sample_id);
        }
        let classes: Vec<ClassSamples> = ids
            .iter()
            .enumerate()
            .map(|(i, ids)| ClassSamples { name: format!("c{i}"), sample_ids: ids.clone() })
            .collect();
        let mut config =
            TrainConfig { epochs: 3, unfreeze: 2, head_epochs: 1, val_fraction: 0.0, ..TrainConfig::default() };
        config.augment.enabled = true;
        let replies = answers(
            &mut core,
            ToWorker::Train { run_id: 30, classes: classes.clone(), config, target: vec![], check: vec![] },
        );
        assert!(
            matches!(replies[0], FromWorker::TrainingPreparing { run_id: 30, prepared: 0, total: 8 }),
            "{replies:?}"
        );
        let started = replies.iter().find_map(|r| match r {
            FromWorker::TrainingStarted { views, cache_bytes, .. } => Some((*views, *cache_bytes)),
            _ => None,
        });
        // Block 17's input is 7 x 7 x 160 for a 224 crop; four views besides the plain input.
        assert_eq!(started, Some((4, 5 * 8 * 7 * 7 * 160 * 4)), "{replies:?}");
        let stages: Vec<Stage> = replies
            .iter()
            .filter_map(|r| match r {
                FromWorker::EpochDone { metrics, .. } => Some(metrics.stage),
                _ => None,
            })
            .collect();
        assert_eq!(stages, [Stage::Head, Stage::FineTune, Stage::FineTune]);
        let Some(FromWorker::TrainingDone { head, diverged: None, .. }) = replies.last() else { panic!("{replies:?}") };
        let reply = answers(&mut core, ToWorker::Predict { request_id: 31, image: png(60) });
        let FromWorker::Predicted { probs, .. } = &reply[0] else { panic!("{reply:?}") };

        // A head-only run replaces the model; importing the saved one brings its blocks back.
        let head_only = TrainConfig { epochs: 1, ..TrainConfig::default() };
        answers(
            &mut core,
            ToWorker::Train { run_id: 36, classes: classes.clone(), config: head_only, target: vec![], check: vec![] },
        );
        let reply = answers(&mut core, ToWorker::Predict { request_id: 37, image: png(60) });
        assert!(matches!(&reply[0], FromWorker::Predicted { probs: other, .. } if other != probs), "{reply:?}");
        let reply = answers(&mut core, ToWorker::ImportHead { request_id: 32, head: head.clone() });
        assert!(matches!(reply[0], FromWorker::HeadImported { .. }), "{reply:?}");
        let reply = answers(&mut core, ToWorker::Predict { request_id: 33, image: png(60) });
        let FromWorker::Predicted { probs: again, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(again, probs);

        let reply =
            answers(&mut core, ToWorker::PreviewAugment { request_id: 34, sample_ids: vec![1, 2, 99], strength: 0.8 });
        let FromWorker::AugmentPreview { images, .. } = &reply[0] else { panic!("{reply:?}") };
        assert_eq!(images.len(), 2, "one view per stored sample");
        assert_eq!((images[0].width, images[0].height), (PREVIEW_SIDE, PREVIEW_SIDE));

        let too_many = TrainConfig { unfreeze: 20, ..TrainConfig::default() };
        let reply = answers(
            &mut core,
            ToWorker::Train { run_id: 35, classes, config: too_many, target: vec![], check: vec![] },
        );
        assert!(
            matches!(&reply[0], FromWorker::TrainingFailed { message, .. } if english(message).contains("between 0 and 19"))
        );
    }

    #[test]
    fn a_stop_for_another_run_is_ignored_and_a_stop_ends_the_current_one_early() {
        let mut core = core_with_model();
        for sample_id in 1..=4 {
            answers(&mut core, ToWorker::AddSample { sample_id, image: png(sample_id as u8 * 50) });
        }
        let classes = vec![
            ClassSamples { name: "a".into(), sample_ids: vec![1, 2] },
            ClassSamples { name: "b".into(), sample_ids: vec![3, 4] },
        ];
        let config = TrainConfig { epochs: 1000, ..TrainConfig::default() };
        block_on(core.handle(ToWorker::Train { run_id: 7, classes, config, target: vec![], check: vec![] }));
        block_on(core.train_slice());
        assert!(block_on(core.handle(ToWorker::StopTraining { run_id: 6 })).is_none());
        assert!(core.is_training());
        let reply = block_on(core.handle(ToWorker::StopTraining { run_id: 7 }));
        assert!(matches!(reply, Some(FromWorker::TrainingDone { run_id: 7, stopped_early: true, .. })), "{reply:?}");
        assert!(!core.is_training());
    }
}
