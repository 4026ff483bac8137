//! `graft rank DIR`: which backbone's features suit the labelled images of DIR best, by LogME,
//! without training.

use std::path::Path;
use std::time::Instant;

use graft::gpu::BackendChoice;
use graft::train::TrainConfig;
use graft::transfer::logme;
use graft::Result;
use serde::Serialize;

use crate::files::{load_extractor, select_backend};
use crate::train::{list_classes, prepare_inputs, Prepared};

#[derive(Serialize)]
struct Ranked {
    backbone: String,
    logme: f64,
    images: usize,
    /// Embedding and scoring, together.
    seconds: f64,
}

/// Scores every available backbone on DIR/<class>/<image>, best first.
pub fn rank(dir: &Path, json: bool, backend: BackendChoice, model_dir: &Path) -> Result<()> {
    let classes = list_classes(dir)?;
    let started = Instant::now();
    let extractor = load_extractor(model_dir)?;
    select_backend(&extractor, backend);
    let Prepared { data, .. } = prepare_inputs(&extractor, dir, &classes, &TrainConfig::default(), false)?;
    let (rows, dim) = data.inputs.dims2()?;
    let features: Vec<f32> = data.inputs.flatten_all()?.to_vec1()?;
    let score = logme(&features, dim, &data.labels, classes.len())?;
    let ranked = vec![Ranked {
        backbone: extractor.key().architecture.id().to_string(),
        logme: score,
        images: rows,
        seconds: started.elapsed().as_secs_f64(),
    }];
    if json {
        println!("{}", serde_json::to_string(&ranked).unwrap_or_default());
    } else {
        for r in &ranked {
            println!("{:<24} LogME {:>8.4}  ({} images, {:.1} s)", r.backbone, r.logme, r.images, r.seconds);
        }
    }
    Ok(())
}
