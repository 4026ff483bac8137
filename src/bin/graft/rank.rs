//! `graft rank DIR`: which backbone's features suit the labelled images of DIR best, by LogME,
//! without training.

use std::path::{Path, PathBuf};
use std::time::Instant;

use graft::backbone::Architecture;
use graft::train::TrainConfig;
use graft::transfer::logme;
use graft::{GraftError, Result};
use serde::Serialize;

use crate::cli::BackboneArgs;
use crate::files::{is_available, load_extractor, select_backend};
use crate::train::{list_classes, prepare_inputs, Prepared};

#[derive(Serialize)]
struct Ranked {
    backbone: String,
    logme: f64,
    images: usize,
    /// Embedding and scoring, together.
    seconds: f64,
}

/// Scores the backbone asked for, else every one in the model folder, on DIR/<class>/<image>,
/// best first.
pub fn rank(dir: &Path, json: bool, backbone: &BackboneArgs) -> Result<()> {
    let classes = list_classes(dir)?;
    let architectures: Vec<Architecture> = match backbone.backbone {
        Some(architecture) => vec![architecture],
        None => Architecture::ALL.into_iter().filter(|&a| is_available(&backbone.model_dir, a)).collect(),
    };
    if architectures.is_empty() {
        let folder = backbone.model_dir.display();
        return Err(GraftError::Manifest(format!("{folder} holds no backbone: run `cargo xtask setup` first")));
    }
    let mut ranked = Vec::with_capacity(architectures.len());
    for architecture in architectures {
        ranked.push(score(dir, &classes, architecture, backbone)?);
    }
    ranked.sort_by(|a, b| b.logme.total_cmp(&a.logme));
    if json {
        println!("{}", serde_json::to_string(&ranked).unwrap_or_default());
    } else {
        for r in &ranked {
            println!("{:<24} LogME {:>8.4}  ({} images, {:.1} s)", r.backbone, r.logme, r.images, r.seconds);
        }
    }
    Ok(())
}

/// One backbone's LogME on the images of DIR, timed from loading it to the score.
fn score(
    dir: &Path,
    classes: &[(String, Vec<PathBuf>)],
    architecture: Architecture,
    backbone: &BackboneArgs,
) -> Result<Ranked> {
    let started = Instant::now();
    let extractor = load_extractor(&backbone.model_dir, architecture)?;
    select_backend(&extractor, backbone.backend);
    let Prepared { data, .. } = prepare_inputs(&extractor, dir, classes, &TrainConfig::default(), false)?;
    let (rows, dim) = data.inputs.dims2()?;
    let features: Vec<f32> = data.inputs.flatten_all()?.to_vec1()?;
    let score = logme(&features, dim, &data.labels, classes.len())?;
    Ok(Ranked {
        backbone: architecture.id().to_string(),
        logme: score,
        images: rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}
