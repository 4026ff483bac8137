//! The engine compiled to wasm32, run in headless Chromium by wasm-bindgen-test-runner
//! (`cargo xtask test wasm`): weights reading, image decoding, preprocessing and a full
//! MobileNetV2 forward pass, as the browser worker runs them.
#![cfg(target_arch = "wasm32")]

use std::io::Cursor;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use graft::model::MobileNetV2;
use graft::preprocess::{decode_image, image_to_chw, InputSpec};
use graft::weights::legacy_pth::read_legacy_pth;
use graft::GraftError;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn legacy_checkpoint_reads_in_wasm() {
    let tensors = read_legacy_pth("tiny_legacy.pth", include_bytes!("fixtures/tiny_legacy.pth")).unwrap();
    let plain = tensors.iter().find(|t| t.name == "plain").unwrap();
    assert_eq!(plain.shape, vec![4, 6]);
    let first = f32::from_le_bytes(plain.data[..4].try_into().unwrap());
    assert_eq!(first, -1.0);
}

#[wasm_bindgen_test]
fn png_round_trip_and_preprocess_in_wasm() {
    let image = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let decoded = decode_image("gradient.png", &png).unwrap();
    assert_eq!(decoded, image);
    let chw = image_to_chw(&decoded, &InputSpec::imagenet());
    assert_eq!(chw.len(), 3 * 224 * 224);
    // Blue is constant 128 everywhere.
    let blue = (128.0 / 255.0 - 0.406) / 0.225;
    assert!(chw[2 * 224 * 224..].iter().all(|v| (v - blue).abs() < 1e-4));
    // Red grows left to right.
    assert!(chw[10] < chw[200]);
}

#[wasm_bindgen_test]
fn non_images_are_typed_errors_in_wasm() {
    assert!(matches!(decode_image("notes.txt", b"not an image"), Err(GraftError::NotAnImage { .. })));
}

#[wasm_bindgen_test]
fn mobilenet_forward_in_wasm_is_batch_consistent() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = MobileNetV2::load(vb).unwrap();
    let input = Tensor::randn(0f32, 1f32, (2, 3, 224, 224), &Device::Cpu).unwrap();
    let both = model.forward_features(&input).unwrap();
    assert_eq!(both.dims(), &[2, 1280]);
    let second = model.forward_features(&input.narrow(0, 1, 1).unwrap()).unwrap();
    let diff: f32 = (both.narrow(0, 1, 1).unwrap() - second)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(diff < 1e-4, "batch of 2 vs single image: {diff}");
    let values: Vec<f32> = both.flatten_all().unwrap().to_vec1().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
}
