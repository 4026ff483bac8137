//! The model worker: owns the engine, loads the model, classifies images. Runs in a Web
//! Worker (`graft-worker` binary), so the page never computes.

use futures::{SinkExt, StreamExt};
use graft::classify::ImageNetClassifier;
use graft::manifest::ModelManifest;
use graft::preprocess::decode_image;
use yew_agent::prelude::*;

use crate::fetch::{fetch_bytes, fetch_text};
use crate::protocol::{FromWorker, ToWorker};

/// What the page shows as the compute backend.
pub const CPU_BACKEND: &str = "CPU · WebAssembly SIMD128";

fn now_millis() -> f64 {
    js_sys::Date::now()
}

/// Resolves `file` against the folder of `manifest_url`.
fn sibling_url(manifest_url: &str, file: &str) -> String {
    match manifest_url.rfind('/') {
        Some(slash) => format!("{}{file}", &manifest_url[..=slash]),
        None => file.to_string(),
    }
}

#[reactor(GraftWorker)]
pub async fn graft_worker(mut scope: ReactorScope<ToWorker, FromWorker>) {
    let mut classifier: Option<ImageNetClassifier> = None;
    while let Some(message) = scope.next().await {
        let reply = match message {
            ToWorker::LoadModel { manifest_url } => {
                let started = now_millis();
                match load_model(&manifest_url, &mut scope).await {
                    Ok((model, name)) => {
                        classifier = Some(model);
                        FromWorker::ModelReady {
                            model_name: name,
                            backend: CPU_BACKEND.to_string(),
                            load_millis: now_millis() - started,
                        }
                    }
                    Err(message) => FromWorker::LoadFailed { message },
                }
            }
            ToWorker::Classify {
                request_id,
                file_name,
                bytes,
            } => classify(classifier.as_ref(), request_id, file_name, &bytes),
        };
        if scope.send(reply).await.is_err() {
            break;
        }
    }
}

async fn load_model(
    manifest_url: &str,
    scope: &mut ReactorScope<ToWorker, FromWorker>,
) -> Result<(ImageNetClassifier, String), String> {
    let manifest = ModelManifest::from_json(&fetch_text(manifest_url).await?).map_err(|e| e.to_string())?;
    let labels = fetch_text(&sibling_url(manifest_url, &manifest.labels)).await?;
    let weights_url = sibling_url(manifest_url, &manifest.weights);
    // The download queues progress; a second task forwards it to the page meanwhile.
    let (progress_tx, mut progress_rx) = futures::channel::mpsc::unbounded();
    let download = fetch_bytes(&weights_url, manifest.weights_bytes, move |loaded, total| {
        let _ = progress_tx.unbounded_send(FromWorker::LoadProgress {
            loaded_bytes: loaded,
            total_bytes: total,
        });
    });
    let forward = async {
        while let Some(progress) = progress_rx.next().await {
            let _ = scope.send(progress).await;
        }
    };
    let (weights, ()) = futures::join!(download, forward);
    let classifier = ImageNetClassifier::load(&manifest, weights?, &labels, &candle_core::Device::Cpu)
        .map_err(|e| e.to_string())?;
    Ok((classifier, manifest.display_name))
}

fn classify(
    classifier: Option<&ImageNetClassifier>,
    request_id: u64,
    file_name: String,
    bytes: &[u8],
) -> FromWorker {
    let Some(classifier) = classifier else {
        return FromWorker::ClassifyFailed {
            request_id,
            file_name,
            message: "the model is not loaded yet".into(),
        };
    };
    let started = now_millis();
    let outcome = decode_image(&file_name, bytes).and_then(|image| classifier.top_k(&[image], 5));
    match outcome {
        Ok(mut top) => FromWorker::Classified {
            request_id,
            file_name,
            top5: top.pop().unwrap_or_default(),
            millis: now_millis() - started,
        },
        Err(e) => FromWorker::ClassifyFailed {
            request_id,
            file_name,
            message: e.to_string(),
        },
    }
}
