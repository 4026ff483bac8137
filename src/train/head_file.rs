//! A trained head: [`TrainedHead`] (the head, after its fine-tuned blocks if any, and its
//! report), its weights as safetensors (`hidden.{weight,bias}` when it has a hidden layer,
//! `output.{weight,bias}`), and [`SavedHead`], the weights with what they mean (the backbone
//! whose features they take, the class names, the report).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::report::TrainReport;
use super::vars::{named_vars, poisoned, vars_to_safetensors};
use crate::backbone::{Backbone, BackboneKey, TrainableSuffix};
use crate::embed::FeatureExtractor;
use crate::error::{GraftError, Result};
use crate::exec::CpuExecutor;
use crate::model::{names, MlpHead, MlpHeadSpec};
use crate::preprocess::images_to_tensor;

/// A trained head with everything needed to use it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedHead {
    /// The backbone whose features the head takes.
    pub backbone: BackboneKey,
    pub class_names: Vec<String>,
    pub report: TrainReport,
    /// [`TrainedHead::to_safetensors`].
    pub safetensors: Vec<u8>,
}

impl SavedHead {
    pub fn new(head: &TrainedHead, backbone: BackboneKey, class_names: Vec<String>) -> Result<Self> {
        Ok(Self { backbone, class_names, report: head.report.clone(), safetensors: head.to_safetensors()? })
    }

    /// The head (and its fine-tuned blocks), checked against the backbone it will run after:
    /// `key` names it, `backbone` gives the blocks fine-tuned weights are loaded into.
    pub fn restore(&self, key: &BackboneKey, backbone: &Backbone, device: &Device) -> Result<TrainedHead> {
        if &self.backbone != key {
            return Err(GraftError::BackboneMismatch { expected: key.to_string(), found: self.backbone.to_string() });
        }
        let head = TrainedHead::from_safetensors(&self.safetensors, self.report.clone(), backbone, device)?;
        let classes = head.head().classes();
        if classes != self.class_names.len() {
            return Err(bad(format!("it has {classes} outputs for {} class names", self.class_names.len())));
        }
        Ok(head)
    }
}

fn bad(reason: String) -> GraftError {
    GraftError::BadFile { what: "trained head", reason }
}

/// What a weights file holds, checked the same way for every reader (a model file, a saved
/// head from IndexedDB, a `.graft` file's `model.safetensors`): every tensor F32 (nothing is
/// converted); a head whose tensors' shapes agree with each other, which say its spec; and the
/// other tensors, a fine-tuned block's each, matched against the backbone when restored
/// ([`TrainedHead::from_safetensors`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WeightsLayout {
    pub head: MlpHeadSpec,
    /// The fine-tuned blocks' tensor names, sorted (empty: a head alone).
    pub block_tensors: Vec<String>,
}

