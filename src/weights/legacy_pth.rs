//! Reader for PyTorch's legacy (pre-1.6, non-zip) `.pth` checkpoint format.
//!
//! Layout of such a file, as written by `torch.save(..., _use_new_zipfile_serialization=False)`:
//! 1. pickle: the magic number `0x1950a86a20f9469cfc6c`
//! 2. pickle: the protocol version (1001)
//! 3. pickle: a sys-info dict (`little_endian`, type sizes)
//! 4. pickle: the object itself (a state dict); each tensor is
//!    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` where `storage` is a
//!    persistent id `('storage', torch.FloatStorage, key, location, numel, view_metadata)`
//! 5. pickle: the list of storage keys, in the order their data follows
//! 6. for each key: the element count as 8-byte little-endian, then the raw elements
//!
//! Candle's reader only knows the zip layout, hence this module. Tensors come out contiguous
//! (row-major) whatever their strides were in the checkpoint.

use std::collections::HashMap;

use super::pickle::{self, Value};
use crate::error::{GraftError, Result};

/// `0x1950a86a20f9469cfc6c` as little-endian bytes, the way pickle's LONG1 stores it.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

/// Element types a PyTorch storage can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDtype {
    fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    pub fn size_in_bytes(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// One tensor of the checkpoint, contiguous, in little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    pub name: String,
    pub dtype: StorageDtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Where a tensor's elements live inside a storage.
#[derive(Debug)]
struct TensorView {
    name: String,
    storage_key: String,
    dtype: StorageDtype,
    offset: usize,
    shape: Vec<usize>,
    strides: Vec<usize>,
}

/// Reads every tensor of a legacy checkpoint. `file_name` only labels errors.
pub fn read_legacy_pth(file_name: &str, bytes: &[u8]) -> Result<Vec<RawTensor>> {
    let bad = |reason: String| GraftError::BadCheckpoint { name: file_name.to_string(), reason };
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(bad("this is the newer zip-based format, not the legacy one".into()));
    }
    let mut pos = 0;
    let mut next = |what: &str| {
        pickle::load(bytes, &mut pos).map_err(|e| {
            if e.0.starts_with("unexpected end of data") {
                GraftError::TruncatedWeights {
                    name: file_name.to_string(),
                    reason: format!("the file ends inside the {what}"),
                }
            } else {
                bad(format!("{what}: {e}"))
            }
        })
    };
    if next("magic number")? != Value::BigInt(MAGIC.to_vec()) {
        return Err(bad("wrong magic number".into()));
    }
    if next("protocol version")?.as_int() != Some(PROTOCOL_VERSION) {
        return Err(bad("unsupported protocol version".into()));
    }
    check_sys_info(&next("sys info")?).map_err(bad)?;
    let state_dict = next("state dict")?;
    let storage_keys = next("storage key list")?;
    let views = tensor_views(&state_dict).map_err(bad)?;
    let storage_keys: Vec<String> = storage_keys
        .as_seq()
        .ok_or_else(|| bad("storage key list is not a list".into()))?
        .iter()
        .map(|k| k.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("storage key is not a string".into()))?;
    let storages = read_storages(file_name, bytes, pos, &storage_keys, &views)?;
    views.iter().map(|view| gather(view, &storages).map_err(bad)).collect()
}

fn check_sys_info(info: &Value) -> std::result::Result<(), String> {
    let Value::Dict(entries) = info else {
        return Err("sys info is not a dict".into());
    };
    let little_endian = entries.iter().find(|(k, _)| k.as_str() == Some("little_endian")).map(|(_, v)| v.clone());
    match little_endian {
        Some(Value::Bool(false)) => Err("big-endian checkpoints are not supported".into()),
        _ => Ok(()),
    }
}

/// The state dict's tensors, in checkpoint order. Accepts a bare state dict or a dict
/// holding one under `state_dict`.
fn tensor_views(root: &Value) -> std::result::Result<Vec<TensorView>, String> {
    let Value::Dict(entries) = root else {
        return Err("the checkpoint does not hold a dict of tensors".into());
    };
    if let Some((_, inner @ Value::Dict(_))) = entries.iter().find(|(k, _)| k.as_str() == Some("state_dict")) {
        return tensor_views(inner);
    }
    let mut views = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let name = key.as_str().ok_or("a state dict key is not a string")?;
        views.push(tensor_view(name, value).map_err(|e| format!("{name}: {e}"))?);
    }
    if views.is_empty() {
        return Err("the state dict holds no tensors".into());
    }
    Ok(views)
}

