//! The open project and its autosave: the worker answers the project messages (open, new,
//! save, delete, import) with [`Storage`], and after every message keeps the storage in step
//! with what the core did (a sample embedded or removed, a model trained).

use graft::project::Project;

use super::core::WorkerCore;
use super::now_millis;
use super::storage::{backbone_id, estimate, LoadedProject, ProjectRecord, Storage};
use crate::protocol::{FromWorker, ProjectSummary, Thumbnail, ToWorker};

const DEFAULT_NAME: &str = "My project";

pub struct Persistence {
    storage: Result<Storage, String>,
    /// The open project's id and name.
    open: Option<(String, String)>,
}

/// A new project id: the time and a random part (no `:` or `;`, which keys use).
fn new_project_id() -> String {
    format!("p{:x}{:08x}", now_millis() as u64, (js_sys::Math::random() * f64::from(u32::MAX)) as u32)
}

impl Persistence {
    pub async fn open() -> Self {
        Self { storage: Storage::open().await, open: None }
    }

    fn storage(&self) -> Result<&Storage, String> {
        self.storage
            .as_ref()
            .map_err(|e| format!("this browser does not let Graft save ({e}); work will be lost on reload"))
    }

    /// Answers a project message, or gives the message back for the core.
    pub async fn handle(&mut self, core: &mut WorkerCore, message: ToWorker) -> Result<Vec<FromWorker>, ToWorker> {
        let replies = match message {
            ToWorker::OpenProject { request_id, project_id } => self.open_project(core, request_id, project_id).await,
            ToWorker::NewProject { request_id, name, project } => {
                self.new_project(core, request_id, name, project).await
            }
            ToWorker::SaveProject { name, project } => self.save(name, project).await,
            ToWorker::DeleteProject { request_id } => self.delete(core, request_id).await,
            ToWorker::ImportProject { request_id, file_name, bytes } => {
                self.import(core, request_id, &file_name, &bytes).await
            }
            other => return Err(other),
        };
        Ok(replies)
    }

    /// After the core answered: saves what changed (a sample, a trained model).
    pub async fn after(&mut self, core: &WorkerCore, removed: Option<u64>, replies: &[FromWorker]) -> Vec<FromWorker> {
        let (Some((project, _)), Ok(storage)) = (&self.open, &self.storage) else { return Vec::new() };
        let mut outcome = Ok(false);
        if let Some(id) = removed {
            outcome = storage.delete_sample(project, id).await.map(|()| true);
        }
        for reply in replies {
            outcome = match reply {
                FromWorker::SampleEmbedded { sample_id, .. } => save_sample(storage, project, core, *sample_id).await,
                FromWorker::TrainingDone { head, .. } => storage.put_head(project, head).await.map(|()| true),
                _ => continue,
            };
        }
        match outcome {
            Ok(true) => storage_used().await.into_iter().collect(),
            Ok(false) => Vec::new(),
            Err(message) => vec![FromWorker::StorageFailed { message }],
        }
    }

