//! Reading the model folder and image files for the CLI: a backbone's manifest and weights,
//! with or without its pretrained classifier.

use std::path::Path;

use candle_core::Device;
use graft::backbone::Architecture;
use graft::classify::ImageNetClassifier;
use graft::embed::{block_on, FeatureExtractor};
use graft::exec::BackendStatus;
use graft::gpu::BackendChoice;
use graft::manifest::{manifest_file, ModelManifest};
use graft::{GraftError, Result};

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| GraftError::Io { path: path.to_owned(), source })
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read(path)?).map_err(|_| GraftError::Manifest(format!("{} is not UTF-8", path.display())))
}

/// Whether `architecture`'s manifest is in `model_dir`.
pub(crate) fn is_available(model_dir: &Path, architecture: Architecture) -> bool {
    model_dir.join(manifest_file(architecture)).exists()
}

/// `architecture`'s manifest and its weights' bytes from `model_dir`.
fn read_model(model_dir: &Path, architecture: Architecture) -> Result<(ModelManifest, Vec<u8>)> {
    let manifest_path = model_dir.join(manifest_file(architecture));
    if !manifest_path.exists() {
        return Err(GraftError::Manifest(format!(
            "{} not found: run `cargo xtask setup` first",
            manifest_path.display()
        )));
    }
    let manifest = ModelManifest::from_json(&read_text(&manifest_path)?)?;
    let weights = read(&model_dir.join(&manifest.weights))?;
    Ok((manifest, weights))
}

/// The backbone alone (training needs no pretrained classifier).
pub(crate) fn load_extractor(model_dir: &Path, architecture: Architecture) -> Result<FeatureExtractor> {
    let (manifest, weights) = read_model(model_dir, architecture)?;
    FeatureExtractor::load(&manifest, weights, &Device::Cpu)
}

/// Moves the extractor's blocks to the backend `choice` asks for. An explicit `webgpu` that
/// cannot run is reported, and the CPU runs instead.
pub(crate) fn select_backend(extractor: &FeatureExtractor, choice: BackendChoice) -> BackendStatus {
    if let Err(e) = block_on(extractor.select_backend(choice)) {
        eprintln!("graft: {e}; using the CPU");
    }
    let status = extractor.executor().status();
    if let Some(reason) = &status.cpu_reason {
        eprintln!("graft: {reason}");
    }
    status
}

pub(crate) fn load_classifier(model_dir: &Path, architecture: Architecture) -> Result<ImageNetClassifier> {
    let (manifest, weights) = read_model(model_dir, architecture)?;
    let Some(classifier) = &manifest.classifier else {
        return Err(GraftError::Manifest(format!("{} has no pretrained classifier", manifest.display_name)));
    };
    let labels = read_text(&model_dir.join(&classifier.labels))?;
    ImageNetClassifier::load(&manifest, weights, &labels, &Device::Cpu)
}