fn tensor_view(name: &str, value: &Value) -> std::result::Result<TensorView, String> {
    let Value::Call { callable, args, .. } = value else {
        return Err("not a tensor".into());
    };
    let args = args.as_seq().ok_or("tensor arguments are not a tuple")?;
    if callable.is_global("torch._utils", "_rebuild_parameter") {
        return tensor_view(name, args.first().ok_or("empty parameter")?);
    }
    let is_tensor = callable.is_global("torch._utils", "_rebuild_tensor_v2")
        || callable.is_global("torch._utils", "_rebuild_tensor");
    if !is_tensor || args.len() < 4 {
        return Err("not a plain tensor".into());
    }
    let Value::Persistent(storage) = &args[0] else {
        return Err("tensor without a storage".into());
    };
    let storage = storage.as_seq().ok_or("storage id is not a tuple")?;
    let (storage_key, dtype) = match storage {
        [tag, Value::Global { name: class, .. }, key, ..] if tag.as_str() == Some("storage") => {
            let dtype =
                StorageDtype::from_storage_class(class).ok_or_else(|| format!("unsupported storage type {class}"))?;
            (key.as_str().ok_or("storage key is not a string")?, dtype)
        }
        _ => return Err("unrecognised storage id".into()),
    };
    let dims = |v: &Value, what: &str| -> std::result::Result<Vec<usize>, String> {
        v.as_seq()
            .ok_or(format!("{what} is not a tuple"))?
            .iter()
            .map(|d| d.as_int().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or(format!("{what} holds a non-integer"))
    };
    let offset =
        args[1].as_int().and_then(|o| usize::try_from(o).ok()).ok_or("storage offset is not a non-negative integer")?;
    let shape = dims(&args[2], "size")?;
    let strides = dims(&args[3], "stride")?;
    if shape.len() != strides.len() {
        return Err("size and stride differ in length".into());
    }
    Ok(TensorView { name: name.to_string(), storage_key: storage_key.to_string(), dtype, offset, shape, strides })
}

/// Slices each storage's bytes out of the data section that starts at `pos`.
fn read_storages<'a>(
    file_name: &str,
    bytes: &'a [u8],
    mut pos: usize,
    keys: &[String],
    views: &[TensorView],
) -> Result<HashMap<String, (StorageDtype, &'a [u8])>> {
    let dtypes: HashMap<&str, StorageDtype> = views.iter().map(|v| (v.storage_key.as_str(), v.dtype)).collect();
    let truncated = |key: &str| GraftError::TruncatedWeights {
        name: file_name.to_string(),
        reason: format!("the data of storage '{key}' is cut short at byte {}", bytes.len()),
    };
    let mut storages = HashMap::with_capacity(keys.len());
    for key in keys {
        let dtype = *dtypes.get(key.as_str()).ok_or_else(|| GraftError::BadCheckpoint {
            name: file_name.to_string(),
            reason: format!("storage '{key}' is used by no tensor"),
        })?;
        let header = bytes.get(pos..pos + 8).ok_or_else(|| truncated(key))?;
        let numel = u64::from_le_bytes(header.try_into().unwrap_or_default());
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(dtype.size_in_bytes()))
            .ok_or_else(|| truncated(key))?;
        let start = pos + 8;
        let data = start.checked_add(len).and_then(|end| bytes.get(start..end)).ok_or_else(|| truncated(key))?;
        storages.insert(key.clone(), (dtype, data));
        pos = start + len;
    }
    Ok(storages)
}

/// Copies a (possibly strided) view out of its storage into contiguous bytes.
fn gather(
    view: &TensorView,
    storages: &HashMap<String, (StorageDtype, &[u8])>,
) -> std::result::Result<RawTensor, String> {
    let (_, storage) = storages
        .get(&view.storage_key)
        .ok_or_else(|| format!("{}: storage '{}' has no data", view.name, view.storage_key))?;
    let elem = view.dtype.size_in_bytes();
    let numel: usize = view.shape.iter().product();
    let storage_len = storage.len() / elem;
    let max_index =
        view.offset + view.shape.iter().zip(&view.strides).map(|(&d, &s)| d.saturating_sub(1) * s).sum::<usize>();
    if numel > 0 && max_index >= storage_len {
        return Err(format!("{}: view reaches element {max_index} of a storage of {storage_len}", view.name));
    }
    let mut data = Vec::with_capacity(numel * elem);
    let mut index = vec![0usize; view.shape.len()];
    for _ in 0..numel {
        let at = view.offset + index.iter().zip(&view.strides).map(|(i, s)| i * s).sum::<usize>();
        data.extend_from_slice(&storage[at * elem..(at + 1) * elem]);
        // Advance the multi-index, last dimension fastest.
        for dim in (0..index.len()).rev() {
            index[dim] += 1;
            if index[dim] < view.shape[dim] {
                break;
            }
            index[dim] = 0;
        }
    }
    Ok(RawTensor { name: view.name.clone(), dtype: view.dtype, shape: view.shape.clone(), data })
}
