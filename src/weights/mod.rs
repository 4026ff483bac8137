//! Model weights: reading PyTorch's legacy checkpoints, writing safetensors, and checksums.

pub mod legacy_pth;
pub mod pickle;

use sha2::{Digest, Sha256};

use crate::error::{GraftError, Result};
use legacy_pth::{RawTensor, StorageDtype};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Fails with [`GraftError::ChecksumMismatch`] naming `file_name` unless `bytes` hash to
/// `expected` (lower-case hex sha256).
pub fn verify_sha256(file_name: &str, bytes: &[u8], expected: &str) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual == expected.to_ascii_lowercase() {
        Ok(())
    } else {
        Err(GraftError::ChecksumMismatch { name: file_name.to_string(), expected: expected.to_string(), actual })
    }
}

/// Converts a legacy `.pth` checkpoint to safetensors bytes. The output is deterministic
/// (same input, same bytes), so its checksum can be pinned.
pub fn legacy_pth_to_safetensors(file_name: &str, pth: &[u8]) -> Result<Vec<u8>> {
    let tensors = legacy_pth::read_legacy_pth(file_name, pth)?;
    tensors_to_safetensors(&tensors)
}

fn safetensors_dtype(dtype: StorageDtype) -> safetensors::Dtype {
    use safetensors::Dtype;
    match dtype {
        StorageDtype::F64 => Dtype::F64,
        StorageDtype::F32 => Dtype::F32,
        StorageDtype::F16 => Dtype::F16,
        StorageDtype::BF16 => Dtype::BF16,
        StorageDtype::I64 => Dtype::I64,
        StorageDtype::I32 => Dtype::I32,
        StorageDtype::I16 => Dtype::I16,
        StorageDtype::I8 => Dtype::I8,
        StorageDtype::U8 => Dtype::U8,
        StorageDtype::Bool => Dtype::BOOL,
    }
}

/// Serialises contiguous tensors to safetensors bytes.
pub fn tensors_to_safetensors(tensors: &[RawTensor]) -> Result<Vec<u8>> {
    tensors_to_safetensors_with(tensors, None)
}

/// [`tensors_to_safetensors`] with string metadata in the header's `__metadata__`.
pub fn tensors_to_safetensors_with(
    tensors: &[RawTensor],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|t| {
            safetensors::tensor::TensorView::new(safetensors_dtype(t.dtype), t.shape.clone(), &t.data)
                .map(|view| (t.name.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| GraftError::Weights(e.to_string()))?;
    safetensors::serialize(views, metadata).map_err(|e| GraftError::Weights(e.to_string()))
}
