//! An exported model: one safetensors file another program can use without Graft's project.
//!
//! Tensors (all F32): the head, `hidden.weight (H, D)`, `hidden.bias (H)` when it has a hidden
//! layer, `output.weight (C, H or D)`, `output.bias (C)`; after a fine-tuning run, the fine-tuned
//! blocks' weights and batch-norm statistics under the backbone checkpoint's names
//! (`features.17.conv.0.0.weight`, ...). Header metadata (`__metadata__`, strings):
//!
//! | key | value |
//! |---|---|
//! | `graft.format` | `graft-model` |
//! | `graft.version` | [`MODEL_FILE_VERSION`] |
//! | `graft.classes` | JSON list of the class names, in output order |
//! | `graft.backbone` | the architecture id (`mobilenet_v2`) |
//! | `graft.backbone_sha256` | sha256 of the backbone weights the features come from |
//! | `graft.preprocessing` | JSON [`InputSpec`]: resize, crop, mean, std (RGB in 0..1) |
//! | `graft.head` | JSON [`MlpHeadSpec`]: `in_dim`, `hidden`, `classes` |
//! | `graft.fine_tuned_blocks` | JSON list of the fine-tuned block indices (empty: none) |
//! | `graft.report` | JSON [`TrainReport`] of the run |
//!
//! The safetensors crate accepts some inconsistent headers, so [`ModelFile::parse`] checks
//! every name, dtype and shape against the metadata itself.

use std::collections::HashMap;

use candle_core::Device;
use safetensors::SafeTensors;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::head_file::{TrainedHead, WeightsLayout};
use super::report::TrainReport;
use crate::backbone::{Architecture, Backbone, BackboneKey};
use crate::error::{GraftError, Result};
use crate::model::MlpHeadSpec;
use crate::preprocess::InputSpec;

pub const MODEL_FILE_VERSION: u32 = 1;
const FORMAT: &str = "graft-model";

/// What a model file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMeta {
    pub classes: Vec<String>,
    pub backbone: BackboneKey,
    pub preprocessing: InputSpec,
    pub head: MlpHeadSpec,
    pub fine_tuned_blocks: Vec<usize>,
    pub report: TrainReport,
}

/// A parsed, checked model file: its metadata and its safetensors bytes.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub file: String,
    pub meta: ModelMeta,
    bytes: Vec<u8>,
}

impl ModelFile {
    /// The model file of a trained head for `backbone`'s features.
    pub fn write(head: &TrainedHead, backbone: &Backbone, key: &BackboneKey, classes: &[String]) -> Result<Vec<u8>> {
        let spec = head.head().spec();
        if spec.classes != classes.len() {
            return Err(GraftError::Training(format!("{} class names for {} outputs", classes.len(), spec.classes)));
        }
        let blocks: Vec<usize> = match head.suffix() {
            Some(suffix) => (suffix.first_block()..backbone.num_blocks()).collect(),
            None => Vec::new(),
        };
        let metadata = HashMap::from([
            ("graft.format".to_string(), FORMAT.to_string()),
            ("graft.version".to_string(), MODEL_FILE_VERSION.to_string()),
            ("graft.classes".to_string(), json(&classes)),
            ("graft.backbone".to_string(), key.architecture.id().to_string()),
            ("graft.backbone_sha256".to_string(), key.weights_sha256.clone()),
            ("graft.preprocessing".to_string(), json(backbone.input_spec())),
            ("graft.head".to_string(), json(&spec)),
            ("graft.fine_tuned_blocks".to_string(), json(&blocks)),
            ("graft.report".to_string(), json(&head.report)),
        ]);
        head.safetensors_with(Some(metadata))
    }

