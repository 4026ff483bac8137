//! `graft train DIR`: the ImageFolder convention (DIR/<class>/<image>), embeddings from the
//! frozen backbone, then the same head training the browser worker runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use graft::embed::block_on;
use graft::embed::FeatureExtractor;
use graft::exec::Executor;
use graft::preprocess::{baseline_pixels, decode_image};
use graft::train::{EpochMetrics, InputBuilder, ModelFile, TrainConfig, TrainData, Trainer};
use graft::transfer::{baseline_accuracy, transfer_helps};
use graft::{GraftError, Result};
use serde_json::json;

use crate::adapt::{target_accuracy, target_inputs};
use crate::cli::BackboneArgs;
use crate::files::{load_extractor, read, select_backend};

/// Where `graft train` writes.
pub struct Output<'a> {
    /// JSON lines instead of text.
    pub json: bool,
    /// The model file to write (`graft predict --model` runs it).
    pub save: Option<&'a Path>,
    /// Unlabelled target images to adapt to, and labelled ones to score the result on.
    pub target: Option<&'a Path>,
    pub target_test: Option<&'a Path>,
}

/// Images are embedded this many at a time.
const EMBED_BATCH: usize = 16;

fn io_error(path: &Path, source: std::io::Error) -> GraftError {
    GraftError::Io { path: path.to_owned(), source }
}

/// Sorted subfolders (classes) and, in each, its sorted files.
pub(crate) fn list_classes(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        if !path.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| io_error(&path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        classes.push((name, files));
    }
    classes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(classes)
}

/// Decodes every class's images and runs the frozen part of the backbone on them (and their
/// augmented views), a batch at a time; the inputs of the run, and how many files were skipped.
/// The images of DIR: the backbone's inputs for training, the number of files skipped, and,
/// when asked for, each image's raw pixels for the no-transfer baseline (`baseline_pixels`,
/// row by row; empty otherwise).
pub(crate) struct Prepared {
    pub data: TrainData,
    pub skipped: usize,
    pub pixels: Vec<f32>,
}

pub(crate) fn prepare_inputs(
    extractor: &FeatureExtractor,
    dir: &Path,
    classes: &[(String, Vec<PathBuf>)],
    config: &TrainConfig,
    with_baseline: bool,
) -> Result<Prepared> {
    let files = classes.iter().map(|(_, files)| files.len()).sum();
    let mut builder = InputBuilder::new(config, extractor.backbone().num_blocks(), files);
    let (mut skipped, mut images, mut labels, mut pixels) = (0usize, Vec::new(), Vec::new(), Vec::new());
    for (label, (_, files)) in classes.iter().enumerate() {
        for file in files {
            match read(file).and_then(|bytes| decode_image(&file.display().to_string(), &bytes)) {
                Ok(image) => {
                    if with_baseline {
                        pixels.extend(baseline_pixels(&image));
                    }
                    images.push(image);
                    labels.push(label);
                }
                Err(e) => {
                    eprintln!("graft: skipped: {e}");
                    skipped += 1;
                }
            }
            if images.len() == EMBED_BATCH {
                block_on(builder.add(extractor, &images, &labels))?;
                (images, labels) = (Vec::new(), Vec::new());
            }
        }
    }
    block_on(builder.add(extractor, &images, &labels))?;
    if builder.is_empty() {
        return Err(GraftError::Training(format!("no images found under {}", dir.display())));
    }
    let class_names = classes.iter().map(|(name, _)| name.clone()).collect();
    Ok(Prepared { data: builder.finish(class_names, extractor.device())?, skipped, pixels })
}

/// The trainer of a run: the head on features, or with unfrozen blocks; on the GPU when the
/// backbone runs there and its kernels cover the run (else the reason is printed).
fn new_trainer(extractor: &FeatureExtractor, data: TrainData, config: TrainConfig) -> Result<Trainer> {
    let mut trainer = Trainer::fine_tuning(data, config, extractor.backbone())?;
    if let Some(gpu) = extractor.executor().gpu() {
        if let Err(e) = block_on(trainer.use_gpu(gpu.context().clone())) {
            eprintln!("graft: training on the CPU: {e}");
        }
    }
    Ok(trainer)
}

