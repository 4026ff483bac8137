//! `graft predict --model FILE IMAGE...`: a model file (from `graft train --save` or the page's
//! "Export model") run natively on image files.

use std::path::{Path, PathBuf};

use candle_core::Device;
use graft::embed::block_on;
use graft::preprocess::decode_image;
use graft::train::ModelFile;
use graft::Result;
use serde::Serialize;

use crate::cli::BackboneArgs;
use crate::files::{load_extractor, read, select_backend};

#[derive(Serialize)]
struct Predicted {
    label: String,
    prob: f32,
}

#[derive(Serialize)]
struct FileResult {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    predictions: Option<Vec<Predicted>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Every class with its probability, most likely first.
fn ranked(classes: &[String], probs: &[f32]) -> Vec<Predicted> {
    let mut ranked: Vec<Predicted> =
        classes.iter().zip(probs).map(|(label, &prob)| Predicted { label: label.clone(), prob }).collect();
    ranked.sort_by(|a, b| b.prob.total_cmp(&a.prob));
    ranked
}

/// Predicts each image with the backbone the model was trained on (or the one asked for, which
/// must be that one); `false` when any of them failed.
pub fn predict(model: &Path, images: &[PathBuf], json: bool, backbone: &BackboneArgs) -> Result<bool> {
    let file = ModelFile::parse(&model.display().to_string(), read(model)?)?;
    let architecture = backbone.backbone.unwrap_or(file.meta.backbone.architecture);
    let extractor = load_extractor(&backbone.model_dir, architecture)?;
    let head = file.restore(extractor.key(), extractor.backbone(), &Device::Cpu)?;
    select_backend(&extractor, backbone.backend);
    let mut results = Vec::with_capacity(images.len());
    for path in images {
        let name = path.display().to_string();
        let outcome = read(path).and_then(|bytes| decode_image(&name, &bytes)).and_then(|image| {
            let probs = block_on(head.predict_images(&extractor, &[image]))?;
            Ok(probs.squeeze(0)?.to_vec1::<f32>()?)
        });
        results.push(match outcome {
            Ok(probs) => FileResult { file: name, predictions: Some(ranked(&file.meta.classes, &probs)), error: None },
            Err(e) => FileResult { file: name, predictions: None, error: Some(e.to_string()) },
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results).unwrap_or_default());
    } else {
        for result in &results {
            let Some(predictions) = &result.predictions else { continue };
            println!("{}", result.file);
            for p in predictions.iter().take(5) {
                println!("  {:>6.2}%  {}", p.prob * 100.0, p.label);
            }
        }
    }
    for failed in results.iter().filter_map(|r| r.error.as_ref()) {
        eprintln!("graft: {failed}");
    }
    Ok(results.iter().all(|r| r.error.is_none()))
}
