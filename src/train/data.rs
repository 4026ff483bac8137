//! What a run trains on: labelled inputs, their augmented views, and the unlabelled rows of a
//! new domain.

use candle_core::Tensor;

use crate::error::{GraftError, Result};

/// Labelled training inputs.
pub struct TrainData {
    /// `(N, D)` features, or `(N, h, w, C)` activations at the freeze boundary (NHWC).
    pub inputs: Tensor,
    /// Augmented views of every sample, each shaped like `inputs` (empty: no augmentation).
    pub views: Vec<Tensor>,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    /// Unlabelled target-domain inputs, shaped like `inputs` row for row (domain adaptation).
    pub target: Option<Tensor>,
}

impl TrainData {
    /// Plain inputs without augmented views.
    pub fn new(inputs: Tensor, labels: Vec<usize>, class_names: Vec<String>) -> Self {
        Self { inputs, views: Vec::new(), labels, class_names, target: None }
    }

    /// Bytes held by the inputs and their views (the activation cache of fine-tuning).
    pub fn cache_bytes(&self) -> usize {
        (1 + self.views.len()) * self.inputs.elem_count() * std::mem::size_of::<f32>()
    }

    /// Rows `rows` of the unlabelled target inputs (an adapting batch's target half).
    pub fn target_rows(&self, rows: &[usize]) -> Result<Tensor> {
        let target = self.target.as_ref().ok_or_else(|| GraftError::Training("this run has no target rows".into()))?;
        select_rows(target, rows)
    }

    /// The plain inputs (`None`), or augmented view `view`.
    pub fn inputs_of(&self, view: Option<usize>) -> Result<&Tensor> {
        match view {
            None => Ok(&self.inputs),
            Some(v) => self
                .views
                .get(v)
                .ok_or_else(|| GraftError::Training(format!("view {v} of {} does not exist", self.views.len()))),
        }
    }
}

/// Rows `rows` of `tensor` (along its first dimension).
pub(crate) fn select_rows(tensor: &Tensor, rows: &[usize]) -> Result<Tensor> {
    let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    Ok(tensor.index_select(&Tensor::new(rows.as_slice(), tensor.device())?, 0)?)
}
