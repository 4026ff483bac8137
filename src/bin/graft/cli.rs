//! `graft`: the engine on the command line.
//!
//! - `graft classify IMAGE... [--json]`: ImageNet top-5 for each image.
//! - `graft train DIR ...`: trains a head on an image folder (one subfolder per class).
//! - `graft predict --model FILE IMAGE... [--json]`: a saved model's classes for each image.
//! - `graft rank DIR [--json]`: LogME of each available backbone on a labelled image folder.
//! - `graft import-weights --pth FILE --out-dir DIR ...`: converts a legacy PyTorch checkpoint
//!   to safetensors and writes the model manifest next to it (used by `cargo xtask setup`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use graft::backbone::Architecture;
use graft::classify::Prediction;
use graft::embed::block_on;
use graft::exec::Executor;
use graft::gpu::BackendChoice;
use graft::manifest::{manifest_file, ModelManifest, WeightsSource};
use graft::preprocess::decode_image;
use graft::train::{Adapt, Augment, BatchNormMode, Keep, TrainConfig};
use graft::weights::{legacy_pth_to_safetensors, sha256_hex};
use graft::{GraftError, Result};
use serde::Serialize;

use crate::files::{load_classifier, read, select_backend};

const DEFAULT_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/static/models");

#[derive(Parser)]
#[command(name = "graft", about = "Graft: transfer learning with Candle", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ImageNet top-5 of each image.
    Classify {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// One JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backbone: BackboneArgs,
    },
    /// Train a classifier on DIR/<class>/<image> files: a head on frozen backbone features, or
    /// with the last backbone blocks unfrozen (fine-tuning).
    Train(TrainArgs),
    /// Classify images with a model file written by `graft train --save` or the page's
    /// "Export model".
    Predict {
        /// The model file (.safetensors with Graft metadata).
        #[arg(long)]
        model: PathBuf,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// One JSON document on stdout: `[{"file", "predictions": [{"label", "prob"}]}]`,
        /// most likely first.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backbone: BackboneArgs,
    },
    /// Score how well each available backbone's features suit DIR/<class>/<image> (LogME,
    /// no training; higher is better).
    Rank {
        dir: PathBuf,
        /// `[{"backbone", "logme", "images", "seconds"}]` on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backbone: BackboneArgs,
    },
    /// Convert a backbone's legacy .pth checkpoint to safetensors and write its manifest.
    ImportWeights {
        /// The architecture of the checkpoint, as manifests name it.
        #[arg(long, value_parser = parse_architecture)]
        architecture: Architecture,
        #[arg(long)]
        pth: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        /// The registry package the checkpoint came from (recorded in the manifest).
        #[arg(long)]
        package: String,
        /// The checkpoint's path inside that package.
        #[arg(long)]
        package_file: String,
        #[arg(long, default_value = "BSD-3-Clause (torchvision)")]
        license: String,
    },
}

/// Which backbone (and the folder it is in) and where it runs.
#[derive(Args)]
pub(crate) struct BackboneArgs {
    /// The pretrained backbone: `mobilenet_v2` or `efficientnet_lite0` (default: mobilenet_v2;
    /// for `predict`, the one the model file was trained on; for `rank`, every one there is).
    #[arg(long, value_parser = parse_architecture)]
    pub backbone: Option<Architecture>,
    /// Where the backbone runs: `auto` (a hardware GPU if there is one, else the CPU), `cpu`,
    /// or `webgpu` (any adapter, software ones included).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendChoice,
    /// Folder holding the models' manifests, weights and labels (`cargo xtask setup` fills it).
    #[arg(long, env = "GRAFT_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
}

impl BackboneArgs {
    /// The backbone asked for, else the default one.
    pub fn architecture(&self) -> Architecture {
        self.backbone.unwrap_or(Architecture::DEFAULT)
    }
}

