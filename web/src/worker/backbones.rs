//! More than one backbone: which ones the site serves, switching the loaded one (a model used
//! before stays loaded as a spare), and ranking them all on the project's labelled samples by
//! LogME without training.
//!
//! Every backbone's manifest sits beside the first one loaded (`models/<id>.json`).

use std::collections::HashMap;

use futures::{Sink, SinkExt};
use graft::backbone::{Architecture, BackboneKey};
use graft::gpu::BackendChoice;
use graft::manifest::{manifest_file, ModelManifest};
use graft::preprocess::{decode_image, StoredImage};
use graft::transfer::logme;

use super::core::WorkerCore;
use super::model::{load_model, Model};
use super::now_millis;
use super::storage::backbone_id;
use crate::fetch::fetch_text;
use crate::protocol::{BackboneOption, BackboneScore, ClassSamples, FromWorker};
use graft::message::UserMessage;

/// Stored images embedded at a time when a backbone needs features it has not made yet.
const EMBED_BATCH: usize = 8;

/// The manifest of `architecture` beside `manifest_url`.
pub fn manifest_url_of(manifest_url: &str, architecture: Architecture) -> String {
    let folder = manifest_url.rfind('/').map_or("", |slash| &manifest_url[..=slash]);
    format!("{folder}{}", manifest_file(architecture))
}

/// Every backbone whose manifest the site serves, with its download size and ImageNet top-1.
pub async fn list_backbones(manifest_url: &str) -> FromWorker {
    let mut options = Vec::new();
    for architecture in Architecture::ALL {
        let Ok(text) = fetch_text(&manifest_url_of(manifest_url, architecture)).await else { continue };
        let Ok(manifest) = ModelManifest::from_json(&text) else { continue };
        options.push(BackboneOption {
            architecture,
            name: architecture.display_name().to_string(),
            weights_bytes: manifest.weights_bytes,
            imagenet_top1: architecture.imagenet_top1(),
        });
    }
    FromWorker::BackbonesListed { options }
}

/// Makes `architecture` the loaded backbone (on `backend`): a spare if it was loaded before,
/// else fetched (`LoadProgress` through `progress`). `Ok(Some(ModelReady))` when it changed.
pub async fn use_backbone(
    core: &mut WorkerCore,
    architecture: Architecture,
    backend: BackendChoice,
    manifest_url: &str,
    progress: &mut (impl Sink<FromWorker> + Unpin),
) -> Result<Option<FromWorker>, UserMessage> {
    if core.architecture() == Some(architecture) {
        return Ok(None);
    }
    let started = now_millis();
    let model = match core.take_spare(architecture) {
        Some(model) => model,
        None => load_model(&manifest_url_of(manifest_url, architecture), progress).await?,
    };
    Ok(Some(core.set_model(model, backend, now_millis() - started).await))
}

/// A backbone's model for ranking: the loaded one, a spare, or fetched and kept as a spare.
async fn model_for_ranking(
    core: &mut WorkerCore,
    architecture: Architecture,
    backend: BackendChoice,
    manifest_url: &str,
    progress: &mut (impl Sink<FromWorker> + Unpin),
) -> Result<(), UserMessage> {
    if core.model_of(architecture).is_none() {
        let model = load_model(&manifest_url_of(manifest_url, architecture), progress).await?;
        let _ = model.extractor.select_backend(backend).await;
        core.keep_spare(model);
    }
    Ok(())
}

