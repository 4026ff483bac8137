//! The engine compiled to wasm32, run in headless Chromium by wasm-bindgen-test-runner
//! (`cargo xtask test wasm`): weights reading, image decoding, preprocessing and a full
//! MobileNetV2 forward pass, as the browser worker runs them; and the SIMD128 kernels of the
//! folded fast path (compiled only for wasm32) against their reference twins. `cargo xtask
//! test wasm` runs this file twice: built with SIMD128, then with relaxed SIMD's fused
//! multiply-add (`GRAFT_EXPECT_RELAXED_SIMD` set), the build of `graft-worker-relaxed`.
#![cfg(target_arch = "wasm32")]

use std::io::Cursor;

use candle_core::{Device, Tensor};
use graft::exec::{CpuExecutor, FeatureMap, FoldedPlan};
use graft::kernels::depthwise::{depthwise, depthwise_reference, DepthwiseShape};
use graft::kernels::pointwise::{pointwise, pointwise_reference, PointwiseShape};
use graft::kernels::{relu6, relu6_in_place, Window};
use graft::preprocess::{decode_image, image_to_chw, InputSpec};
use graft::weights::legacy_pth::read_legacy_pth;
use graft::GraftError;
use random::random_backbone;
use wasm_bindgen_test::*;

#[path = "common/backbone.rs"]
mod random;

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
    // A PNG whose header declares 30000 x 30000 pixels: refused by its size on wasm32 too.
    let mut bomb = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1))
        .write_to(&mut Cursor::new(&mut bomb), image::ImageFormat::Png)
        .unwrap();
    bomb[16..24].copy_from_slice(&[0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30]);
    let mut crc = flate2::Crc::new();
    crc.update(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let refused = decode_image("bomb.png", &bomb);
    assert!(matches!(refused, Err(GraftError::ImageTooLarge { width: 30000, height: 30000, .. })), "{refused:?}");
}

#[wasm_bindgen_test]
fn mobilenet_forward_in_wasm_is_batch_consistent() {
    let model = random_backbone();
    let input = Tensor::randn(0f32, 1f32, (2, 3, 224, 224), &Device::Cpu).unwrap();
    let both = model.forward_features(&input).unwrap();
    assert_eq!(both.dims(), &[2, 1280]);
    let second = model.forward_features(&input.narrow(0, 1, 1).unwrap()).unwrap();
    let diff: f32 =
        (both.narrow(0, 1, 1).unwrap() - second).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
    assert!(diff < 1e-4, "batch of 2 vs single image: {diff}");
    let values: Vec<f32> = both.flatten_all().unwrap().to_vec1().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
}

/// `len` values from N(0, scale^2).
fn random(len: usize, scale: f32) -> Vec<f32> {
    Tensor::randn(0f32, scale, len, &Device::Cpu).unwrap().to_vec1().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The build is the one the run asked for (the relaxed run's target features took effect), and
/// the page's probe for relaxed SIMD is a module this Chromium validates, and not once an
/// opcode is broken.
#[wasm_bindgen_test]
fn this_is_the_build_asked_for_and_the_relaxed_simd_probe_validates() {
    let expected = option_env!("GRAFT_EXPECT_RELAXED_SIMD").is_some();
    assert_eq!(graft::kernels::built_with_relaxed_simd(), expected);
    console_log!("kernels built with relaxed SIMD: {expected}");
    let validates = |bytes: &[u8]| js_sys::WebAssembly::validate(&js_sys::Uint8Array::from(bytes).into()).unwrap();
    assert!(validates(&graft::kernels::RELAXED_SIMD_PROBE));
    let mut broken = graft::kernels::RELAXED_SIMD_PROBE;
    broken[46] = 0xff; // the relaxed_madd opcode becomes one that does not exist
    assert!(!validates(&broken));
}

#[wasm_bindgen_test]
fn simd_depthwise_matches_its_twin() {
    for (height, width, channels) in [(1, 1, 1), (5, 9, 17), (8, 8, 32), (7, 6, 48), (14, 14, 96)] {
        for window in Window::all_used() {
            let shape = DepthwiseShape { height, width, channels, window };
            let input = random(height * width * channels, 3.0);
            let (taps, bias) = (random(window.taps() * channels, 1.0), random(channels, 1.0));
            let mut out = vec![f32::NAN; shape.out_height() * shape.out_width() * channels];
            depthwise(shape, &input, &taps, &bias, &mut out);
            let diff = max_abs_diff(&out, &depthwise_reference(shape, &input, &taps, &bias));
            assert!(diff < 1e-5, "{shape:?}: {diff}");
        }
    }
}

#[wasm_bindgen_test]
fn simd_relu6_matches_the_scalar_one() {
    for len in [0, 1, 3, 4, 5, 17, 64] {
        let values = random(len, 8.0);
        let mut simd = values.clone();
        relu6_in_place(&mut simd);
        let scalar: Vec<f32> = values.iter().map(|v| relu6(*v)).collect();
        assert_eq!(simd, scalar, "length {len}");
    }
}

#[wasm_bindgen_test]
fn pointwise_matches_its_twin_in_wasm() {
    // Both loop orders (n >= k, n < k), rows past the last 4-row tile, columns past the last 8.
    for (pixels, k, n) in [(7, 3, 5), (49, 160, 960), (196, 24, 144), (50, 320, 96), (13, 9, 20)] {
        let shape = PointwiseShape { pixels, in_channels: k, out_channels: n };
        let (input, weight, bias) = (random(pixels * k, 1.0), random(k * n, 1.0), random(n, 1.0));
        let residual = random(pixels * n, 1.0);
        let mut out = vec![f32::NAN; pixels * n];
        pointwise(shape, &input, &weight, &bias, Some(&residual), true, &mut out);
        let twin = pointwise_reference(shape, &input, &weight, &bias, Some(&residual), true);
        assert!(max_abs_diff(&out, &twin) < 1e-3, "{shape:?}");
    }
}

#[wasm_bindgen_test]
fn folded_backbone_matches_the_candle_one_in_wasm() {
    let model = random_backbone();
    let executor = CpuExecutor::new(std::sync::Arc::new(FoldedPlan::from_backbone(&model).unwrap()));
    let input = Tensor::randn(0f32, 1f32, (1, 3, 224, 224), &Device::Cpu).unwrap();
    let ours: Vec<f32> = executor.features_now(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let twin: Vec<f32> = model.forward_features(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let scale = twin.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(max_abs_diff(&ours, &twin) < 1e-4 * scale, "{}", max_abs_diff(&ours, &twin));
    // A prefix and a suffix give the whole range.
    let map = FeatureMap::from_nchw(&input).unwrap();
    let prefix = executor.run_now(&map, 0..12).unwrap();
    assert_eq!(executor.run_now(&prefix, 12..19).unwrap().pooled(), ours);
}