#[derive(Args)]
struct TrainArgs {
    dir: PathBuf,
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Learning rate of the head.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Hidden units of the head; 0 trains a linear head.
    #[arg(long, default_value_t = 100)]
    hidden: usize,
    #[arg(long, default_value_t = 0.15)]
    val_fraction: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object per epoch, then a final one, on stdout.
    #[arg(long)]
    json: bool,
    /// Write the trained model here: one safetensors file with the head, any fine-tuned blocks,
    /// and metadata naming the classes, the backbone and the preprocessing.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Fine-tuning: how many of the backbone's last blocks train with the head (0: the head
    /// alone on frozen features).
    #[arg(long, default_value_t = 0)]
    unfreeze: usize,
    /// Learning rate of the unfrozen blocks.
    #[arg(long, default_value_t = 1e-4)]
    backbone_lr: f64,
    /// With `--unfreeze`: epochs of the head alone before the blocks join.
    #[arg(long, default_value_t = 5)]
    head_epochs: usize,
    /// Augment the training images: random resized crop, flip, colour jitter.
    #[arg(long)]
    augment: bool,
    /// Augmentation strength, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    augment_strength: f32,
    /// Cosine decay of the learning rates.
    #[arg(long)]
    cosine: bool,
    /// Batch norm in unfrozen blocks: `frozen` (pretrained statistics) or `train`.
    #[arg(long, default_value = "frozen", value_parser = parse_batch_norm)]
    bn: BatchNormMode,
    /// Unlabelled images of the domain the model will be used in (any folder layout), for
    /// `--adapt dann`.
    #[arg(long, requires = "adapt")]
    target: Option<PathBuf>,
    /// Domain adaptation: `dann` trains the features so that a domain classifier cannot tell
    /// the training images from the `--target` ones (Ganin et al., 2016).
    #[arg(long, value_parser = ["dann"], requires = "target")]
    adapt: Option<String>,
    /// Strength of the adaptation (the gradient reversal's largest lambda).
    #[arg(long, default_value_t = 1.0)]
    adapt_weight: f32,
    /// Which epoch's weights to keep: `auto` (the final ones when adapting, else the lowest
    /// validation loss's), `best` or `final`.
    #[arg(long, default_value = "auto", value_parser = parse_keep)]
    keep: Keep,
    /// Labelled images of the target domain (`DIR/<class>/<image>`), never trained on: the
    /// final JSON's `target_accuracy`.
    #[arg(long)]
    target_test: Option<PathBuf>,
    /// The head and any unfrozen blocks train where the backbone runs.
    #[command(flatten)]
    backbone: BackboneArgs,
}

impl TrainArgs {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch,
            learning_rate: self.lr,
            backbone_learning_rate: self.backbone_lr,
            hidden: self.hidden,
            val_fraction: self.val_fraction,
            seed: self.seed,
            unfreeze: self.unfreeze,
            head_epochs: self.head_epochs,
            cosine_decay: self.cosine,
            augment: Augment { enabled: self.augment, strength: self.augment_strength },
            batch_norm: self.bn,
            adapt: Adapt { enabled: self.adapt.is_some(), weight: self.adapt_weight },
            keep: self.keep,
            ..TrainConfig::default()
        }
    }
}

pub fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Classify { images, json, backbone } => classify(&images, json, &backbone),
        Command::Train(args) => {
            let output = crate::train::Output {
                json: args.json,
                save: args.save.as_deref(),
                target: args.target.as_deref(),
                target_test: args.target_test.as_deref(),
            };
            crate::train::train(&args.dir, args.config(), &args.backbone, output).map(|()| true)
        }
        Command::Predict { model, images, json, backbone } => crate::predict::predict(&model, &images, json, &backbone),
        Command::Rank { dir, json, backbone } => crate::rank::rank(&dir, json, &backbone).map(|()| true),
        Command::ImportWeights { architecture, pth, out_dir, package, package_file, license } => import_weights(
            architecture,
            &pth,
            &out_dir,
            WeightsSource { package, file: package_file, sha256: String::new(), license },
        )
        .map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("graft: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_backend(name: &str) -> std::result::Result<BackendChoice, String> {
    BackendChoice::parse(name).ok_or_else(|| format!("`{name}` is not a backend: use auto, cpu or webgpu"))
}

