//! The open project and its autosave: the worker answers the project messages (open, new,
//! save, delete, import) with [`Storage`], and after every message keeps the storage in step
//! with what the core did (a sample embedded or removed, a model trained).

use std::collections::BTreeSet;

use futures::channel::mpsc;
use futures::{Sink, SinkExt, StreamExt};
use graft::backbone::Architecture;
use graft::gpu::BackendChoice;
use graft::project::Project;
use graft::train::SavedHead;

use super::backbones::{rank, use_backbone};
use super::core::WorkerCore;
use super::locks::{self, LockLost, ProjectLock};
use super::now_millis;
use super::storage::{backbone_id, estimate, is_full, LoadedProject, ProjectRecord, Storage};
use crate::protocol::{ClassSamples, FreshProject, FromWorker, ProjectSummary, Thumbnail, ToWorker};
use graft::message::UserMessage;

pub struct Persistence {
    storage: Result<Storage, String>,
    /// The open project's id and name.
    open: Option<(String, String)>,
    /// No project has opened yet: the samples the page adds meanwhile (its draft's) stay in
    /// the core when the first one opens, and are saved into it.
    drafting: bool,
    /// The open project's lock (`locks.rs`): without it, another tab edits the project and
    /// this one writes nothing.
    lock: Option<ProjectLock>,
    /// Locks another tab took over.
    lost: (mpsc::UnboundedSender<LockLost>, mpsc::UnboundedReceiver<LockLost>),
    /// What the open project still has to write, and whether saving is paused because the
    /// browser's storage is full (it resumes by itself: each change and [`Self::flush`] try).
    backlog: Backlog,
    paused: bool,
    /// The first manifest loaded (the others sit beside it) and the backbones the site serves.
    models: Option<(String, Vec<Architecture>)>,
}

/// A new project id: the time and a random part (no `:` or `;`, which keys use).
fn new_project_id() -> String {
    format!("p{:x}{:08x}", now_millis() as u64, (js_sys::Math::random() * f64::from(u32::MAX)) as u32)
}

impl Persistence {
    pub async fn open() -> Self {
        Self {
            storage: Storage::open().await,
            open: None,
            drafting: true,
            lock: None,
            lost: mpsc::unbounded(),
            backlog: Backlog::default(),
            paused: false,
            models: None,
        }
    }

    /// Where the manifests are and which backbones there are (after the first load).
    pub fn set_models(&mut self, manifest_url: String, available: Vec<Architecture>) {
        self.models = Some((manifest_url, available));
    }

    /// The open project's id and the storage, where this tab may write it (it holds the lock).
    fn writing(&self) -> Option<(&str, &Storage)> {
        let (id, _) = self.open.as_ref()?;
        let held = self.lock.as_ref().is_some_and(|lock| lock.project_id() == id && lock.is_held());
        Some((id.as_str(), self.storage.as_ref().ok()?)).filter(|_| held)
    }

    /// Takes `project_id`'s lock, releasing the one held before, or `steal`s it; whether this
    /// tab now holds it.
    async fn hold(&mut self, project_id: &str, steal: bool) -> bool {
        if self.lock.as_ref().is_some_and(|lock| lock.project_id() == project_id) {
            return true;
        }
        self.lock = None;
        self.lock = locks::acquire(project_id, steal, self.lost.0.clone()).await;
        self.lock.is_some()
    }

    /// Waits until another tab takes over a project whose lock this one held.
    pub async fn next_lost(&mut self) -> LockLost {
        match self.lost.1.next().await {
            Some(lost) => lost,
            None => futures::future::pending().await,
        }
    }

    /// Another tab took `lost`'s project over: if it is the open one, this tab stops writing
    /// and the page says so.
    pub fn lock_lost(&mut self, lost: LockLost) -> Option<FromWorker> {
        if self.lock.as_ref().is_none_or(|lock| lock.project_id() != lost.0) {
            return None;
        }
        // What this tab had not written yet is the other tab's to decide now.
        (self.lock, self.backlog, self.paused) = (None, Backlog::default(), false);
        let (_, name) = self.open.as_ref()?;
        Some(FromWorker::ProjectHeldElsewhere { name: name.clone(), taken_over: true })
    }

