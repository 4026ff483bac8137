//! A trained head: [`TrainedHead`] (the head, after its fine-tuned blocks if any, and its
//! report), its weights as safetensors (`hidden.{weight,bias}` when it has a hidden layer,
//! `output.{weight,bias}`), and [`SavedHead`], the weights with what they mean (the backbone
//! whose features they take, the class names, the report).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
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

/// Rebuilds a head from its safetensors; the shapes say its spec.
pub(crate) fn head_from_safetensors(bytes: &[u8], device: &Device) -> Result<(VarMap, MlpHead)> {
    let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|e| bad(e.to_string()))?;
    let dims = |name: &str| -> Result<(usize, usize)> {
        let tensor = tensors.get(name).ok_or_else(|| bad(format!("{name} is missing")))?;
        tensor.dims2().map_err(|_| bad(format!("{name} is not a matrix")))
    };
    let (classes, output_in) = dims(names::OUTPUT_WEIGHT)?;
    let spec = match tensors.contains_key(names::HIDDEN_WEIGHT) {
        true => {
            let (hidden, in_dim) = dims(names::HIDDEN_WEIGHT)?;
            if hidden != output_in {
                return Err(bad(format!("hidden.weight has {hidden} rows, output.weight {output_in} columns")));
            }
            MlpHeadSpec { in_dim, hidden, classes }
        }
        false => MlpHeadSpec { in_dim: output_in, hidden: 0, classes },
    };
    let varmap = VarMap::new();
    let head = MlpHead::load(spec, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    for (name, var) in varmap.data().lock().map_err(|_| poisoned())?.iter() {
        let value: &Tensor = tensors.get(name).ok_or_else(|| bad(format!("{name} is missing")))?;
        if value.dims() != var.dims() {
            return Err(bad(format!("{name} has shape {:?}, expected {:?}", value.dims(), var.dims())));
        }
        var.set(&value.to_dtype(DType::F32)?)?;
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

    /// A head rebuilt from [`Self::to_safetensors`] bytes, with the report it was saved with;
    /// fine-tuned blocks (tensors named as `backbone`'s checkpoint) become its suffix.
    pub fn from_safetensors(bytes: &[u8], report: TrainReport, backbone: &Backbone, device: &Device) -> Result<Self> {
        let (head_vars, head) = head_from_safetensors(bytes, device)?;
        let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|e| bad(e.to_string()))?;
        let head_names = named_vars(&head_vars)?.into_iter().map(|(name, _)| name).collect::<Vec<_>>();
        let mut block_names: Vec<&String> = tensors.keys().filter(|n| !head_names.contains(n)).collect();
        if block_names.is_empty() {
            return Ok(Self::new(head_vars, head, None, report));
        }
        block_names.sort();
        let suffix = matching_suffix(backbone, &block_names)?;
        for (name, var) in suffix.tensors() {
            let value = &tensors[name];
            if value.dims() != var.dims() {
                return Err(bad(format!("{name} has shape {:?}, expected {:?}", value.dims(), var.dims())));
            }
            var.set(&value.to_dtype(DType::F32)?)?;
        }
        Ok(Self::new(head_vars, head, Some(suffix), report))
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

/// The suffix of `backbone` whose variables are exactly `names` (sorted), with its pretrained
/// values: the blocks a fine-tuned file holds.
fn matching_suffix(backbone: &Backbone, names: &[&String]) -> Result<TrainableSuffix> {
    for first in (0..backbone.num_blocks()).rev() {
        let suffix = backbone.trainable_suffix(first)?;
        let mut own: Vec<&String> = suffix.tensors().map(|(n, _)| n).collect();
        if own.len() > names.len() {
            break;
        }
        own.sort();
        if own == names {
            return Ok(suffix);
        }
    }
    let shown: Vec<&str> = names.iter().take(3).map(|n| n.as_str()).collect();
    Err(bad(format!("its tensors {shown:?}... are not the last blocks of {}", backbone.architecture())))
}
