//! The GPU kernels, executor and head training natively, on whatever Vulkan adapter exists
//! (Mesa lavapipe in CI, where `GRAFT_REQUIRE_GPU` makes a missing adapter a failure; elsewhere
//! the tests print why they skip): the cases of `common/gpu_cases.rs`, and MobileNetV2's real
//! weights on the reference photos.

#[path = "common/gpu_cases.rs"]
#[macro_use]
mod cases;
mod common;
#[path = "common/backbone.rs"]
mod random;

use std::path::PathBuf;

use candle_core::Device;
use graft::backbone::Architecture;
use graft::classify::ImageNetClassifier;
use graft::embed::block_on;
use graft::exec::BackendKind;
use graft::gpu::BackendChoice;
use graft::manifest::{manifest_file, ModelManifest};
use graft::preprocess::{decode_image, images_to_tensor};

/// Runs a shared case on a fresh context, or skips it (see [`cases::gpu`]).
macro_rules! gpu_cases {
    ($group:ident: $($name:ident),* $(,)?) => {
        mod $group {
            use super::*;
            $(
                #[test]
                fn $name() {
                    if let Some(context) = block_on(cases::gpu()) {
                        block_on(cases::$name(context));
                    }
                }
            )*
        }
    };
}

every_gpu_case!(gpu_cases);

#[test]
fn mobilenet_v2_on_the_gpu_gives_the_cpu_features_and_pytorch_top1_on_reference_photos() {
    backbone_on_the_gpu_matches(Architecture::MobileNetV2, include_str!("fixtures/mobilenet_v2_reference.json"));
}

#[test]
fn efficientnet_lite0_on_the_gpu_gives_the_cpu_features_and_pytorch_top1_on_reference_photos() {
    let reference = include_str!("fixtures/efficientnet_lite0_reference.json");
    backbone_on_the_gpu_matches(Architecture::EfficientNetLite0, reference);
}

/// The architecture's features of the reference photos on the GPU are the CPU executor's, and
/// its top-1 classes PyTorch's (`reference`: the fixture).
fn backbone_on_the_gpu_matches(architecture: Architecture, reference: &str) {
    if block_on(cases::gpu()).is_none() {
        return;
    }
    let dir = common::model_dir();
    let Some(path) = common::require(dir.join(manifest_file(architecture)), "run `cargo xtask setup`") else {
        return;
    };
    let manifest = ModelManifest::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let weights = std::fs::read(dir.join(&manifest.weights)).unwrap();
    let labels = std::fs::read_to_string(dir.join(&manifest.classifier.as_ref().unwrap().labels)).unwrap();
    let classifier = ImageNetClassifier::load(&manifest, weights, &labels, &Device::Cpu).unwrap();
    let status = block_on(classifier.extractor().select_backend(BackendChoice::Webgpu)).unwrap();
    assert_eq!(status.kind, BackendKind::Webgpu);
    #[derive(serde::Deserialize)]
    struct Reference {
        images: Vec<Image>,
    }
    #[derive(serde::Deserialize)]
    struct Image {
        file: String,
        top5: Vec<usize>,
    }
    let reference: Reference = serde_json::from_str(reference).unwrap();
    let mut images = Vec::new();
    for image in &reference.images {
        let Some(path) = common::require(PathBuf::from(&image.file), "install python3-skimage and opencv-doc") else {
            return;
        };
        images.push(decode_image(&image.file, &std::fs::read(path).unwrap()).unwrap());
    }
    let input = images_to_tensor(&images, classifier.extractor().input_spec(), &Device::Cpu).unwrap();
    let on_gpu: Vec<f32> =
        block_on(classifier.extractor().embed_tensor(&input)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let on_cpu: Vec<f32> =
        classifier.extractor().cpu_executor().features_now(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let error = cases::relative_error(&on_gpu, &on_cpu);
    println!("{architecture} features of {} photos, GPU vs CPU: max relative error {error:.2e}", images.len());
    assert!(error <= 1e-3, "{error}");
    assert_eq!(classifier.extractor().executor().status().kind, BackendKind::Webgpu, "no fallback happened");
    let logits = block_on(classifier.logits(&input)).unwrap();
    let top1: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
    for (image, top) in reference.images.iter().zip(top1) {
        assert_eq!(top as usize, image.top5[0], "{}: top-1 differs from PyTorch", image.file);
    }
}