    fn storage(&self) -> Result<&Storage, UserMessage> {
        self.storage.as_ref().map_err(|e| UserMessage::new("storage-unavailable").arg("detail", e))
    }

    /// Answers a project or backbone message, or gives the message back for the core;
    /// `progress` takes what comes before the answer (model download, embedding again).
    pub async fn handle(
        &mut self,
        core: &mut WorkerCore,
        message: ToWorker,
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Result<Vec<FromWorker>, ToWorker> {
        let replies = match message {
            ToWorker::OpenProject { request_id, project_id, fresh } => match self.refuse_while_paused(request_id) {
                Some(refused) => refused,
                None => self.open_project(core, request_id, project_id, fresh, progress).await,
            },
            ToWorker::SwitchBackbone { request_id, architecture, backend } => {
                self.switch(core, request_id, (architecture, backend), progress).await
            }
            ToWorker::RankBackbones { request_id, classes, backend } => {
                self.rank(core, request_id, &classes, backend, progress).await
            }
            ToWorker::NewProject { request_id, name, project } => match self.refuse_while_paused(request_id) {
                Some(refused) => refused,
                None => self.new_project(core, request_id, name, project).await,
            },
            ToWorker::SaveProject { name, project } => self.save(core, name, project).await,
            ToWorker::TakeOver { request_id, fresh } => self.take_over(core, request_id, fresh, progress).await,
            ToWorker::DeleteProject { request_id, fresh } => self.delete(core, request_id, fresh, progress).await,
            ToWorker::ImportProject { request_id, file_name, bytes } => {
                self.import(core, request_id, &file_name, &bytes).await
            }
            other => return Err(other),
        };
        Ok(replies)
    }

    /// After the core answered: saves what changed (a sample removed or embedded, a trained
    /// model).
    pub async fn after(&mut self, core: &WorkerCore, removed: Option<u64>, replies: &[FromWorker]) -> Vec<FromWorker> {
        let before = self.backlog.len();
        self.backlog.removed.extend(removed);
        for reply in replies {
            match reply {
                FromWorker::SampleEmbedded { sample_id, .. } => {
                    self.backlog.samples.insert(*sample_id);
                }
                FromWorker::TrainingDone { head, .. } => self.backlog.head = Some(head.clone()),
                _ => {}
            }
        }
        match self.backlog.len() > before {
            true => self.flush(core).await,
            false => Vec::new(),
        }
    }

    /// Saving is paused for want of space.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Before another project opens: writes what the open one still has to write, once more;
    /// what still cannot be written (the storage is full) is dropped with the project.
    async fn settle(&mut self, core: &WorkerCore) {
        if self.backlog.len() > 0 {
            self.flush(core).await;
        }
        (self.backlog, self.paused) = (Backlog::default(), false);
    }

    /// While saving is paused with work waiting, another project does not open (the work would
    /// be dropped with the open one): the answer that says so.
    fn refuse_while_paused(&self, request_id: u64) -> Option<Vec<FromWorker>> {
        let waiting = self.paused && self.backlog.len() > 0;
        waiting.then(|| vec![FromWorker::RequestFailed { request_id, message: UserMessage::new("storage-full-wait") }])
    }

    /// Writes the backlog (also the worker loop's retry while saving is paused). On a full
    /// disk what was saved stays, the rest waits, and the page is told once; when the writes
    /// go through again, it is told that saving resumed.
    pub async fn flush(&mut self, core: &WorkerCore) -> Vec<FromWorker> {
        let mut backlog = std::mem::take(&mut self.backlog);
        // Another tab edits the project (or there is no storage): nothing to write here.
        let Some((project, storage)) = self.writing() else {
            self.paused = false;
            return Vec::new();
        };
        let held = || self.lock.as_ref().is_some_and(ProjectLock::is_held);
        let written = backlog.write(storage, project, core, held).await;
        self.backlog = backlog;
        match written {
            Ok(()) => {
                let resumed = std::mem::take(&mut self.paused).then_some(FromWorker::StorageResumed);
                resumed.into_iter().chain(storage_used().await).collect()
            }
            // The lock went: that tab says so, and the backlog is the other tab's now.
            Err(message) if message == TAKEN_OVER => Vec::new(),
            Err(message) if is_full(&message) => match std::mem::replace(&mut self.paused, true) {
                true => Vec::new(),
                false => vec![FromWorker::StorageFailed { message: UserMessage::new("storage-full") }],
            },
            Err(message) => {
                (self.backlog, self.paused) = (Backlog::default(), false);
                vec![FromWorker::StorageFailed { message: UserMessage::verbatim(message) }]
            }
        }
    }

    /// Every saved project for the picker, the damaged ones (their record is unreadable) last.
    async fn summaries(&self) -> Vec<ProjectSummary> {
        let Ok(storage) = self.storage() else { return Vec::new() };
        let (records, damaged) = storage.projects().await.unwrap_or_default();
        let mut listed: Vec<ProjectSummary> = records.iter().map(ProjectRecord::summary).collect();
        for id in damaged {
            let samples = storage.sample_ids(&id).await.map_or(0, |ids| ids.len());
            listed.push(ProjectSummary { id, name: String::new(), modified: 0.0, samples, damaged: true });
        }
        listed
    }

    async fn open_project(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        id: Option<String>,
        fresh: FreshProject,
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Vec<FromWorker> {
        self.settle(core).await;
        let Ok(storage) = &self.storage else {
            return self.new_project(core, request_id, fresh.name, fresh.project).await;
        };
        let id = match id {
            Some(id) => Some(id),
            None => storage.projects().await.ok().and_then(|(records, _)| records.first().map(|r| r.id.clone())),
        };
        let Some(id) = id else {
            return self.new_project(core, request_id, fresh.name, fresh.project).await;
        };
        // Samples added before the first project opened would be lost in a project another
        // tab holds: they go into a new project instead.
        let draft_has_samples = self.drafting && !core.samples().ids().is_empty();
        let held = self.hold(&id, false).await;
        if !held && draft_has_samples {
            return self.new_project(core, request_id, fresh.name, fresh.project).await;
        }
        let Ok(storage) = &self.storage else { return Vec::new() };
        let loaded = match storage.load(&id).await {
            Err(_) if held && storage.projects().await.is_ok_and(|(_, damaged)| damaged.contains(&id)) => {
                recover(storage, &id, fresh).await
            }
            loaded => loaded,
        };
        match loaded {
            Ok(loaded) => {
                // The project's backbone first, so that its samples' saved features serve.
                let project = &loaded.record.project;
                let wanted = project.backbone.as_ref().map(|key| key.architecture);
                let mut replies = match (wanted, &self.models) {
                    (Some(wanted), Some((url, _))) => {
                        match use_backbone(core, wanted, project.backend, url, progress).await {
                            Ok(ready) => ready.into_iter().collect(),
                            Err(message) => vec![FromWorker::StorageFailed {
                                message: UserMessage::new("storage-backbone-fallback").arg("problem", message),
                            }],
                        }
                    }
                    _ => Vec::new(),
                };
                replies.extend(self.open_loaded(core, request_id, loaded, progress).await);
                replies
            }
            Err(message) => {
                // The open project stays open: it keeps its lock.
                if let Some((open, _)) = self.open.clone() {
                    self.hold(&open, false).await;
                }
                vec![FromWorker::RequestFailed { request_id, message: UserMessage::verbatim(message) }]
            }
        }
    }

    /// Puts a loaded project into the core (with the loaded backbone) and saves the features it
    /// had to compute; the answers.
    async fn open_loaded(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        loaded: LoadedProject,
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Vec<FromWorker> {
        let draft = self.take_draft(core);
        let Restored { record, thumbnails, mut problem, computed, lost } = restore(core, loaded, progress).await;
        self.open = Some((record.id.clone(), record.name.clone()));
        let held = self.hold(&record.id, false).await;
        if let (Some((id, storage)), Some(key)) = (self.writing(), core.backbone_key()) {
            if let Err(message) = storage.put_embeddings(id, key, &computed).await {
                problem.get_or_insert(UserMessage::verbatim(message));
            }
        }
        if let Err(message) = self.save_draft(core, &draft).await {
            problem.get_or_insert(message);
        }
        let name = record.name.clone();
        let mut replies = vec![self.opened(request_id, record, thumbnails, lost).await];
        replies.extend((!held).then_some(FromWorker::ProjectHeldElsewhere { name, taken_over: false }));
        replies.extend(problem.map(|message| FromWorker::StorageFailed { message }));
        replies.extend(storage_used().await);
        replies
    }

    /// Takes the open project over from the tab that holds it, and opens it again as saved.
    async fn take_over(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        fresh: FreshProject,
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Vec<FromWorker> {
        let Some((id, _)) = self.open.clone() else {
            return vec![FromWorker::RequestFailed { request_id, message: UserMessage::new("switch-needs-storage") }];
        };
        self.hold(&id, true).await;
        let reopened = self.open_project(core, request_id, Some(id), fresh.clone(), progress).await;
        match reopened.iter().any(|r| matches!(r, FromWorker::RequestFailed { .. })) {
            // The other tab deleted it meanwhile: the last one saved (or a new one) opens.
            true => self.open_project(core, request_id, None, fresh, progress).await,
            false => reopened,
        }
    }

    /// Makes `architecture` the backbone and opens the project again with its features.
    async fn switch(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        (architecture, backend): (Architecture, BackendChoice),
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Vec<FromWorker> {
        let failed = |message: UserMessage| vec![FromWorker::RequestFailed { request_id, message }];
        if core.is_training() {
            return failed(UserMessage::new("switch-while-training"));
        }
        let (Some((url, _)), Some((id, _)), Ok(storage)) = (&self.models, &self.open, &self.storage) else {
            return failed(UserMessage::new("switch-needs-storage"));
        };
        let ready = match use_backbone(core, architecture, backend, url, progress).await {
            Ok(ready) => ready,
            Err(message) => {
                let name = architecture.display_name();
                return failed(UserMessage::new("backbone-load-failed").arg("name", name).arg("problem", message));
            }
        };
        let mut replies: Vec<FromWorker> = ready.into_iter().collect();
        match storage.load(id).await {
            Ok(mut loaded) => {
                loaded.record.project.backbone = core.backbone_key().cloned();
                replies.extend(self.open_loaded(core, request_id, loaded, progress).await);
            }
            Err(message) => replies.extend(failed(UserMessage::verbatim(message))),
        }
        replies
    }

    /// LogME of every backbone on the labelled samples; saves the features it computed.
    async fn rank(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        classes: &[ClassSamples],
        backend: BackendChoice,
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Vec<FromWorker> {
        let Some((url, available)) = self.models.clone() else {
            return vec![FromWorker::RequestFailed { request_id, message: UserMessage::new("worker-not-loaded") }];
        };
        let saved = match (&self.open, &self.storage) {
            (Some((id, _)), Ok(storage)) => storage.load(id).await.map(|l| l.rows_by_backbone()).unwrap_or_default(),
            _ => Default::default(),
        };
        match rank(core, &available, classes, (backend, &url), &saved, progress).await {
            Ok((scores, computed)) => {
                let mut replies = vec![FromWorker::BackbonesRanked { request_id, scores }];
                if let Some((id, storage)) = self.writing() {
                    for (key, rows) in &computed {
                        if let Err(message) = storage.put_embeddings(id, key, rows).await {
                            replies.push(FromWorker::StorageFailed { message: UserMessage::verbatim(message) });
                        }
                    }
                }
                replies
            }
            Err(message) => vec![FromWorker::RequestFailed { request_id, message }],
        }
    }

    /// The answer to a request that opened `record`.
    async fn opened(
        &self,
        request_id: u64,
        record: ProjectRecord,
        thumbnails: Vec<Thumbnail>,
        lost: Vec<UserMessage>,
    ) -> FromWorker {
        let ProjectRecord { id: project_id, name, project, .. } = record;
        FromWorker::ProjectOpened {
            request_id,
            project_id,
            name,
            project: Box::new(project),
            thumbnails,
            projects: self.summaries().await,
            lost,
        }
    }

    /// A new project, saved at once (a failure to save is reported; it stays open in memory).
    async fn new_project(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        name: String,
        project: Project,
    ) -> Vec<FromWorker> {
        self.settle(core).await;
        let draft = self.take_draft(core);
        let record = ProjectRecord { id: new_project_id(), name, modified: now_millis(), project };
        self.open = Some((record.id.clone(), record.name.clone()));
        self.hold(&record.id, false).await;
        let saved = match self.storage() {
            Ok(storage) => storage.put_project(&record).await.map_err(UserMessage::verbatim),
            Err(message) => Err(message),
        };
        let saved = match saved {
            Ok(()) => self.save_draft(core, &draft).await,
            failed => failed,
        };
        let mut replies = vec![self.opened(request_id, record, Vec::new(), Vec::new()).await];
        replies.extend(saved.err().map(|message| FromWorker::StorageFailed { message }));
        replies
    }

    /// Before a project goes into the core: the draft's samples while none has opened yet
    /// (they stay), else none (the core is cleared).
    fn take_draft(&mut self, core: &mut WorkerCore) -> Vec<u64> {
        if std::mem::replace(&mut self.drafting, false) {
            core.samples().ids()
        } else {
            core.clear_project();
            Vec::new()
        }
    }

    /// Saves the draft's samples into the project just opened (the page lists them in it).
    /// Draft samples embedded by another backbone (the project opened on its own) are
    /// embedded again from their stored images first.
    async fn save_draft(&self, core: &mut WorkerCore, draft: &[u64]) -> Result<(), UserMessage> {
        let Some(key) = core.backbone_key().cloned() else { return Ok(()) };
        for &id in draft {
            let Some(sample) = core.samples().sample(id).filter(|_| core.samples().embedding(&key, id).is_none())
            else {
                continue;
            };
            core.restore_sample(id, sample.clone(), None).await?;
        }
        let Some((project, storage)) = self.writing() else { return Ok(()) };
        for &id in draft {
            save_sample(storage, project, core, id).await.map_err(UserMessage::verbatim)?;
        }
        Ok(())
    }

    async fn save(&mut self, core: &WorkerCore, name: String, project: Project) -> Vec<FromWorker> {
        let Some((id, _)) = self.writing() else { return Vec::new() };
        self.backlog.project =
            Some(ProjectRecord { id: id.to_string(), name: name.clone(), modified: now_millis(), project });
        let mut replies = self.flush(core).await;
        let Some((_, saved_name)) = &mut self.open else { return replies };
        if !self.paused && std::mem::replace(saved_name, name.clone()) != name {
            replies.push(FromWorker::ProjectsListed { projects: self.summaries().await });
        }
        replies
    }

    /// Deletes the open project, then opens the last one saved (or a new one).
    async fn delete(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        fresh: FreshProject,
        progress: &mut (impl Sink<FromWorker> + Unpin),
    ) -> Vec<FromWorker> {
        let deleted = match (&self.open, self.storage(), self.writing()) {
            (Some(_), _, Some((id, storage))) => storage.delete_project(id).await.map_err(UserMessage::verbatim),
            (Some(_), Ok(_), None) => Err(UserMessage::new("project-held-elsewhere")),
            (None, _, _) => Ok(()),
            (_, Err(message), _) => Err(message),
        };
        match deleted {
            Ok(()) => {
                self.open = None;
                self.open_project(core, request_id, None, fresh, progress).await
            }
            Err(message) => vec![FromWorker::RequestFailed { request_id, message }],
        }
    }

    async fn import(
        &mut self,
        core: &mut WorkerCore,
        request_id: u64,
        file_name: &str,
        bytes: &[u8],
    ) -> Vec<FromWorker> {
        if let Some(refused) = self.refuse_while_paused(request_id) {
            return refused;
        }
        self.settle(core).await;
        let archive = match core.import_project(file_name, bytes).await {
            Ok(archive) => archive,
            Err(message) => return vec![FromWorker::RequestFailed { request_id, message }],
        };
        let record = ProjectRecord {
            id: new_project_id(),
            name: archive.name.clone(),
            modified: now_millis(),
            project: archive.project.clone(),
        };
        self.open = Some((record.id.clone(), record.name.clone()));
        self.hold(&record.id, false).await;
        let saved = match (self.storage(), core.backbone_key()) {
            (Ok(storage), Some(key)) => {
                let samples: Vec<_> = archive
                    .images
                    .keys()
                    .filter_map(|&id| Some((id, core.samples().sample(id)?, core.samples().embedding(key, id)?)))
                    .collect();
                storage.put_all(&record, &samples, key, core.trained_head()).await.map_err(UserMessage::verbatim)
            }
            (Err(message), _) => Err(message),
            (_, None) => Err(UserMessage::new("worker-not-loaded")),
        };
        let thumbnails = thumbnails_of(core, &archive.project);
        let mut replies = vec![self.opened(request_id, record, thumbnails, Vec::new()).await];
        replies.extend(saved.err().map(|message| FromWorker::StorageFailed { message }));
        replies.extend(storage_used().await);
        replies
    }
}

/// Why a write stopped half way: another tab took the project over (it says so itself).
const TAKEN_OVER: &str = "another tab took this project over";

/// The open project's writes not done yet: samples removed, samples to save (from the core),
/// its trained model and its record. Kept while the browser's storage is full.
#[derive(Default)]
struct Backlog {
    removed: Vec<u64>,
    samples: BTreeSet<u64>,
    head: Option<SavedHead>,
    project: Option<ProjectRecord>,
}

impl Backlog {
    fn len(&self) -> usize {
        self.removed.len() + self.samples.len() + usize::from(self.head.is_some()) + usize::from(self.project.is_some())
    }

    /// Writes everything in order (removals first: they free space), dropping each write once
    /// done; stops at the first failure, and as soon as this tab no longer `held` the lock.
    async fn write(
        &mut self,
        storage: &Storage,
        project: &str,
        core: &WorkerCore,
        held: impl Fn() -> bool,
    ) -> Result<(), String> {
        let lost = || if held() { Ok(()) } else { Err(TAKEN_OVER.to_string()) };
        while let Some(&id) = self.removed.first() {
            lost()?;
            storage.delete_sample(project, id).await?;
            self.removed.remove(0);
        }
        while let Some(&id) = self.samples.first() {
            lost()?;
            save_sample(storage, project, core, id).await?;
            self.samples.remove(&id);
        }
        if let Some(head) = &self.head {
            lost()?;
            storage.put_head(project, head).await?;
            self.head = None;
        }
        if let Some(record) = &self.project {
            lost()?;
            storage.put_project(record).await?;
            self.project = None;
        }
        Ok(())
    }
}

/// A project put back into the core.
struct Restored {
    record: ProjectRecord,
    thumbnails: Vec<Thumbnail>,
    /// What could not be restored.
    problem: Option<UserMessage>,
    /// Features the loaded backbone had to compute (none were saved for it).
    computed: Vec<(u64, Vec<f32>)>,
    /// What was left out because it could not be read, as messages for the page.
    lost: Vec<UserMessage>,
}

/// Puts a loaded project into the core: its samples (with their saved embeddings for the
/// loaded backbone, else embedded again with `Reembedding` progress), its model when it was
/// trained on this backbone. Samples without a saved record (a reload before they were
/// embedded) leave the project.
async fn restore(
    core: &mut WorkerCore,
    loaded: LoadedProject,
    progress: &mut (impl Sink<FromWorker> + Unpin),
) -> Restored {
    let LoadedProject { mut record, samples, mut embeddings, head, unreadable } = loaded;
    let key = core.backbone_key().cloned();
    let backbone = key.as_ref().map(backbone_id).unwrap_or_default();
    let mut rows: Vec<Option<Vec<f32>>> = samples
        .iter()
        .map(|(id, _)| embeddings.remove(id).and_then(|r| r.into_iter().find(|(b, _)| *b == backbone).map(|(_, r)| r)))
        .collect();
    let total = rows.iter().filter(|r| r.is_none()).count();
    let (mut problem, mut computed) = (None, Vec::new());
    let mut broken = unreadable.samples;
    for ((id, sample), row) in samples.into_iter().zip(rows.iter_mut()) {
        match core.restore_sample(id, sample, row.take()).await {
            Ok(false) => {}
            Ok(true) => {
                let row = key.as_ref().and_then(|k| core.samples().embedding(k, id));
                computed.push((id, row.map(<[f32]>::to_vec).unwrap_or_default()));
                let _ = progress.send(FromWorker::Reembedding { done: computed.len(), total }).await;
            }
            Err(message) => {
                problem = Some(UserMessage::new("restore-sample-failed").arg("problem", message));
                broken.push(id);
            }
        }
    }
    let project = &mut record.project;
    let mut lost = left_out(project, |id| core.samples().sample(id).is_some(), &broken);
    for class in project.entries_mut() {
        class.sample_ids.retain(|&id| core.samples().sample(id).is_some());
    }
    if unreadable.model {
        lost.push(UserMessage::new("storage-model-unreadable"));
    }
    if let (Some(count), Some(first)) = (unreadable.recovered, project.classes.first()) {
        let recovered =
            UserMessage::new("storage-project-recovered").arg("count", count).arg("class", first.name.as_str());
        lost.insert(0, recovered);
    }
    project.head = None;
    // A model trained on another backbone stays saved for when that one is used again.
    if let Some(head) = head.filter(|h| Some(&h.backbone) == key.as_ref()) {
        match core.restore_head(head.clone()) {
            Ok(()) => project.head = Some(head),
            Err(message) => problem = Some(UserMessage::new("restore-model-failed").arg("problem", message)),
        }
    }
    if project.head.is_none() {
        project.transfer_check = None;
    }
    let thumbnails = thumbnails_of(core, project);
    Restored { record, thumbnails, problem, computed, lost }
}

/// A project whose record is damaged, made again from its sample records: `fresh` (the page's
/// new project) with every sample in its first class, saved in place of the damaged record.
async fn recover(storage: &Storage, id: &str, fresh: FreshProject) -> Result<LoadedProject, String> {
    let ids = storage.sample_ids(id).await?;
    let FreshProject { name, mut project } = fresh;
    if let Some(first) = project.classes.first_mut() {
        first.sample_ids = ids.clone();
    }
    storage.put_project(&ProjectRecord { id: id.to_string(), name, modified: now_millis(), project }).await?;
    let mut loaded = storage.load(id).await?;
    loaded.unreadable.recovered = Some(ids.len());
    Ok(loaded)
}

/// What the project lists but could not be restored, per class: samples whose records were
/// `broken`, and samples with no record at all (still being saved when the page closed).
fn left_out(project: &Project, restored: impl Fn(u64) -> bool, broken: &[u64]) -> Vec<UserMessage> {
    let mut lost = Vec::new();
    for class in project.entries() {
        let gone: Vec<u64> = class.sample_ids.iter().copied().filter(|&id| !restored(id)).collect();
        let unreadable = gone.iter().filter(|id| broken.contains(id)).count();
        for (id, count) in
            [("storage-samples-unreadable", unreadable), ("storage-samples-unsaved", gone.len() - unreadable)]
        {
            if count > 0 {
                lost.push(UserMessage::new(id).arg("count", count).arg("class", class.name.as_str()));
            }
        }
    }
    lost
}

fn thumbnails_of(core: &WorkerCore, project: &Project) -> Vec<Thumbnail> {
    let ids = project.entries().flat_map(|c| &c.sample_ids);
    ids.filter_map(|&sample_id| {
        Some(Thumbnail { sample_id, image: core.samples().sample(sample_id)?.thumbnail.clone() })
    })
    .collect()
}

async fn save_sample(storage: &Storage, project: &str, core: &WorkerCore, id: u64) -> Result<bool, String> {
    let (Some(sample), Some(key)) = (core.samples().sample(id), core.backbone_key()) else { return Ok(false) };
    let Some(row) = core.samples().embedding(key, id) else { return Ok(false) };
    storage.put_sample(project, id, sample, key, row).await.map(|()| true)
}

async fn storage_used() -> Option<FromWorker> {
    let (usage, quota) = estimate().await?;
    Some(FromWorker::StorageUsed { usage, quota })
}
