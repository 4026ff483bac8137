//! The layout of every IndexedDB value since database version 2: an array of the record's
//! parts followed by their checksum, so that a record damaged on disk (or by a bug) is told
//! apart from a good one and left out alone (`storage.rs`).
//!
//! The checksum is the first 16 bytes of sha256 over every part, each as a type tag, its
//! length (u64, little endian) and its bytes: text as UTF-8, a number as f64 little endian,
//! a `Uint8Array` or `Float32Array` as its bytes (so the checksum of a float array does not
//! depend on how it is viewed). Version 1 stored the same parts without the checksum (a
//! project record as bare text); [`upgrade_v1`] turns such a value into today's.

use js_sys::{Array, Float32Array, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};

/// One part's bytes with its type tag, or `None` for a value a record never holds.
fn part_bytes(value: &JsValue) -> Option<(u8, Vec<u8>)> {
    if let Some(text) = value.as_string() {
        return Some((b's', text.into_bytes()));
    }
    if let Some(number) = value.as_f64() {
        return Some((b'n', number.to_le_bytes().to_vec()));
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Some((b'b', bytes.to_vec()));
    }
    let floats = value.dyn_ref::<Float32Array>()?;
    let view =
        Uint8Array::new_with_byte_offset_and_length(&floats.buffer(), floats.byte_offset(), floats.byte_length());
    Some((b'f', view.to_vec()))
}

fn checksum(parts: &[JsValue]) -> Option<String> {
    let mut hash = Sha256::new();
    for part in parts {
        let (tag, bytes) = part_bytes(part)?;
        hash.update([tag]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Some(hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// The value to store for `parts`: them, then their checksum.
pub fn seal(parts: &[JsValue]) -> JsValue {
    let record: Array = parts.iter().collect();
    if let Some(sum) = checksum(parts) {
        record.push(&sum.into());
    }
    record.into()
}

/// The `count` parts of a stored value, if it is whole: an array of them and a checksum that
/// matches.
pub fn unseal(value: &JsValue, count: u32) -> Result<Vec<JsValue>, String> {
    let record = value.dyn_ref::<Array>().filter(|r| r.length() == count + 1).ok_or("a record has the wrong shape")?;
    let parts: Vec<JsValue> = (0..count).map(|i| record.get(i)).collect();
    match (checksum(&parts), record.get(count).as_string()) {
        (Some(want), Some(got)) if want == got => Ok(parts),
        _ => Err("a record is damaged (its checksum does not match)".into()),
    }
}

/// A value as version 1 stored it (a project record's text, or an array of parts), sealed;
/// `None` for anything else, which stays as it is and is found unreadable when loaded.
pub fn upgrade_v1(value: &JsValue) -> Option<JsValue> {
    if value.as_string().is_some() {
        return Some(seal(std::slice::from_ref(value)));
    }
    let parts: Vec<JsValue> = value.dyn_ref::<Array>()?.iter().collect();
    checksum(&parts)?;
    Some(seal(&parts))
}