impl WeightsLayout {
    pub(crate) fn read(tensors: &SafeTensors) -> std::result::Result<Self, String> {
        let mut all: Vec<(String, TensorView)> = tensors.tensors();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some((name, view)) = all.iter().find(|(_, view)| view.dtype() != Dtype::F32) {
            return Err(format!("tensor {name} is {:?}, not F32", view.dtype()));
        }
        let shape = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, view)| view.shape().to_vec());
        let matrix = |name: &str| match shape(name).as_deref() {
            Some(&[rows, columns]) => Ok((rows, columns)),
            Some(other) => Err(format!("tensor {name} has shape {other:?}, not a matrix")),
            None => Err(format!("tensor {name} is missing")),
        };
        let (classes, output_in) = matrix(names::OUTPUT_WEIGHT)?;
        let head = match shape(names::HIDDEN_WEIGHT) {
            Some(_) => {
                let (hidden, in_dim) = matrix(names::HIDDEN_WEIGHT)?;
                MlpHeadSpec { in_dim, hidden, classes }
            }
            None => MlpHeadSpec { in_dim: output_in, hidden: 0, classes },
        };
        for (name, expected) in head.tensor_shapes() {
            match shape(name) {
                Some(found) if found == expected => {}
                Some(found) => {
                    return Err(format!("tensor {name} has shape {found:?}, the head's others say {expected:?}"))
                }
                None => return Err(format!("tensor {name} is missing")),
            }
        }
        let head_names: Vec<&str> = head.tensor_shapes().into_iter().map(|(name, _)| name).collect();
        let block_tensors: Vec<String> =
            all.into_iter().map(|(name, _)| name).filter(|name| !head_names.contains(&name.as_str())).collect();
        let is_head_layer =
            |name: &&String| [names::HIDDEN, names::OUTPUT].iter().any(|l| name.starts_with(&format!("{l}.")));
        if let Some(stray) = block_tensors.iter().find(is_head_layer) {
            return Err(format!("tensor {stray} is not part of a {} head", head_kind(&head)));
        }
        Ok(Self { head, block_tensors })
    }

    /// [`Self::read`] of safetensors bytes.
    pub(crate) fn of_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
        Self::read(&tensors)
    }

    /// The head against `spec` (`says`: whose spec it is, named in the message).
    pub(crate) fn check_head(&self, spec: &MlpHeadSpec, says: &str) -> std::result::Result<(), String> {
        if self.head == *spec {
            return Ok(());
        }
        let found = self.head.tensor_shapes();
        for (name, expected) in spec.tensor_shapes() {
            match found.iter().find(|(n, _)| *n == name) {
                Some((_, shape)) if *shape != expected => {
                    return Err(format!("tensor {name} has shape {shape:?}, {says} says {expected:?}"))
                }
                None => return Err(format!("tensor {name} is missing")),
                Some(_) => {}
            }
        }
        Err(format!("it holds a {} head, {says} describes a {} one", head_kind(&self.head), head_kind(spec)))
    }
}

fn head_kind(spec: &MlpHeadSpec) -> &'static str {
    if spec.hidden > 0 {
        "hidden-layer"
    } else {
        "linear"
    }
}