    /// Reads and checks a model file; `file` names it in every error.
    pub fn parse(file: &str, bytes: Vec<u8>) -> Result<Self> {
        let bad = |reason: String| GraftError::BadModelFile { file: file.to_string(), reason };
        if bytes.is_empty() {
            return Err(bad("the file is empty".into()));
        }
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file ({e})")))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file ({e})")))?;
        let metadata = header.metadata().as_ref().ok_or_else(|| bad("it has no Graft metadata".into()))?;
        let meta = parse_meta(metadata).map_err(bad)?;
        check_tensors(&meta, &tensors).map_err(bad)?;
        Ok(Self { file: file.to_string(), meta, bytes })
    }

    /// The trained head, for `backbone` (which must be the one the file was trained on).
    pub fn restore(&self, key: &BackboneKey, backbone: &Backbone, device: &Device) -> Result<TrainedHead> {
        let bad = |reason: String| GraftError::BadModelFile { file: self.file.clone(), reason };
        if &self.meta.backbone != key {
            return Err(bad(format!(
                "it was trained on the features of {}, but the loaded backbone is {key}",
                self.meta.backbone
            )));
        }
        TrainedHead::from_safetensors(&self.bytes, self.meta.report.clone(), backbone, device).map_err(|e| match e {
            GraftError::BadFile { reason, .. } => bad(reason),
            other => bad(other.to_string()),
        })
    }
}

/// Metadata values are JSON; these types always serialise.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn field<T: DeserializeOwned>(metadata: &HashMap<String, String>, key: &str) -> std::result::Result<T, String> {
    let text = metadata.get(key).ok_or_else(|| format!("its metadata has no `{key}`"))?;
    serde_json::from_str(text).map_err(|e| format!("its `{key}` is invalid ({e})"))
}

fn parse_meta(metadata: &HashMap<String, String>) -> std::result::Result<ModelMeta, String> {
    if metadata.get("graft.format").map(String::as_str) != Some(FORMAT) {
        return Err("its metadata does not say it is a Graft model (`graft.format`)".into());
    }
    let version: u32 = field(metadata, "graft.version")?;
    if version != MODEL_FILE_VERSION {
        return Err(format!("model format {version} is not supported (this Graft reads {MODEL_FILE_VERSION})"));
    }
    let architecture: Architecture = serde_json::from_value(serde_json::Value::String(
        metadata.get("graft.backbone").cloned().ok_or("its metadata has no `graft.backbone`")?,
    ))
    .map_err(|_| format!("backbone `{}` is not one Graft knows", metadata["graft.backbone"]))?;
    let weights_sha256 =
        metadata.get("graft.backbone_sha256").cloned().ok_or("its metadata has no `graft.backbone_sha256`")?;
    let meta = ModelMeta {
        classes: field(metadata, "graft.classes")?,
        backbone: BackboneKey { architecture, weights_sha256 },
        preprocessing: field(metadata, "graft.preprocessing")?,
        head: field(metadata, "graft.head")?,
        fine_tuned_blocks: field(metadata, "graft.fine_tuned_blocks")?,
        report: field(metadata, "graft.report")?,
    };
    if meta.classes.len() < 2 || meta.classes.len() != meta.head.classes {
        return Err(format!("it names {} classes for a head with {} outputs", meta.classes.len(), meta.head.classes));
    }
    Ok(meta)
}

/// The tensors hold the head the metadata describes (shapes, names, F32: [`WeightsLayout`]),
/// and fine-tuned blocks exactly when it lists some (they are matched against the backbone
/// when restored).
fn check_tensors(meta: &ModelMeta, tensors: &SafeTensors) -> std::result::Result<(), String> {
    let layout = WeightsLayout::read(tensors)?;
    layout.check_head(&meta.head, "its metadata")?;
    match (layout.block_tensors.first(), meta.fine_tuned_blocks.is_empty()) {
        (Some(name), true) => {
            Err(format!("tensor {name} is not part of the head, and no fine-tuned blocks are listed"))
        }
        (None, false) => Err("its metadata lists fine-tuned blocks, but it holds none of their tensors".into()),
        _ => Ok(()),
    }
}
