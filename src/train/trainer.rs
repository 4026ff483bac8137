//! Training a head on cached features (feature extraction, method 1).
//!
//! Mini-batch AdamW on cross-entropy, `epochs` passes over a seeded shuffle of the training
//! split; dropout on the hidden layer with masks from the same seed. After each epoch the
//! validation split is scored; the weights with the lowest validation loss (training loss
//! when there is no validation split) are kept and restored at the end, also when the run
//! is stopped early. A non-finite loss stops the run with `GraftError::Diverged`.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::metrics::Confusion;
use super::rng::SplitMix64;
use super::split::{stratified_split, Split};
use crate::error::{GraftError, Result};
use crate::model::{MlpHead, MlpHeadSpec};
use crate::weights::legacy_pth::{RawTensor, StorageDtype};
use crate::weights::tensors_to_safetensors;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Hidden units of the head; 0 for a linear head.
    pub hidden: usize,
    pub dropout: f32,
    pub weight_decay: f64,
    pub val_fraction: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 50,
            batch_size: 16,
            learning_rate: 1e-3,
            hidden: 100,
            dropout: 0.2,
            weight_decay: 0.01,
            val_fraction: 0.15,
            seed: 0,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    /// Confusion on the validation split (the training split if there is none), this epoch.
    pub confusion: Confusion,
}

/// The outcome of a run, scored with the kept (best) weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// Accuracy and confusion on the validation split (the training split if there is none).
    pub val_accuracy: f32,
    pub per_class_accuracy: Vec<Option<f32>>,
    pub confusion: Confusion,
    pub train_samples: usize,
    pub val_samples: usize,
}

struct Scores {
    loss: f32,
    confusion: Confusion,
}

pub struct HeadTrainer {
    varmap: VarMap,
    head: MlpHead,
    optimizer: AdamW,
    features: Tensor,
    labels: Vec<usize>,
    num_classes: usize,
    split: Split,
    config: TrainConfig,
    rng: SplitMix64,
    epoch: usize,
    best: Option<(f32, usize, HashMap<String, Tensor>)>,
}

impl HeadTrainer {
    /// `features`: `(N, D)` f32; `labels[i]` in `0..num_classes`. Refuses fewer than two
    /// classes and empty classes, naming them with `class_names`.
    pub fn new(features: Tensor, labels: Vec<usize>, class_names: &[String], config: TrainConfig) -> Result<Self> {
        let num_classes = class_names.len();
        check_classes(&labels, class_names)?;
        let (n, in_dim) = features.dims2()?;
        if n != labels.len() {
            return Err(GraftError::Training(format!("{n} feature rows for {} labels", labels.len())));
        }
        let spec = MlpHeadSpec { in_dim, hidden: config.hidden, classes: num_classes };
        let device = features.device().clone();
        let varmap = VarMap::new();
        let head = MlpHead::load(spec, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
        let mut rng = SplitMix64::new(config.seed);
        init_like_pytorch(&varmap, &mut rng)?;
        let optimizer = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..Default::default() },
        )?;
        let split = stratified_split(&labels, num_classes, config.val_fraction, config.seed);
        Ok(Self { varmap, head, optimizer, features, labels, num_classes, split, config, rng, epoch: 0, best: None })
    }

    pub fn split(&self) -> &Split {
        &self.split
    }

    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    pub fn is_done(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// One pass over the shuffled training split, then scoring.
    pub fn run_epoch(&mut self) -> Result<EpochMetrics> {
        let mut order = self.split.train.clone();
        self.rng.shuffle(&mut order);
        let batch_size = self.config.batch_size.max(1);
        for batch in order.chunks(batch_size) {
            let (x, y) = self.batch(batch)?;
            let mask = self.dropout_mask(batch.len())?;
            let logits = self.head.forward_with_mask(&x, mask.as_ref())?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(GraftError::Diverged { epoch: self.epoch + 1 });
            }
            self.optimizer.backward_step(&loss)?;
        }
        self.epoch += 1;
        let train = self.score(&self.split.train)?;
        let val = if self.split.val.is_empty() { None } else { Some(self.score(&self.split.val)?) };
        let selection_loss = val.as_ref().map_or(train.loss, |v| v.loss);
        if !selection_loss.is_finite() {
            return Err(GraftError::Diverged { epoch: self.epoch });
        }
        if self.best.as_ref().is_none_or(|(best, _, _)| selection_loss < *best) {
            self.best = Some((selection_loss, self.epoch, self.snapshot()?));
        }
        Ok(EpochMetrics {
            epoch: self.epoch,
            train_loss: train.loss,
            train_accuracy: train.confusion.accuracy(),
            val_loss: val.as_ref().map(|v| v.loss),
            val_accuracy: val.as_ref().map(|v| v.confusion.accuracy()),
            confusion: val.map_or(train.confusion, |v| v.confusion),
        })
    }

    /// Restores the best weights and scores them.
    pub fn finish(self) -> Result<TrainedHead> {
        if let Some((_, _, weights)) = &self.best {
            for (name, var) in self.varmap.data().lock().map_err(|_| poisoned())?.iter() {
                if let Some(saved) = weights.get(name) {
                    var.set(saved)?;
                }
            }
        }
        let scored_on = if self.split.val.is_empty() { &self.split.train } else { &self.split.val };
        let scores = self.score(scored_on)?;
        let report = TrainReport {
            epochs_run: self.epoch,
            best_epoch: self.best.as_ref().map_or(0, |(_, epoch, _)| *epoch),
            val_accuracy: scores.confusion.accuracy(),
            per_class_accuracy: scores.confusion.per_class_accuracy(),
            confusion: scores.confusion,
            train_samples: self.split.train.len(),
            val_samples: self.split.val.len(),
        };
        Ok(TrainedHead { varmap: self.varmap, head: self.head, report })
    }

    fn batch(&self, indices: &[usize]) -> Result<(Tensor, Tensor)> {
        let device = self.features.device();
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = Tensor::new(idx.as_slice(), device)?;
        let y: Vec<u32> = indices.iter().map(|&i| self.labels[i] as u32).collect();
        Ok((self.features.index_select(&idx, 0)?, Tensor::new(y.as_slice(), device)?))
    }

    fn dropout_mask(&mut self, rows: usize) -> Result<Option<Tensor>> {
        let p = self.config.dropout;
        if self.config.hidden == 0 || p <= 0.0 {
            return Ok(None);
        }
        let keep = 1.0 / (1.0 - p.min(0.99));
        let values: Vec<f32> =
            (0..rows * self.config.hidden).map(|_| if self.rng.next_f32() < p { 0.0 } else { keep }).collect();
        Ok(Some(Tensor::from_vec(values, (rows, self.config.hidden), self.features.device())?))
    }

    fn score(&self, indices: &[usize]) -> Result<Scores> {
        let (x, y) = self.batch(indices)?;
        let logits = self.head.forward_with_mask(&x, None)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let predicted: Vec<usize> = predicted.into_iter().map(|p| p as usize).collect();
        let truth: Vec<usize> = indices.iter().map(|&i| self.labels[i]).collect();
        Ok(Scores { loss, confusion: Confusion::new(self.num_classes, &truth, &predicted) })
    }

    fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        let data = self.varmap.data().lock().map_err(|_| poisoned())?;
        data.iter().map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?))).collect()
    }
}