/// Features of `ids` by `model`: those in `known` (kept or saved before), the others embedded
/// from their stored `images`, with `Reembedding` progress. Returns the rows in the order of
/// `ids`, and those it computed (to be saved).
pub async fn features_of(
    model: &Model,
    ids: &[u64],
    known: &HashMap<u64, Vec<f32>>,
    images: &HashMap<u64, &StoredImage>,
    progress: &mut (impl Sink<FromWorker> + Unpin),
) -> Result<(Vec<Vec<f32>>, Vec<(u64, Vec<f32>)>), UserMessage> {
    let dim = model.extractor.feature_dim();
    let usable = |id: &u64| known.get(id).filter(|row| row.len() == dim);
    let missing: Vec<u64> = ids.iter().copied().filter(|id| usable(id).is_none()).collect();
    let mut computed = Vec::with_capacity(missing.len());
    for chunk in missing.chunks(EMBED_BATCH) {
        let decoded = chunk
            .iter()
            .map(|id| {
                let stored =
                    images.get(id).ok_or_else(|| UserMessage::verbatim("a sample's stored image is missing"))?;
                decode_image("stored sample", &stored.bytes).map_err(UserMessage::from)
            })
            .collect::<Result<Vec<_>, UserMessage>>()?;
        let features = model.extractor.embed(&decoded).await.map_err(UserMessage::from)?;
        let rows: Vec<Vec<f32>> = features.to_vec2().map_err(UserMessage::from)?;
        computed.extend(chunk.iter().copied().zip(rows));
        let _ = progress.send(FromWorker::Reembedding { done: computed.len(), total: missing.len() }).await;
    }
    let fresh: HashMap<u64, &Vec<f32>> = computed.iter().map(|(id, row)| (*id, row)).collect();
    let rows = ids
        .iter()
        .map(|id| usable(id).or_else(|| fresh.get(id).copied()).cloned())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| UserMessage::verbatim("a sample has no features"))?;
    Ok((rows, computed))
}

/// The labelled samples of `classes` that the worker holds: ids and class indices.
fn labelled(core: &WorkerCore, classes: &[ClassSamples]) -> (Vec<u64>, Vec<usize>) {
    let pairs =
        classes.iter().enumerate().flat_map(|(label, class)| class.sample_ids.iter().map(move |&id| (id, label)));
    pairs.filter(|(id, _)| core.samples().sample(*id).is_some()).unzip()
}

/// Every available backbone's LogME on the labelled samples, best first, and the features
/// each one had to compute (to be saved, so that switching to it later needs no embedding).
pub async fn rank(
    core: &mut WorkerCore,
    options: &[Architecture],
    classes: &[ClassSamples],
    (backend, manifest_url): (BackendChoice, &str),
    saved: &HashMap<String, HashMap<u64, Vec<f32>>>,
    progress: &mut (impl Sink<FromWorker> + Unpin),
) -> Result<(Vec<BackboneScore>, Vec<(BackboneKey, Vec<(u64, Vec<f32>)>)>), UserMessage> {
    let (ids, labels) = labelled(core, classes);
    if classes.len() < 2 || ids.len() < 2 {
        return Err(UserMessage::new("rank-needs-two-classes"));
    }
    let mut scores = Vec::with_capacity(options.len());
    let mut computed_rows = Vec::new();
    for &architecture in options {
        let started = now_millis();
        model_for_ranking(core, architecture, backend, manifest_url, progress).await?;
        let model = core.model_of(architecture).ok_or_else(|| UserMessage::new("backbone-not-loaded"))?;
        let key = model.extractor.key();
        let mut known = saved.get(&backbone_id(key)).cloned().unwrap_or_default();
        known.extend(ids.iter().filter_map(|&id| Some((id, core.samples().embedding(key, id)?.to_vec()))));
        let images = ids.iter().filter_map(|&id| Some((id, core.samples().image(id)?))).collect();
        let (rows, computed) = features_of(model, &ids, &known, &images, progress).await?;
        let dim = model.extractor.feature_dim();
        let flat: Vec<f32> = rows.concat();
        let score = logme(&flat, dim, &labels, classes.len()).map_err(UserMessage::from)?;
        computed_rows.push((model.extractor.key().clone(), computed));
        scores.push(BackboneScore { architecture, logme: score, images: ids.len(), millis: now_millis() - started });
    }
    scores.sort_by(|a, b| b.logme.total_cmp(&a.logme));
    Ok((scores, computed_rows))
}
