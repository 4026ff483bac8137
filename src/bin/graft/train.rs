//! `graft train DIR`: the ImageFolder convention (DIR/<class>/<image>), embeddings from the
//! frozen backbone, then the same head training the browser worker runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use graft::embed::block_on;
use graft::embed::FeatureExtractor;
use graft::exec::Executor;
use graft::gpu::BackendChoice;
use graft::preprocess::decode_image;
use graft::preprocess::images_to_tensor;
use graft::train::{EpochMetrics, SuffixMode, TrainConfig, TrainData, Trainer};
use graft::{GraftError, Result};
use image::RgbImage;
use serde_json::json;

use crate::files::{load_extractor, read, select_backend};

/// Where `graft train` writes.
pub struct Output<'a> {
    /// JSON lines instead of text.
    pub json: bool,
    /// The trained head's weights file.
    pub save: Option<&'a Path>,
}

/// Images are embedded this many at a time.
const EMBED_BATCH: usize = 16;

fn io_error(path: &Path, source: std::io::Error) -> GraftError {
    GraftError::Io { path: path.to_owned(), source }
}

/// Sorted subfolders (classes) and, in each, its sorted files.
fn list_classes(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
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

/// Fine-tuning settings of a run.
pub struct FineTuning {
    /// How many of the last blocks train (0: the head alone on frozen features).
    pub unfreeze: usize,
    /// Epochs of the head alone before the blocks join.
    pub head_epochs: usize,
}

/// What a run trains on: features `(N, D)`, or with unfrozen blocks the activations entering
/// the first of them `(N, h, w, C)`; the labels, and how many files were skipped.
struct Inputs {
    inputs: Tensor,
    labels: Vec<usize>,
    skipped: usize,
}

/// Decodes every class's images and runs the frozen part of the backbone on them, a batch at a
/// time: all of it (features), or the blocks before `boundary`.
fn embed_folder(
    extractor: &FeatureExtractor,
    dir: &Path,
    classes: &[(String, Vec<PathBuf>)],
    boundary: Option<usize>,
) -> Result<Inputs> {
    let frozen = |images: &[RgbImage]| -> Result<Tensor> {
        match boundary {
            None => block_on(extractor.embed(images)),
            Some(k) => {
                let x = images_to_tensor(images, extractor.input_spec(), extractor.device())?;
                Ok(block_on(extractor.activations(&x, k))?.to_nhwc(extractor.device())?)
            }
        }
    };
    let (mut parts, mut labels, mut skipped, mut batch) = (Vec::new(), Vec::new(), 0usize, Vec::new());
    for (label, (_, files)) in classes.iter().enumerate() {
        for file in files {
            match read(file).and_then(|bytes| decode_image(&file.display().to_string(), &bytes)) {
                Ok(image) => {
                    batch.push(image);
                    labels.push(label);
                }
                Err(e) => {
                    eprintln!("graft: skipped: {e}");
                    skipped += 1;
                }
            }
            if batch.len() == EMBED_BATCH {
                parts.push(frozen(&batch)?);
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        parts.push(frozen(&batch)?);
    }
    if parts.is_empty() {
        return Err(GraftError::Training(format!("no images found under {}", dir.display())));
    }
    Ok(Inputs { inputs: Tensor::cat(&parts, 0)?, labels, skipped })
}

/// The trainer of a run: the head on features (on the GPU when the backbone runs there), or the
/// head after the last `unfreeze` blocks, which join after `head_epochs` head-only epochs.
fn new_trainer(
    extractor: &FeatureExtractor,
    data: TrainData,
    config: TrainConfig,
    fine: &FineTuning,
) -> Result<Trainer> {
    if fine.unfreeze == 0 {
        let mut trainer = Trainer::new(data, config)?;
        if let Some(gpu) = extractor.executor().gpu() {
            if let Err(e) = block_on(trainer.use_gpu(gpu.context().clone())) {
                eprintln!("graft: the head trains on the CPU: {e}");
            }
        }
        return Ok(trainer);
    }
    let boundary = extractor.backbone().num_blocks() - fine.unfreeze;
    let suffix = extractor.backbone().trainable_suffix(boundary)?;
    let mode = if fine.head_epochs == 0 { SuffixMode::Trainable } else { SuffixMode::Frozen };
    Trainer::with_suffix(data, config, suffix, mode)
}

/// `"head"` while only the head learns, `"fine-tune"` once unfrozen blocks learn too.
fn stage(trainer: &Trainer) -> &'static str {
    match trainer.suffix_mode() {
        Some(SuffixMode::Trainable) => "fine-tune",
        _ => "head",
    }
}

fn print_epoch(epoch: &EpochMetrics, stage: &str, json: bool) {
    if json {
        let line = json!({
            "epoch": epoch.epoch,
            "stage": stage,
            "train_loss": epoch.train_loss,
            "train_accuracy": epoch.train_accuracy,
            "val_loss": epoch.val_loss,
            "val_accuracy": epoch.val_accuracy,
        });
        println!("{line}");
    } else {
        println!(
            "epoch {:>3}  {stage:<9}  train loss {:.4} acc {:.3}  val loss {} acc {}",
            epoch.epoch,
            epoch.train_loss,
            epoch.train_accuracy,
            epoch.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            epoch.val_accuracy.map_or("-".into(), |v| format!("{v:.3}")),
        );
    }
}

pub fn train(
    dir: &Path,
    config: TrainConfig,
    fine: FineTuning,
    backend: BackendChoice,
    output: Output,
    model_dir: &Path,
) -> Result<()> {
    let Output { json, save } = output;
    config.validate()?;
    let extractor = load_extractor(model_dir)?;
    let blocks = extractor.backbone().num_blocks();
    if fine.unfreeze > blocks {
        return Err(GraftError::Settings(format!("unfreeze must be between 0 and {blocks} (the backbone's blocks)")));
    }
    select_backend(&extractor, backend);
    let classes = list_classes(dir)?;
    let class_names: Vec<String> = classes.iter().map(|(name, _)| name.clone()).collect();

    let embed_started = Instant::now();
    let boundary = (fine.unfreeze > 0).then(|| blocks - fine.unfreeze);
    let Inputs { inputs, labels, skipped } = embed_folder(&extractor, dir, &classes, boundary)?;
    let embed_seconds = embed_started.elapsed().as_secs_f64();
    let images = labels.len();

    let train_started = Instant::now();
    let data = TrainData { inputs, labels, class_names: class_names.clone() };
    let mut trainer = new_trainer(&extractor, data, config, &fine)?;
    while !trainer.is_done() {
        if fine.unfreeze > 0 && trainer.epochs_done() == fine.head_epochs {
            trainer.set_suffix_mode(SuffixMode::Trainable)?;
        }
        let epoch = block_on(trainer.run_epoch())?;
        print_epoch(&epoch, stage(&trainer), json);
    }
    let training_backend = trainer.device_description();
    let trained = block_on(trainer.finish())?;
    let train_seconds = train_started.elapsed().as_secs_f64();
    let report = &trained.report;
    if let Some(path) = save {
        std::fs::write(path, trained.to_safetensors()?).map_err(|e| io_error(path, e))?;
    }
    let per_class: serde_json::Map<String, serde_json::Value> =
        class_names.iter().zip(&report.per_class_accuracy).map(|(name, acc)| (name.clone(), json!(acc))).collect();
    let summary = json!({
        "final": true,
        "val_accuracy": report.val_accuracy,
        "per_class_accuracy": per_class,
        "confusion": report.confusion.counts,
        "classes": class_names,
        "images": images,
        "skipped": skipped,
        "train_images": report.train_samples,
        "val_images": report.val_samples,
        "best_epoch": report.best_epoch,
        "unfreeze": fine.unfreeze,
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
    Ok(())
}