/// The head of `spec` with the values of `tensors` (checked by [`WeightsLayout::read`]).
fn load_head(spec: MlpHeadSpec, tensors: &HashMap<String, Tensor>, device: &Device) -> Result<(VarMap, MlpHead)> {
    let varmap = VarMap::new();
    let head = MlpHead::load(spec, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    for (name, var) in varmap.data().lock().map_err(|_| poisoned())?.iter() {
        var.set(tensors.get(name).ok_or_else(|| bad(format!("tensor {name} is missing")))?)?;
    }
    Ok((varmap, head))
}

/// A trained head (after its fine-tuned blocks, if any) with its report.
pub struct TrainedHead {
    head_vars: VarMap,
    head: MlpHead,
    suffix: Option<TrainableSuffix>,
    /// The fine-tuned blocks folded once for prediction (the fast executor), when it has
    /// kernels for them; else they run through the training ops.
    suffix_executor: Option<CpuExecutor>,
    pub report: TrainReport,
}

impl TrainedHead {
    pub(crate) fn new(head_vars: VarMap, head: MlpHead, suffix: Option<TrainableSuffix>, report: TrainReport) -> Self {
        let suffix_executor = suffix.as_ref().and_then(|s| CpuExecutor::of_blocks(s.blocks()));
        Self { head_vars, head, suffix, suffix_executor, report }
    }

    pub fn head(&self) -> &MlpHead {
        &self.head
    }

    /// The fine-tuned blocks, when the run trained through some.
    pub fn suffix(&self) -> Option<&TrainableSuffix> {
        self.suffix.as_ref()
    }

    /// Class probabilities `(B, C)` for features `(B, D)`. After a fine-tuning run the features
    /// are those of the fine-tuned blocks: `suffix().forward_features(boundary activations)`.
    pub fn predict(&self, features: &Tensor) -> Result<Tensor> {
        let logits = self.head.forward_with_mask(features, None)?;
        Ok(candle_nn::ops::softmax_last_dim(&logits)?)
    }

    /// The head's weights as safetensors bytes (`hidden.*`, `output.*`), and after a fine-tuning
    /// run the fine-tuned blocks' weights and batch-norm statistics under their checkpoint names
    /// (`features.17.conv.0.0.weight`, `features.17.conv.0.1.running_mean`, …).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        self.safetensors_with(None)
    }

    /// [`Self::to_safetensors`] with header metadata (the model file's).
    pub(crate) fn safetensors_with(
        &self,
        metadata: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Vec<u8>> {
        let mut vars = named_vars(&self.head_vars)?;
        if let Some(suffix) = &self.suffix {
            vars.extend(suffix.tensors().cloned());
        }
        vars_to_safetensors(&vars, metadata)
    }

    /// A head rebuilt from [`Self::to_safetensors`] bytes, with the report it was saved with,
    /// for `backbone`'s features; fine-tuned blocks (tensors named as `backbone`'s checkpoint)
    /// become its suffix.
    pub fn from_safetensors(bytes: &[u8], report: TrainReport, backbone: &Backbone, device: &Device) -> Result<Self> {
        let layout = WeightsLayout::of_bytes(bytes).map_err(bad)?;
        if layout.head.in_dim != backbone.feature_dim() {
            return Err(bad(format!(
                "its head takes {} features, the backbone gives {}",
                layout.head.in_dim,
                backbone.feature_dim()
            )));
        }
        let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|e| bad(e.to_string()))?;
        let (head_vars, head) = load_head(layout.head, &tensors, device)?;
        let suffix = match layout.block_tensors.is_empty() {
            true => None,
            false => Some(load_suffix(backbone, &layout.block_tensors, &tensors)?),
        };
        Ok(Self::new(head_vars, head, suffix, report))
    }

    /// Class probabilities `(N, C)` of images: the frozen blocks on the executor, then the
    /// fine-tuned blocks (if any) and the head.
    pub async fn predict_images(&self, extractor: &FeatureExtractor, images: &[RgbImage]) -> Result<Tensor> {
        let features = match &self.suffix {
            None => extractor.embed(images).await?,
            Some(suffix) => {
                let x = images_to_tensor(images, extractor.input_spec(), extractor.device())?;
                let boundary = extractor.activations(&x, suffix.first_block()).await?.to_nhwc(extractor.device())?;
                match &self.suffix_executor {
                    Some(executor) => executor.pooled_nhwc(&boundary)?,
                    None => suffix.forward_features(&boundary)?,
                }
            }
        };
        self.predict(&features)
    }
}

/// The suffix of `backbone` whose tensors are exactly `names` (sorted), with the values of
/// `tensors`: the blocks a fine-tuned file holds. A file saved before batch-norm statistics
/// were (before training-mode batch norm, 2026-11-28) holds the blocks' parameters alone: its
/// blocks ran with the pretrained statistics, which they keep.
fn load_suffix(backbone: &Backbone, names: &[String], tensors: &HashMap<String, Tensor>) -> Result<TrainableSuffix> {
    let sorted = |names: Vec<&String>| {
        let mut names: Vec<String> = names.into_iter().cloned().collect();
        names.sort();
        names
    };
    for first in (0..backbone.num_blocks()).rev() {
        let suffix = backbone.trainable_suffix(first)?;
        let with_statistics = sorted(suffix.tensors().map(|(n, _)| n).collect());
        let parameters = sorted(suffix.vars().iter().map(|(n, _)| n).collect());
        if parameters.len() > names.len() {
            break;
        }
        if with_statistics != names && parameters != names {
            continue;
        }
        for (name, var) in suffix.tensors().filter(|(name, _)| tensors.contains_key(name)) {
            let value = &tensors[name];
            if value.dims() != var.dims() {
                return Err(bad(format!(
                    "tensor {name} has shape {:?}, the backbone's {:?}",
                    value.dims(),
                    var.dims()
                )));
            }
            var.set(value)?;
        }
        return Ok(suffix);
    }
    let shown: Vec<&str> = names.iter().take(3).map(|n| n.as_str()).collect();
    Err(bad(format!("its tensors {shown:?}... are not the last blocks of {}", backbone.architecture())))
}
