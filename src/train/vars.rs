//! Named trainable variables: listing a VarMap's, and writing them as safetensors.

use candle_core::Var;
use candle_nn::VarMap;

use crate::error::{GraftError, Result};
use crate::weights::legacy_pth::{RawTensor, StorageDtype};
use crate::weights::tensors_to_safetensors_with;

/// A VarMap's variables with their names, sorted by name.
pub(crate) fn named_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap.data().lock().map_err(|_| poisoned())?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

pub(crate) fn poisoned() -> GraftError {
    GraftError::Training("the weights are locked by a failed thread".into())
}

/// The variables as safetensors bytes, with optional header metadata.
pub(crate) fn vars_to_safetensors(
    vars: &[(String, Var)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut tensors = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let values: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
        tensors.push(RawTensor {
            name: name.clone(),
            dtype: StorageDtype::F32,
            shape: var.dims().to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }
    tensors_to_safetensors_with(&tensors, metadata)
}