fn print_epoch(epoch: &EpochMetrics, learning_rates: &[f64], seconds: f64, json: bool) {
    let stage = epoch.stage.name();
    if json {
        let line = json!({
            "epoch": epoch.epoch,
            "stage": stage,
            "learning_rates": learning_rates,
            "seconds": seconds,
            "train_loss": epoch.train_loss,
            "train_accuracy": epoch.train_accuracy,
            "val_loss": epoch.val_loss,
            "val_accuracy": epoch.val_accuracy,
            "domain_accuracy": epoch.domain_accuracy,
        });
        println!("{line}");
    } else {
        println!(
            "epoch {:>3}  {stage:<9}  train loss {:.4} acc {:.3}  val loss {} acc {}{}  {seconds:.1} s",
            epoch.epoch,
            epoch.train_loss,
            epoch.train_accuracy,
            epoch.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            epoch.val_accuracy.map_or("-".into(), |v| format!("{v:.3}")),
            epoch.domain_accuracy.map_or(String::new(), |d| format!("  domain acc {d:.3}")),
        );
    }
}

pub fn train(dir: &Path, config: TrainConfig, backbone: &BackboneArgs, output: Output) -> Result<()> {
    let Output { json, save, target, target_test } = output;
    let extractor = load_extractor(&backbone.model_dir, backbone.architecture())?;
    config.validate_for(extractor.backbone().num_blocks())?;
    select_backend(&extractor, backbone.backend);
    let classes = list_classes(dir)?;
    let class_names: Vec<String> = classes.iter().map(|(name, _)| name.clone()).collect();

    let embed_started = Instant::now();
    let Prepared { mut data, skipped, pixels } = prepare_inputs(&extractor, dir, &classes, &config, true)?;
    if let Some(target) = target {
        data.target = Some(target_inputs(&extractor, target, &config)?);
    }
    let target_images = data.target.as_ref().map(|t| t.dim(0)).transpose()?;
    let baseline_started = Instant::now();
    let baseline = block_on(baseline_accuracy(pixels, data.labels.clone(), data.class_names.clone(), &config))?;
    let baseline_seconds = baseline_started.elapsed().as_secs_f64();
    let embed_seconds = embed_started.elapsed().as_secs_f64();
    let (images, cache_bytes, views) = (data.labels.len(), data.cache_bytes(), data.views.len());

    let train_started = Instant::now();
    let unfreeze = config.unfreeze;
    let mut trainer = new_trainer(&extractor, data, config)?;
    let mut diverged = None;
    while !trainer.is_done() {
        let epoch_started = Instant::now();
        match block_on(trainer.run_epoch()) {
            Ok(epoch) => print_epoch(&epoch, &trainer.learning_rates(), epoch_started.elapsed().as_secs_f64(), json),
            Err(e @ GraftError::Diverged { .. }) => {
                eprintln!("graft: {e}; keeping the best weights so far");
                diverged = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let training_backend = trainer.device_description();
    let trained = block_on(trainer.finish())?;
    let train_seconds = train_started.elapsed().as_secs_f64();
    let report = &trained.report;
    if let Some(path) = save {
        let bytes = ModelFile::write(&trained, extractor.backbone(), extractor.key(), &class_names)?;
        std::fs::write(path, bytes).map_err(|e| io_error(path, e))?;
    }
    let target_scored = match target_test {
        Some(dir) => Some(target_accuracy(&trained, &extractor, dir, &class_names)?),
        None => None,
    };
    let per_class: serde_json::Map<String, serde_json::Value> =
        class_names.iter().zip(&report.per_class_accuracy).map(|(name, acc)| (name.clone(), json!(acc))).collect();
    let summary = json!({
        "final": true,
        "val_accuracy": report.val_accuracy,
        "baseline_accuracy": baseline,
        "transfer_helps": transfer_helps(report.val_accuracy, baseline),
        "target_images": target_images,
        "target_accuracy": target_scored.map(|(accuracy, _)| accuracy),
        "target_test_images": target_scored.map(|(_, images)| images),
        "kept": if report.kept_final { "final" } else { "best validation loss" },
        "baseline_seconds": baseline_seconds,
        "per_class_accuracy": per_class,
        "confusion": report.confusion.counts,
        "classes": class_names,
        "images": images,
        "skipped": skipped,
        "train_images": report.train_samples,
        "val_images": report.val_samples,
        "best_epoch": report.best_epoch,
        "unfreeze": unfreeze,
        "augmented_views": views,
        "cache_bytes": cache_bytes,
        "diverged": diverged,
        "embed_seconds": embed_seconds,
        "backend": {
            "embedding": extractor.executor().describe(),
            "training": training_backend,
        },
        "train_seconds": train_seconds,
    });
    if json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    }
    if !transfer_helps(report.val_accuracy, baseline) {
        eprintln!(
            "graft: transfer is not helping here: the same head on the raw pixels reached {:.1}%, the transferred \
             model {:.1}%; try another backbone (graft rank), fine-tuning (--unfreeze), or more or cleaner data",
            100.0 * baseline,
            100.0 * report.val_accuracy
        );
    }
    Ok(())
}
