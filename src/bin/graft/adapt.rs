//! `graft train --target DIR --adapt dann`: the unlabelled target images a run adapts to, and
//! the accuracy of the trained model on labelled target images it never saw (`--target-test`).

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use graft::embed::{block_on, FeatureExtractor};
use graft::preprocess::decode_image;
use graft::train::{Augment, TrainConfig, TrainedHead};
use graft::{GraftError, Result};

use crate::files::read;
use crate::train::{list_classes, prepare_inputs, Prepared};

/// Images decoded and predicted at a time.
const BATCH: usize = 8;

/// Every file under `dir`, at any depth, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| GraftError::Io { path: folder.clone(), source })?;
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The run's inputs for every image under `dir` (any folder layout; labels ignored), never
/// augmented: features, or activations at the freeze boundary when fine-tuning.
pub fn target_inputs(extractor: &FeatureExtractor, dir: &Path, config: &TrainConfig) -> Result<Tensor> {
    let files = files_under(dir)?;
    let config = TrainConfig { augment: Augment { enabled: false, ..config.augment }, ..config.clone() };
    let Prepared { data, .. } = prepare_inputs(extractor, dir, &[("target".into(), files)], &config, false)?;
    Ok(data.inputs)
}

/// Accuracy of `trained` on the labelled images of `dir` (`dir/<class>/<image>`, classes named
/// as the run's), and how many images it scored.
pub fn target_accuracy(
    trained: &TrainedHead,
    extractor: &FeatureExtractor,
    dir: &Path,
    class_names: &[String],
) -> Result<(f32, usize)> {
    let (mut correct, mut total) = (0usize, 0usize);
    for (name, files) in list_classes(dir)? {
        let label = class_names.iter().position(|c| *c == name).ok_or_else(|| {
            GraftError::Training(format!("{} has a class `{name}` the run was not trained on", dir.display()))
        })?;
        for chunk in files.chunks(BATCH) {
            let images = chunk
                .iter()
                .map(|file| read(file).and_then(|bytes| decode_image(&file.display().to_string(), &bytes)))
                .collect::<Result<Vec<_>>>()?;
            let predicted: Vec<u32> = block_on(trained.predict_images(extractor, &images))?.argmax(1)?.to_vec1()?;
            correct += predicted.iter().filter(|&&p| p as usize == label).count();
            total += images.len();
        }
    }
    Ok((correct as f32 / total.max(1) as f32, total))
}
