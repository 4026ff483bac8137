//! Autosave: IndexedDB, from the worker (the `idb` crate finds it on the worker's global).
//!
//! Database `graft`, version 2, four object stores, all with string keys; every value is its
//! parts then their checksum (`records.rs`), so a damaged record is told apart and left out:
//!
//! | store | key | value (parts) |
//! |---|---|---|
//! | `projects` | project id | JSON [`ProjectRecord`] (classes, settings, curves; no weights) |
//! | `samples` | `{project}:{sample id, 20 digits}` | JSON SampleMeta, image bytes, thumbnail bytes |
//! | `embeddings` | `{project}:{sample id}:{backbone}@{sha256}` | backbone, sample id, Float32Array |
//! | `weights` | project id | JSON SavedHead without its bytes, safetensors bytes |
//!
//! Version 1 had the same parts without the checksum; opening such a database upgrades every
//! record in the upgrade transaction (all or nothing: a failure leaves version 1 as it was).
//! From version 2 on, a tab holding the database open closes it when a newer version asks
//! (then stops saving and says so); a version-1 tab cannot, so the newer page says to close it.
//!
//! One record per sample and per weights file, so that no single value grows with the project.
//! Every write is one short transaction issued after the computation is done: nothing but
//! IndexedDB requests is awaited while a transaction is open. A project's records share the
//! key prefix `{project}:`, so one key range finds or deletes them all.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use graft::backbone::BackboneKey;
use graft::preprocess::StoredImage;
use graft::project::Project;
use graft::train::SavedHead;
use idb::{
    Database, DatabaseEvent, Event as _, Factory, KeyRange, ObjectStoreParams, Query, Request, Transaction,
    TransactionMode, TransactionResult,
};
use js_sys::{Float32Array, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use super::records::{seal, unseal, upgrade_v1};
use super::samples::StoredSample;
use crate::protocol::ProjectSummary;

const DATABASE: &str = "graft";
const VERSION: u32 = 2;
const PROJECTS: &str = "projects";
const SAMPLES: &str = "samples";
const EMBEDDINGS: &str = "embeddings";
const WEIGHTS: &str = "weights";

/// A saved project's record: everything but its samples and weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    pub modified: f64,
    pub project: Project,
}

