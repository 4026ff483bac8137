//! Each backbone against PyTorch: logits for real photos, written with Debian's python3-torch
//! by `tests/reference/make_fixtures.py` (MobileNetV2, torchvision's model) and
//! `tests/reference/efficientnet_lite_reference.py` (EfficientNet-Lite0, its reference
//! implementation there). The logits come through the fast executor; the Candle model (the
//! path fine-tuning differentiates) is checked against it on the same photos.

mod common;

use std::path::PathBuf;

use candle_core::Device;
use graft::backbone::Architecture;
use graft::classify::ImageNetClassifier;
use graft::embed::block_on;
use graft::manifest::{manifest_file, ModelManifest};
use graft::preprocess::{decode_image, image_to_chw, images_to_tensor};
use serde::Deserialize;

/// The fixture of each architecture.
fn reference(architecture: Architecture) -> Reference {
    let text = match architecture {
        Architecture::MobileNetV2 => include_str!("fixtures/mobilenet_v2_reference.json"),
        Architecture::EfficientNetLite0 => include_str!("fixtures/efficientnet_lite0_reference.json"),
    };
    serde_json::from_str(text).unwrap()
}

#[derive(Deserialize)]
struct Reference {
    images: Vec<ReferenceImage>,
}

#[derive(Deserialize)]
struct ReferenceImage {
    file: String,
    input_mean: f32,
    input_corner: Vec<f32>,
    top5: Vec<usize>,
    logits: Vec<f32>,
}

fn classifier(architecture: Architecture) -> Option<ImageNetClassifier> {
    let dir = common::model_dir();
    let manifest_path = common::require(dir.join(manifest_file(architecture)), "run `cargo xtask setup`")?;
    let manifest = ModelManifest::from_json(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let weights = std::fs::read(dir.join(&manifest.weights)).unwrap();
    let labels = std::fs::read_to_string(dir.join(&manifest.classifier.as_ref().unwrap().labels)).unwrap();
    Some(ImageNetClassifier::load(&manifest, weights, &labels, &Device::Cpu).unwrap())
}

fn top5(logits: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    order.truncate(5);
    order
}

/// PNGs decode to the same pixels in PIL and in the engine: those test the model itself.
/// JPEG decoders (libjpeg-turbo vs zune-jpeg) differ by a level here and there: those test the
/// whole path with a bound that allows for that.
fn tolerances(file: &str) -> (f32, f32) {
    if file.ends_with(".png") {
        (1e-4, 1e-3) // (input mean, logits)
    } else {
        (1e-2, 0.25)
    }
}

/// Every reference photo through `architecture`'s classifier: the input tensor and the logits
/// match PyTorch's, and the top-5 classes are the same.
fn logits_match_pytorch(architecture: Architecture) {
    let Some(classifier) = classifier(architecture) else { return };
    let reference = reference(architecture);
    assert!(reference.images.iter().filter(|i| i.file.ends_with(".png")).count() >= 4);
    for image in &reference.images {
        let Some(path) = common::require(PathBuf::from(&image.file), "install python3-skimage and opencv-doc") else {
            continue;
        };
        let (mean_tolerance, logit_tolerance) = tolerances(&image.file);
        let bytes = std::fs::read(&path).unwrap();
        let rgb = decode_image(&image.file, &bytes).unwrap();
        let chw = image_to_chw(&rgb, classifier.extractor().input_spec());
        let mean = chw.iter().sum::<f32>() / chw.len() as f32;
        assert!(
            (mean - image.input_mean).abs() < mean_tolerance,
            "{}: input mean {mean} vs {}",
            image.file,
            image.input_mean
        );
        for c in 0..3 {
            let corner = chw[c * 224 * 224];
            assert!((corner - image.input_corner[c]).abs() < 10.0 * mean_tolerance, "{}: corner {c}", image.file);
        }
        let input = images_to_tensor(&[rgb], classifier.extractor().input_spec(), &Device::Cpu).unwrap();
        let logits: Vec<f32> = block_on(classifier.logits(&input)).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        let max_diff = logits.iter().zip(&image.logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{architecture} {}: max |logit diff| = {max_diff:.2e} (bound {logit_tolerance:.0e})", image.file);
        assert_eq!(top5(&logits), image.top5, "{}: top-5 differs", image.file);
        assert!(max_diff <= logit_tolerance, "{}: max |logit diff| {max_diff}", image.file);
    }
}

#[test]
fn mobilenet_v2_logits_match_pytorch_on_real_photos() {
    logits_match_pytorch(Architecture::MobileNetV2);
}

#[test]
fn efficientnet_lite0_logits_match_pytorch_on_real_photos() {
    logits_match_pytorch(Architecture::EfficientNetLite0);
}

/// The Candle model (TensorFlow's asymmetric padding included) gives the executor's features.
#[test]
fn efficientnet_lite0_in_candle_matches_the_executor() {
    let Some(classifier) = classifier(Architecture::EfficientNetLite0) else { return };
    let Some(path) = common::require(
        PathBuf::from("/usr/lib/python3/dist-packages/skimage/data/coffee.png"),
        "install python3-skimage",
    ) else {
        return;
    };
    let rgb = decode_image("coffee.png", &std::fs::read(path).unwrap()).unwrap();
    let extractor = classifier.extractor();
    let input = images_to_tensor(&[rgb], extractor.input_spec(), &Device::Cpu).unwrap();
    let fast: Vec<f32> = block_on(extractor.embed_tensor(&input)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let candle: Vec<f32> =
        extractor.backbone().forward_features(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let scale = candle.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = fast.iter().zip(&candle).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4 * scale, "features differ by {diff} (scale {scale})");
}

#[test]
fn chelsea_is_an_egyptian_cat() {
    let Some(classifier) = classifier(Architecture::MobileNetV2) else { return };
    let Some(path) = common::require(
        PathBuf::from("/usr/lib/python3/dist-packages/skimage/data/chelsea.png"),
        "install python3-skimage",
    ) else {
        return;
    };
    let rgb = decode_image("chelsea.png", &std::fs::read(path).unwrap()).unwrap();
    let top = block_on(classifier.top_k(&[rgb], 5)).unwrap().remove(0);
    assert_eq!(top[0].label, "Egyptian cat");
    assert!((top[0].prob - 0.72).abs() < 0.01, "{}", top[0].prob);
    assert!(top.windows(2).all(|w| w[0].prob >= w[1].prob));
}

#[test]
fn tampered_weights_are_refused_by_checksum() {
    let dir = common::model_dir();
    let Some(manifest_path) =
        common::require(dir.join(manifest_file(Architecture::MobileNetV2)), "run `cargo xtask setup`")
    else {
        return;
    };
    let manifest = ModelManifest::from_json(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let mut weights = std::fs::read(dir.join(&manifest.weights)).unwrap();
    let last = weights.len() - 1;
    weights[last] ^= 1;
    let labels = std::fs::read_to_string(dir.join(&manifest.classifier.as_ref().unwrap().labels)).unwrap();
    let err = ImageNetClassifier::load(&manifest, weights, &labels, &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("checksum mismatch for mobilenet_v2.safetensors"), "{err}");
}