fn poisoned() -> GraftError {
    GraftError::Training("the weights are locked by a failed thread".into())
}

fn check_classes(labels: &[usize], class_names: &[String]) -> Result<()> {
    if class_names.len() < 2 {
        return Err(GraftError::Training("add at least two classes to train".into()));
    }
    for (class, name) in class_names.iter().enumerate() {
        if !labels.contains(&class) {
            return Err(GraftError::Training(format!("class \"{name}\" has no samples")));
        }
    }
    if let Some(bad) = labels.iter().find(|&&l| l >= class_names.len()) {
        return Err(GraftError::Training(format!("label {bad} is not a class")));
    }
    Ok(())
}

/// PyTorch's `nn.Linear` initialisation, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weight and
/// bias, drawn from the seeded generator so that a seed reproduces a run.
fn init_like_pytorch(varmap: &VarMap, rng: &mut SplitMix64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| poisoned())?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var: &Var = &data[name];
        let layer = name.rsplit_once('.').map_or("", |(layer, _)| layer);
        let fan_in = data.get(&format!("{layer}.weight")).and_then(|w| w.dims().get(1).copied()).unwrap_or(1);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count()).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// A trained head with its report.
pub struct TrainedHead {
    varmap: VarMap,
    head: MlpHead,
    pub report: TrainReport,
}

impl TrainedHead {
    pub fn head(&self) -> &MlpHead {
        &self.head
    }

    /// Class probabilities `(B, C)` for features `(B, D)`.
    pub fn predict(&self, features: &Tensor) -> Result<Tensor> {
        let logits = self.head.forward_with_mask(features, None)?;
        Ok(candle_nn::ops::softmax_last_dim(&logits)?)
    }

    /// The head's weights as safetensors bytes (`hidden.*`, `output.*`).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let data = self.varmap.data().lock().map_err(|_| poisoned())?;
        let mut tensors = Vec::with_capacity(data.len());
        for (name, var) in data.iter() {
            let values: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
            tensors.push(RawTensor {
                name: name.clone(),
                dtype: StorageDtype::F32,
                shape: var.dims().to_vec(),
                data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            });
        }
        tensors_to_safetensors(&tensors)
    }
}