    async fn summaries(&self) -> Vec<ProjectSummary> {
        match self.storage() {
            Ok(storage) => storage.projects().await.unwrap_or_default().iter().map(ProjectRecord::summary).collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn open_project(&mut self, core: &mut WorkerCore, request_id: u64, id: Option<String>) -> Vec<FromWorker> {
        let Ok(storage) = &self.storage else {
            return self.new_project(core, request_id, DEFAULT_NAME.into(), fresh_project()).await;
        };
        let id = match id {
            Some(id) => Some(id),
            None => storage.projects().await.ok().and_then(|r| r.first().map(|r| r.id.clone())),
        };
        let Some(id) = id else {
            return self.new_project(core, request_id, DEFAULT_NAME.into(), fresh_project()).await;
        };
        match storage.load(&id).await {
            Ok(loaded) => {
                let (record, thumbnails, problem) = restore(core, loaded).await;
                self.open = Some((record.id.clone(), record.name.clone()));
                let mut replies = vec![self.opened(request_id, record, thumbnails).await];
                replies.extend(problem.map(|message| FromWorker::StorageFailed { message }));
                replies.extend(storage_used().await);
                replies
            }
            Err(message) => vec![FromWorker::RequestFailed { request_id, message }],
        }
    }

    /// The answer to a request that opened `record`.
    async fn opened(&self, request_id: u64, record: ProjectRecord, thumbnails: Vec<Thumbnail>) -> FromWorker {
        let ProjectRecord { id: project_id, name, project, .. } = record;
        FromWorker::ProjectOpened {
            request_id,
            project_id,
            name,
            project,
            thumbnails,
            projects: self.summaries().await,
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
        core.clear_project();
        let record = ProjectRecord { id: new_project_id(), name, modified: now_millis(), project };
        self.open = Some((record.id.clone(), record.name.clone()));
        let saved = match self.storage() {
            Ok(storage) => storage.put_project(&record).await,
            Err(message) => Err(message),
        };
        let mut replies = vec![self.opened(request_id, record, Vec::new()).await];
        replies.extend(saved.err().map(|message| FromWorker::StorageFailed { message }));
        replies
    }

    async fn save(&mut self, name: String, project: Project) -> Vec<FromWorker> {
        let Some((id, saved_name)) = &mut self.open else { return Vec::new() };
        let Ok(storage) = &self.storage else { return Vec::new() };
        let renamed = *saved_name != name;
        let record = ProjectRecord { id: id.clone(), name: name.clone(), modified: now_millis(), project };
        if let Err(message) = storage.put_project(&record).await {
            return vec![FromWorker::StorageFailed { message }];
        }
        *saved_name = name;
        if renamed {
            return vec![FromWorker::ProjectsListed { projects: self.summaries().await }];
        }
        Vec::new()
    }

    /// Deletes the open project, then opens the last one saved (or a new one).
    async fn delete(&mut self, core: &mut WorkerCore, request_id: u64) -> Vec<FromWorker> {
        let deleted = match (&self.open, self.storage()) {
            (Some((id, _)), Ok(storage)) => storage.delete_project(id).await,
            (None, _) => Ok(()),
            (_, Err(message)) => Err(message),
        };
        match deleted {
            Ok(()) => {
                self.open = None;
                self.open_project(core, request_id, None).await
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
        let saved = match (self.storage(), core.backbone_key()) {
            (Ok(storage), Some(key)) => {
                let samples: Vec<_> = archive
                    .images
                    .keys()
                    .filter_map(|&id| Some((id, core.samples().sample(id)?, core.samples().embedding(key, id)?)))
                    .collect();
                storage.put_all(&record, &samples, key, core.trained_head()).await
            }
            (Err(message), _) => Err(message),
            (_, None) => Err("the model is not loaded yet".into()),
        };
        let thumbnails = thumbnails_of(core, &archive.project);
        let mut replies = vec![self.opened(request_id, record, thumbnails).await];
        replies.extend(saved.err().map(|message| FromWorker::StorageFailed { message }));
        replies.extend(storage_used().await);
        replies
    }
}

/// A new project's classes: two, empty (the page renumbers ids above them).
fn fresh_project() -> Project {
    let mut next = 0;
    Project::new(|| {
        next += 1;
        next
    })
}

/// Puts a loaded project into the core: its samples (with their saved embeddings for the
/// loaded backbone), its model. Samples without a saved record (a reload before they were
/// embedded) leave the project. Returns the record as restored, the thumbnails, and what could
/// not be restored.
async fn restore(core: &mut WorkerCore, loaded: LoadedProject) -> (ProjectRecord, Vec<Thumbnail>, Option<String>) {
    let LoadedProject { mut record, samples, mut embeddings, head } = loaded;
    core.clear_project();
    let backbone = core.backbone_key().map(backbone_id).unwrap_or_default();
    let mut problem = None;
    for (id, sample) in samples {
        let row =
            embeddings.remove(&id).and_then(|rows| rows.into_iter().find(|(b, _)| *b == backbone).map(|(_, r)| r));
        if let Err(message) = core.restore_sample(id, sample, row).await {
            problem = Some(format!("a saved sample could not be restored: {message}"));
        }
    }
    let project = &mut record.project;
    for class in &mut project.classes {
        class.sample_ids.retain(|&id| core.samples().sample(id).is_some());
    }
    project.head = None;
    if let Some(head) = head {
        match core.restore_head(head.clone()) {
            Ok(()) => project.head = Some(head),
            Err(message) => problem = Some(format!("the saved model could not be restored: {message}")),
        }
    }
    let thumbnails = thumbnails_of(core, project);
    (record, thumbnails, problem)
}

fn thumbnails_of(core: &WorkerCore, project: &Project) -> Vec<Thumbnail> {
    let ids = project.classes.iter().flat_map(|c| &c.sample_ids);
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