impl ProjectRecord {
    pub fn summary(&self) -> ProjectSummary {
        let samples = self.project.entries().map(|c| c.sample_ids.len()).sum();
        ProjectSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            modified: self.modified,
            samples,
            damaged: false,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SampleMeta {
    id: u64,
    image: (String, u32, u32),
    thumbnail: (String, u32, u32),
}

/// A saved project with its samples, their embeddings (by sample id, with the backbone that
/// made them) and its trained model.
pub struct LoadedProject {
    pub record: ProjectRecord,
    pub samples: Vec<(u64, StoredSample)>,
    pub embeddings: HashMap<u64, Vec<(String, Vec<f32>)>>,
    pub head: Option<SavedHead>,
    /// Records that did not parse: each was left out, the rest loaded (an unreadable
    /// embedding is simply missing, so its image is embedded again).
    pub unreadable: Unreadable,
}

/// What of a saved project could not be read.
#[derive(Debug, Default)]
pub struct Unreadable {
    /// The samples whose records did not parse (their ids, from the records' keys).
    pub samples: Vec<u64>,
    /// The trained model's record did not parse.
    pub model: bool,
    /// The project's own record did not parse: a new one was made with its samples, this many.
    pub recovered: Option<usize>,
}

impl LoadedProject {
    /// The saved features by backbone id, then sample id.
    pub fn rows_by_backbone(&self) -> HashMap<String, HashMap<u64, Vec<f32>>> {
        let mut by_backbone: HashMap<String, HashMap<u64, Vec<f32>>> = HashMap::new();
        for (&id, rows) in &self.embeddings {
            for (backbone, row) in rows {
                by_backbone.entry(backbone.clone()).or_default().insert(id, row.clone());
            }
        }
        by_backbone
    }
}

pub struct Storage {
    db: Database,
    /// A newer version of the app asked for the database: this tab closed it.
    closed: Rc<Cell<bool>>,
}

const BLOCKED: &str = "Graft is open in another tab in an older version, which keeps the saved projects \
    locked: close that tab, then reload this one";
const CLOSED_FOR_UPDATE: &str =
    "a newer version of Graft opened in another tab, so this tab stopped saving: reload it to use the new version";

/// Creates the stores, and from version 1 seals every record (`records::upgrade_v1`) inside
/// the upgrade's transaction: if a write fails, the transaction aborts and version 1 stays.
fn upgrade(event: idb::event::VersionChangeEvent) {
    let Ok(db) = event.database() else { return };
    for store in [PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS] {
        if !db.store_names().iter().any(|s| s == store) {
            let _ = db.create_object_store(store, ObjectStoreParams::new());
        }
    }
    if event.old_version().unwrap_or(0) != 1 {
        return;
    }
    let Some(transaction) = event.target().ok().and_then(|request| request.transaction()) else { return };
    // The upgrade transaction stays open while this issues requests (IndexedDB requests and
    // the promise jobs between them only).
    wasm_bindgen_futures::spawn_local(async move {
        if seal_v1_records(&transaction).await.is_err() {
            let _ = transaction.abort();
        }
    });
}

async fn seal_v1_records(transaction: &Transaction) -> Result<(), String> {
    for name in [PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS] {
        let store = transaction.object_store(name).map_err(failed)?;
        let keys = store.get_all_keys(None, None).map_err(failed)?.await.map_err(failed)?;
        let values = store.get_all(None, None).map_err(failed)?.await.map_err(failed)?;
        for (key, value) in keys.iter().zip(&values) {
            if let Some(sealed) = upgrade_v1(value) {
                store.put(&sealed, Some(key)).map_err(failed)?;
            }
        }
    }
    Ok(())
}

fn failed(e: impl std::fmt::Display) -> String {
    format!("the browser's storage failed: {e}")
}

fn sample_key(project: &str, id: u64) -> String {
    format!("{project}:{id:020}")
}

/// The sample id in a [`sample_key`].
fn sample_id_of(key: &str) -> Option<u64> {
    key.rsplit(':').next()?.parse().ok()
}

pub fn backbone_id(key: &BackboneKey) -> String {
    format!("{}@{}", key.architecture.id(), key.weights_sha256)
}

/// Every key that starts with `prefix` (`;` follows `:` in code-unit order).
fn prefix_range(prefix: &str) -> Result<Query, String> {
    let upper = format!("{};", prefix.trim_end_matches(':'));
    KeyRange::bound(&prefix.into(), &upper.into(), None, Some(true)).map(Query::from).map_err(failed)
}

fn bytes(value: &[u8]) -> JsValue {
    Uint8Array::from(value).into()
}

fn json<T: Serialize>(value: &T) -> Result<JsValue, String> {
    serde_json::to_string(value).map(JsValue::from).map_err(failed)
}

fn from_json<T: for<'de> Deserialize<'de>>(value: &JsValue) -> Result<T, String> {
    let text = value.as_string().ok_or_else(|| failed("a record is not text"))?;
    serde_json::from_str(&text).map_err(failed)
}

/// A project record from its stored value.
fn project_from(value: &JsValue) -> Result<ProjectRecord, String> {
    from_json(&unseal(value, 1).map_err(failed)?[0])
}

/// Waits for a write transaction; an abort (a full disk, the quota) leaves what was saved
/// before as it was.
async fn commit(transaction: Transaction) -> Result<(), String> {
    match transaction.await {
        Ok(TransactionResult::Committed) => Ok(()),
        Ok(TransactionResult::Aborted) => Err(REFUSED.into()),
        Err(e) => Err(failed(e)),
    }
}

const REFUSED: &str =
    "the browser refused to save (its storage for this site may be full); what was saved before is intact";

/// Whether a write failed for want of space (an aborted write, or the quota): worth trying
/// again once there is room.
pub fn is_full(message: &str) -> bool {
    message == REFUSED || message.contains("QuotaExceeded")
}

impl Storage {
    pub async fn open() -> Result<Self, String> {
        use futures::FutureExt;
        let factory = Factory::new().map_err(failed)?;
        let mut request = factory.open(DATABASE, Some(VERSION)).map_err(failed)?;
        request.on_upgrade_needed(upgrade);
        let (blocked, is_blocked) = futures::channel::oneshot::channel::<()>();
        request.on_blocked(move |_| {
            let _ = blocked.send(());
        });
        let mut db = futures::select! {
            db = std::future::IntoFuture::into_future(request).fuse() => db.map_err(failed)?,
            _ = is_blocked.fuse() => return Err(BLOCKED.into()),
        };
        // A newer version of Graft opening the database in another tab: let it upgrade, and
        // write nothing more here (the writes say why).
        let closed = Rc::new(Cell::new(false));
        let closing = closed.clone();
        db.on_version_change(move |event| {
            closing.set(true);
            if let Some(target) = event.target() {
                let close =
                    Reflect::get(&target, &"close".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
                let _ = close.map(|close| close.call0(&target));
            }
        });
        Ok(Self { db, closed })
    }

    fn write(&self, stores: &[&str]) -> Result<Transaction, String> {
        if self.closed.get() {
            return Err(CLOSED_FOR_UPDATE.into());
        }
        self.db.transaction(stores, TransactionMode::ReadWrite).map_err(failed)
    }

    /// Every saved project's record, the most recently saved first, and the ids of those whose
    /// record does not parse (damaged: their samples may still be whole), in one read.
    pub async fn projects(&self) -> Result<(Vec<ProjectRecord>, Vec<String>), String> {
        let transaction = self.db.transaction(&[PROJECTS], TransactionMode::ReadOnly).map_err(failed)?;
        let store = transaction.object_store(PROJECTS).map_err(failed)?;
        let keys = store.get_all_keys(None, None).map_err(failed)?.await.map_err(failed)?;
        let values = store.get_all(None, None).map_err(failed)?.await.map_err(failed)?;
        let (mut records, mut damaged) = (Vec::new(), Vec::new());
        for (key, value) in keys.iter().zip(&values) {
            match project_from(value) {
                Ok(record) => records.push(record),
                Err(_) => damaged.extend(key.as_string()),
            }
        }
        records.sort_by(|a, b| b.modified.total_cmp(&a.modified));
        Ok((records, damaged))
    }

    /// The ids of every sample record of `project`, readable or not.
    pub async fn sample_ids(&self, project: &str) -> Result<Vec<u64>, String> {
        let transaction = self.db.transaction(&[SAMPLES], TransactionMode::ReadOnly).map_err(failed)?;
        let range = prefix_range(&format!("{project}:"))?;
        let keys = transaction.object_store(SAMPLES).map_err(failed)?.get_all_keys(Some(range), None);
        let keys = keys.map_err(failed)?.await.map_err(failed)?;
        Ok(keys.iter().filter_map(|key| key.as_string().as_deref().and_then(sample_id_of)).collect())
    }

    pub async fn load(&self, id: &str) -> Result<LoadedProject, String> {
        let stores = [PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS];
        let transaction = self.db.transaction(&stores, TransactionMode::ReadOnly).map_err(failed)?;
        let store = |name: &str| transaction.object_store(name).map_err(failed);
        let record = store(PROJECTS)?.get(JsValue::from(id)).map_err(failed)?.await.map_err(failed)?;
        let record = project_from(&record.ok_or_else(|| format!("project {id} is not saved"))?)?;
        let range = prefix_range(&format!("{id}:"))?;
        let sample_keys =
            store(SAMPLES)?.get_all_keys(Some(range.clone()), None).map_err(failed)?.await.map_err(failed)?;
        let samples = store(SAMPLES)?.get_all(Some(range.clone()), None).map_err(failed)?.await.map_err(failed)?;
        let embeddings = store(EMBEDDINGS)?.get_all(Some(range), None).map_err(failed)?.await.map_err(failed)?;
        let weights = store(WEIGHTS)?.get(JsValue::from(id)).map_err(failed)?.await.map_err(failed)?;
        let mut unreadable = Unreadable::default();
        let mut parsed = Vec::with_capacity(samples.len());
        // Both lists come in key order.
        for (key, value) in sample_keys.iter().zip(&samples) {
            match sample_from(value) {
                Ok(sample) => parsed.push(sample),
                Err(_) => unreadable.samples.extend(key.as_string().as_deref().and_then(sample_id_of)),
            }
        }
        let mut by_sample: HashMap<u64, Vec<(String, Vec<f32>)>> = HashMap::new();
        // A damaged embedding is left out: its image is embedded again.
        for parts in embeddings.iter().filter_map(|value| unseal(value, 3).ok()) {
            let (Some(backbone), Some(sample)) = (parts[0].as_string(), parts[1].as_f64()) else { continue };
            let Ok(row) = parts[2].clone().dyn_into::<Float32Array>() else { continue };
            by_sample.entry(sample as u64).or_default().push((backbone, row.to_vec()));
        }
        let head = weights.map(|value| head_from(&value)).transpose().unwrap_or_else(|_| {
            unreadable.model = true;
            None
        });
        Ok(LoadedProject { record, samples: parsed, embeddings: by_sample, head, unreadable })
    }

    pub async fn put_project(&self, record: &ProjectRecord) -> Result<(), String> {
        let transaction = self.write(&[PROJECTS])?;
        put_record_in(&transaction, record)?;
        commit(transaction).await
    }

    /// One sample and its embedding, in one transaction.
    pub async fn put_sample(
        &self,
        project: &str,
        id: u64,
        sample: &StoredSample,
        key: &BackboneKey,
        row: &[f32],
    ) -> Result<(), String> {
        let transaction = self.write(&[SAMPLES, EMBEDDINGS])?;
        self.put_sample_in(&transaction, project, id, sample, key, row)?;
        commit(transaction).await
    }

    /// Features of samples by backbone `key` (made when switching to it or ranking it), in one
    /// transaction.
    pub async fn put_embeddings(
        &self,
        project: &str,
        key: &BackboneKey,
        rows: &[(u64, Vec<f32>)],
    ) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let transaction = self.write(&[EMBEDDINGS])?;
        let store = transaction.object_store(EMBEDDINGS).map_err(failed)?;
        let backbone = backbone_id(key);
        for (id, row) in rows {
            let value = embedding_value(&backbone, *id, row);
            let embedding_key = format!("{}:{backbone}", sample_key(project, *id));
            store.put(&value, Some(&embedding_key.as_str().into())).map_err(failed)?;
        }
        commit(transaction).await
    }

    fn put_sample_in(
        &self,
        transaction: &Transaction,
        project: &str,
        id: u64,
        sample: &StoredSample,
        key: &BackboneKey,
        row: &[f32],
    ) -> Result<(), String> {
        let meta = SampleMeta {
            id,
            image: (sample.image.mime.clone(), sample.image.width, sample.image.height),
            thumbnail: (sample.thumbnail.mime.clone(), sample.thumbnail.width, sample.thumbnail.height),
        };
        let value = seal(&[json(&meta)?, bytes(&sample.image.bytes), bytes(&sample.thumbnail.bytes)]);
        let sample_key = sample_key(project, id);
        transaction
            .object_store(SAMPLES)
            .map_err(failed)?
            .put(&value, Some(&sample_key.as_str().into()))
            .map_err(failed)?;
        let backbone = backbone_id(key);
        let embedding = embedding_value(&backbone, id, row);
        let embedding_key = format!("{sample_key}:{backbone}");
        transaction
            .object_store(EMBEDDINGS)
            .map_err(failed)?
            .put(&embedding, Some(&embedding_key.as_str().into()))
            .map_err(failed)?;
        Ok(())
    }

    pub async fn delete_sample(&self, project: &str, id: u64) -> Result<(), String> {
        let transaction = self.write(&[SAMPLES, EMBEDDINGS])?;
        let key = sample_key(project, id);
        transaction.object_store(SAMPLES).map_err(failed)?.delete(JsValue::from(key.as_str())).map_err(failed)?;
        transaction
            .object_store(EMBEDDINGS)
            .map_err(failed)?
            .delete(prefix_range(&format!("{key}:"))?)
            .map_err(failed)?;
        commit(transaction).await
    }

    pub async fn put_head(&self, project: &str, head: &SavedHead) -> Result<(), String> {
        let transaction = self.write(&[WEIGHTS])?;
        put_head_in(&transaction, project, head)?;
        commit(transaction).await
    }

    pub async fn delete_project(&self, id: &str) -> Result<(), String> {
        let transaction = self.write(&[PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS])?;
        let range = prefix_range(&format!("{id}:"))?;
        for store in [SAMPLES, EMBEDDINGS] {
            transaction.object_store(store).map_err(failed)?.delete(range.clone()).map_err(failed)?;
        }
        for store in [PROJECTS, WEIGHTS] {
            transaction.object_store(store).map_err(failed)?.delete(JsValue::from(id)).map_err(failed)?;
        }
        commit(transaction).await
    }

    /// A whole project (an import) in one transaction: all of it is saved, or none.
    pub async fn put_all(
        &self,
        record: &ProjectRecord,
        samples: &[(u64, &StoredSample, &[f32])],
        key: &BackboneKey,
        head: Option<&SavedHead>,
    ) -> Result<(), String> {
        let transaction = self.write(&[PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS])?;
        for (id, sample, row) in samples {
            self.put_sample_in(&transaction, &record.id, *id, sample, key, row)?;
        }
        if let Some(head) = head {
            put_head_in(&transaction, &record.id, head)?;
        }
        put_record_in(&transaction, record)?;
        commit(transaction).await
    }
}

/// The project's record, without its head's weights (they have their own record).
fn put_record_in(transaction: &Transaction, record: &ProjectRecord) -> Result<(), String> {
    let bare = ProjectRecord { project: Project { head: None, ..record.project.clone() }, ..record.clone() };
    let store = transaction.object_store(PROJECTS).map_err(failed)?;
    store.put(&seal(&[json(&bare)?]), Some(&record.id.as_str().into())).map_err(failed)?;
    Ok(())
}

fn put_head_in(transaction: &Transaction, project: &str, head: &SavedHead) -> Result<(), String> {
    let meta = SavedHead { safetensors: Vec::new(), ..head.clone() };
    let value = seal(&[json(&meta)?, bytes(&head.safetensors)]);
    transaction.object_store(WEIGHTS).map_err(failed)?.put(&value, Some(&project.into())).map_err(failed)?;
    Ok(())
}

fn head_from(value: &JsValue) -> Result<SavedHead, String> {
    let parts = unseal(value, 2).map_err(failed)?;
    let mut head: SavedHead = from_json(&parts[0])?;
    head.safetensors = parts[1].dyn_ref::<Uint8Array>().ok_or_else(|| failed("weights are not bytes"))?.to_vec();
    Ok(head)
}

fn embedding_value(backbone: &str, id: u64, row: &[f32]) -> JsValue {
    seal(&[backbone.into(), (id as f64).into(), Float32Array::from(row).into()])
}

fn sample_from(value: &JsValue) -> Result<(u64, StoredSample), String> {
    let parts = unseal(value, 3).map_err(failed)?;
    let meta: SampleMeta = from_json(&parts[0])?;
    let image = |(mime, width, height): (String, u32, u32), at: usize| {
        let bytes = parts[at].dyn_ref::<Uint8Array>().ok_or_else(|| failed("an image is not bytes"))?.to_vec();
        Ok::<_, String>(StoredImage { mime, width, height, bytes })
    };
    Ok((meta.id, StoredSample { image: image(meta.image, 1)?, thumbnail: image(meta.thumbnail, 2)? }))
}

/// How much the browser stores for this site, and its quota, in bytes
/// (`navigator.storage.estimate()`, which workers have too).
pub async fn estimate() -> Option<(f64, f64)> {
    let get = |target: &JsValue, name: &str| js_sys::Reflect::get(target, &name.into()).ok();
    let storage = get(&get(&js_sys::global(), "navigator")?, "storage")?;
    let estimate: js_sys::Function = get(&storage, "estimate")?.dyn_into().ok()?;
    let promise: js_sys::Promise = estimate.call0(&storage).ok()?.dyn_into().ok()?;
    let result = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    Some((get(&result, "usage")?.as_f64()?, get(&result, "quota")?.as_f64()?))
}
