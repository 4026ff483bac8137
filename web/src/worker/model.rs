//! The loaded model: the backbone (any architecture the manifest names) and, when the manifest
//! has one, its pretrained classifier with labels.

use candle_core::Device;
use futures::{SinkExt, StreamExt};
use graft::classify::PretrainedHead;
use graft::embed::FeatureExtractor;
use graft::manifest::ModelManifest;

use crate::fetch::{fetch_bytes, fetch_text};
use crate::protocol::FromWorker;
use graft::message::UserMessage;

pub struct Model {
    pub name: String,
    pub extractor: FeatureExtractor,
    pub pretrained: Option<PretrainedHead>,
}

/// Resolves `file` against the folder of `manifest_url`.
fn sibling_url(manifest_url: &str, file: &str) -> String {
    match manifest_url.rfind('/') {
        Some(slash) => format!("{}{file}", &manifest_url[..=slash]),
        None => file.to_string(),
    }
}

/// Fetches the manifest, the weights (sending `LoadProgress` through `progress`) and the
/// labels, and builds the model.
pub async fn load_model(
    manifest_url: &str,
    progress: &mut (impl futures::Sink<FromWorker> + Unpin),
) -> Result<Model, UserMessage> {
    let manifest = ModelManifest::from_json(&fetch_text(manifest_url).await?).map_err(UserMessage::from)?;
    let labels = match &manifest.classifier {
        Some(classifier) => Some(fetch_text(&sibling_url(manifest_url, &classifier.labels)).await?),
        None => None,
    };
    let weights_url = sibling_url(manifest_url, &manifest.weights);
    // The download queues progress; a second future sends it on meanwhile, one message at a
    // time (not `StreamExt::forward`, which closes the sink when the stream ends).
    let (progress_tx, mut progress_rx) = futures::channel::mpsc::unbounded();
    let download = fetch_bytes(&weights_url, manifest.weights_bytes, move |loaded, total| {
        let _ = progress_tx.unbounded_send(FromWorker::LoadProgress { loaded_bytes: loaded, total_bytes: total });
    });
    let forward = async {
        while let Some(message) = progress_rx.next().await {
            let _ = progress.send(message).await;
        }
    };
    let (weights, _) = futures::join!(download, forward);
    let vb = manifest.open_weights(weights?, &Device::Cpu).map_err(UserMessage::from)?;
    let extractor = FeatureExtractor::new(&manifest, &vb, &Device::Cpu).map_err(UserMessage::from)?;
    let pretrained = match labels {
        Some(labels) => PretrainedHead::load(&manifest, &vb, &labels).map_err(UserMessage::from)?,
        None => None,
    };
    Ok(Model { name: manifest.display_name, extractor, pretrained })
}
