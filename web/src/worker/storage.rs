//! Autosave: IndexedDB, from the worker (the `idb` crate finds it on the worker's global).
//!
//! Database `graft`, version 1, four object stores, all with string keys:
//!
//! | store | key | value |
//! |---|---|---|
//! | `projects` | project id | JSON [`ProjectRecord`] (classes, settings, curves; no weights) |
//! | `samples` | `{project}:{sample id, 20 digits}` | `[JSON SampleMeta, image bytes, thumbnail bytes]` |
//! | `embeddings` | `{project}:{sample id}:{backbone}@{sha256}` | `[sample id, Float32Array]` |
//! | `weights` | project id | `[JSON SavedHead without its bytes, safetensors bytes]` |
//!
//! One record per sample and per weights file, so that no single value grows with the project.
//! Every write is one short transaction issued after the computation is done: nothing but
//! IndexedDB requests is awaited while a transaction is open. A project's records share the
//! key prefix `{project}:`, so one key range finds or deletes them all.

use std::collections::HashMap;

use graft::backbone::BackboneKey;
use graft::preprocess::StoredImage;
use graft::project::Project;
use graft::train::SavedHead;
use idb::{
    Database, DatabaseEvent, Factory, KeyRange, ObjectStoreParams, Query, Transaction, TransactionMode,
    TransactionResult,
};
use js_sys::{Array, Float32Array, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use super::samples::StoredSample;
use crate::protocol::ProjectSummary;

const DATABASE: &str = "graft";
const VERSION: u32 = 1;
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
        ProjectSummary { id: self.id.clone(), name: self.name.clone(), modified: self.modified, samples }
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

/// Waits for a write transaction; an abort (a full disk, the quota) leaves what was saved
/// before as it was.
async fn commit(transaction: Transaction) -> Result<(), String> {
    match transaction.await {
        Ok(TransactionResult::Committed) => Ok(()),
        Ok(TransactionResult::Aborted) => {
            Err("the browser refused to save (its storage for this site may be full); what was saved before is intact"
                .into())
        }
        Err(e) => Err(failed(e)),
    }
}

impl Storage {
    pub async fn open() -> Result<Self, String> {
        let factory = Factory::new().map_err(failed)?;
        let mut request = factory.open(DATABASE, Some(VERSION)).map_err(failed)?;
        request.on_upgrade_needed(|event| {
            let Ok(db) = event.database() else { return };
            for store in [PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS] {
                if !db.store_names().iter().any(|s| s == store) {
                    let _ = db.create_object_store(store, ObjectStoreParams::new());
                }
            }
        });
        Ok(Self { db: request.await.map_err(failed)? })
    }

    fn write(&self, stores: &[&str]) -> Result<Transaction, String> {
        self.db.transaction(stores, TransactionMode::ReadWrite).map_err(failed)
    }

    /// Every saved project's record, the most recently saved first.
    pub async fn projects(&self) -> Result<Vec<ProjectRecord>, String> {
        let transaction = self.db.transaction(&[PROJECTS], TransactionMode::ReadOnly).map_err(failed)?;
        let values = transaction
            .object_store(PROJECTS)
            .map_err(failed)?
            .get_all(None, None)
            .map_err(failed)?
            .await
            .map_err(failed)?;
        let mut records: Vec<ProjectRecord> = values.iter().filter_map(|v| from_json(v).ok()).collect();
        records.sort_by(|a, b| b.modified.total_cmp(&a.modified));
        Ok(records)
    }

    pub async fn load(&self, id: &str) -> Result<LoadedProject, String> {
        let stores = [PROJECTS, SAMPLES, EMBEDDINGS, WEIGHTS];
        let transaction = self.db.transaction(&stores, TransactionMode::ReadOnly).map_err(failed)?;
        let store = |name: &str| transaction.object_store(name).map_err(failed);
        let record = store(PROJECTS)?.get(JsValue::from(id)).map_err(failed)?.await.map_err(failed)?;
        let record: ProjectRecord = from_json(&record.ok_or_else(|| format!("project {id} is not saved"))?)?;
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
        for value in &embeddings {
            let parts = Array::from(value);
            let (Some(backbone), Some(sample)) = (parts.get(0).as_string(), parts.get(1).as_f64()) else { continue };
            let row = parts.get(2).dyn_into::<Float32Array>().map(|a| a.to_vec()).unwrap_or_default();
            by_sample.entry(sample as u64).or_default().push((backbone, row));
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
            let value =
                Array::of3(&backbone.as_str().into(), &(*id as f64).into(), &Float32Array::from(row.as_slice()).into());
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
        let value = Array::of3(&json(&meta)?, &bytes(&sample.image.bytes), &bytes(&sample.thumbnail.bytes));
        let sample_key = sample_key(project, id);
        transaction
            .object_store(SAMPLES)
            .map_err(failed)?
            .put(&value, Some(&sample_key.as_str().into()))
            .map_err(failed)?;
        let backbone = backbone_id(key);
        let embedding = Array::of3(&backbone.as_str().into(), &(id as f64).into(), &Float32Array::from(row).into());
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
    store.put(&json(&bare)?, Some(&record.id.as_str().into())).map_err(failed)?;
    Ok(())
}

fn put_head_in(transaction: &Transaction, project: &str, head: &SavedHead) -> Result<(), String> {
    let meta = SavedHead { safetensors: Vec::new(), ..head.clone() };
    let value = Array::of2(&json(&meta)?, &bytes(&head.safetensors));
    transaction.object_store(WEIGHTS).map_err(failed)?.put(&value, Some(&project.into())).map_err(failed)?;
    Ok(())
}

fn head_from(value: &JsValue) -> Result<SavedHead, String> {
    let parts = Array::from(value);
    let mut head: SavedHead = from_json(&parts.get(0))?;
    head.safetensors = Uint8Array::new(&parts.get(1)).to_vec();
    Ok(head)
}

fn sample_from(value: &JsValue) -> Result<(u64, StoredSample), String> {
    let parts = Array::from(value);
    let meta: SampleMeta = from_json(&parts.get(0))?;
    let image = |(mime, width, height): (String, u32, u32), at: u32| StoredImage {
        mime,
        width,
        height,
        bytes: Uint8Array::new(&parts.get(at)).to_vec(),
    };
    Ok((meta.id, StoredSample { image: image(meta.image, 1), thumbnail: image(meta.thumbnail, 2) }))
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