fn parse_keep(name: &str) -> std::result::Result<Keep, String> {
    Keep::parse(name).ok_or_else(|| format!("`{name}` is not a choice: use auto, best or final"))
}

fn parse_batch_norm(name: &str) -> std::result::Result<BatchNormMode, String> {
    BatchNormMode::parse(name).ok_or_else(|| format!("`{name}` is not a batch-norm mode: use frozen or train"))
}

fn parse_architecture(id: &str) -> std::result::Result<Architecture, String> {
    Architecture::from_id(id).ok_or_else(|| {
        let known: Vec<&str> = Architecture::ALL.iter().map(|a| a.id()).collect();
        format!("`{id}` is not a backbone Graft knows: use {}", known.join(" or "))
    })
}

#[derive(Serialize)]
struct FileResult {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    top5: Option<Vec<Prediction>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Classifies each image; returns `false` when any of them failed.
fn classify(images: &[PathBuf], json: bool, backbone: &BackboneArgs) -> Result<bool> {
    let started = Instant::now();
    let classifier = load_classifier(&backbone.model_dir, backbone.architecture())?;
    select_backend(classifier.extractor(), backbone.backend);
    let loaded = started.elapsed();
    let mut results = Vec::with_capacity(images.len());
    let mut forward_time = std::time::Duration::ZERO;
    for path in images {
        let file = path.display().to_string();
        let outcome = read(path).and_then(|bytes| decode_image(&file, &bytes)).and_then(|image| {
            let t = Instant::now();
            let top = block_on(classifier.top_k(&[image], 5));
            forward_time += t.elapsed();
            top
        });
        results.push(match outcome {
            Ok(mut top) => FileResult { file, top5: top.pop(), error: None },
            Err(e) => FileResult { file, top5: None, error: Some(e.to_string()) },
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results).unwrap_or_default());
    } else {
        print_table(&results);
    }
    let ok = results.iter().filter(|r| r.error.is_none()).count();
    eprintln!(
        "graft: model loaded in {:.0} ms; {ok} image(s) classified on {}, {:.0} ms per image",
        loaded.as_secs_f64() * 1e3,
        classifier.extractor().executor().describe(),
        forward_time.as_secs_f64() * 1e3 / ok.max(1) as f64
    );
    for failed in results.iter().filter_map(|r| r.error.as_ref()) {
        eprintln!("graft: {failed}");
    }
    Ok(ok == results.len())
}

fn print_table(results: &[FileResult]) {
    for result in results {
        let Some(top5) = &result.top5 else { continue };
        println!("{}", result.file);
        for p in top5 {
            println!("  {:>6.2}%  {:>4}  {}", p.prob * 100.0, p.index, p.label);
        }
    }
}

fn import_weights(architecture: Architecture, pth: &Path, out_dir: &Path, mut source: WeightsSource) -> Result<()> {
    let bytes = read(pth)?;
    let name = pth.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let safetensors = legacy_pth_to_safetensors(&name, &bytes)?;
    source.sha256 = sha256_hex(&bytes);
    let manifest = ModelManifest::imagenet(architecture, safetensors.len() as u64, sha256_hex(&safetensors), source);
    let write = |file: &str, data: &[u8]| {
        let path = out_dir.join(file);
        std::fs::write(&path, data).map_err(|source| GraftError::Io { path, source })
    };
    std::fs::create_dir_all(out_dir).map_err(|source| GraftError::Io { path: out_dir.to_owned(), source })?;
    write(&manifest.weights, &safetensors)?;
    write(&manifest_file(architecture), manifest.to_json().as_bytes())?;
    println!("{}", manifest.sha256);
    Ok(())
}
