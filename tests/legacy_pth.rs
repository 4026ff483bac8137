//! The legacy .pth reader against a checkpoint written by PyTorch itself
//! (`tests/reference/make_fixtures.py`): strided views, storage offsets, int64, f16, scalars;
//! and its errors on truncated or foreign files.

use graft::weights::legacy_pth::{read_legacy_pth, StorageDtype};
use graft::weights::{legacy_pth_to_safetensors, verify_sha256};
use graft::GraftError;
use serde_json::Value;

const TINY: &[u8] = include_bytes!("fixtures/tiny_legacy.pth");
const TINY_EXPECTED: &str = include_str!("fixtures/tiny_legacy.json");

fn decode(dtype: StorageDtype, bytes: &[u8]) -> Vec<f64> {
    let size = dtype.size_in_bytes();
    bytes
        .chunks_exact(size)
        .map(|c| match dtype {
            StorageDtype::F32 => f32::from_le_bytes(c.try_into().unwrap()) as f64,
            StorageDtype::I64 => i64::from_le_bytes(c.try_into().unwrap()) as f64,
            StorageDtype::F16 => half_to_f64(u16::from_le_bytes(c.try_into().unwrap())),
            other => panic!("unexpected dtype {other:?}"),
        })
        .collect()
}

fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((bits >> 10) & 0x1f) as i32;
    let frac = (bits & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

#[test]
fn reads_every_tensor_as_pytorch_wrote_it() {
    let expected: serde_json::Map<String, Value> = serde_json::from_str(TINY_EXPECTED).unwrap();
    let tensors = read_legacy_pth("tiny_legacy.pth", TINY).unwrap();
    assert_eq!(tensors.len(), expected.len());
    for tensor in &tensors {
        let want = &expected[&tensor.name];
        let shape: Vec<usize> = serde_json::from_value(want["shape"].clone()).unwrap();
        assert_eq!(tensor.shape, shape, "{}", tensor.name);
        let values: Vec<f64> = serde_json::from_value(want["values"].clone()).unwrap();
        assert_eq!(decode(tensor.dtype, &tensor.data), values, "{}", tensor.name);
    }
    let dtype_of = |name: &str| tensors.iter().find(|t| t.name == name).unwrap().dtype;
    assert_eq!(dtype_of("counts"), StorageDtype::I64);
    assert_eq!(dtype_of("halves"), StorageDtype::F16);
}

#[test]
fn safetensors_output_round_trips_and_is_deterministic() {
    let a = legacy_pth_to_safetensors("tiny_legacy.pth", TINY).unwrap();
    let b = legacy_pth_to_safetensors("tiny_legacy.pth", TINY).unwrap();
    assert_eq!(a, b);
    let loaded = candle_core::safetensors::load_buffer(&a, &candle_core::Device::Cpu).unwrap();
    let transposed: Vec<Vec<f32>> = loaded["transposed"].to_vec2().unwrap();
    // plain = arange(24).reshape(4, 6) / 8 - 1, so transposed[i][j] = plain[j][i].
    assert_eq!(transposed[2][3], (3 * 6 + 2) as f32 / 8.0 - 1.0);
    assert_eq!(loaded["offset_view"].dims(), &[2, 3]);
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    for cut in [TINY.len() - 1, TINY.len() - 50, 40] {
        match read_legacy_pth("tiny_legacy.pth", &TINY[..cut]) {
            Err(GraftError::TruncatedWeights { name, .. }) => assert_eq!(name, "tiny_legacy.pth"),
            other => panic!("cut at {cut}: expected TruncatedWeights, got {other:?}"),
        }
    }
}

#[test]
fn foreign_or_corrupt_files_are_bad_checkpoints() {
    let zip = b"PK\x03\x04rest of a zip file";
    assert!(matches!(read_legacy_pth("new.pth", zip), Err(GraftError::BadCheckpoint { .. })));
    let mut corrupt = TINY.to_vec();
    corrupt[3] ^= 0xff; // inside the magic number
    let err = read_legacy_pth("x.pth", &corrupt).unwrap_err();
    assert!(err.to_string().contains("x.pth"), "{err}");
    // Every single-byte corruption is an error or a successful read, never a panic.
    for at in 0..TINY.len() {
        let mut bytes = TINY.to_vec();
        bytes[at] = bytes[at].wrapping_add(0x5b);
        let _ = read_legacy_pth("fuzz.pth", &bytes);
    }
}

#[test]
fn checksum_mismatch_names_the_file() {
    let err = verify_sha256("w.safetensors", b"abc", &"0".repeat(64)).unwrap_err();
    assert!(matches!(err, GraftError::ChecksumMismatch { .. }));
    assert!(err.to_string().contains("w.safetensors"));
    verify_sha256("w", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").unwrap();
}
