//! The backbone, its folded plan and the CPU executor: ranges of blocks, the Candle twin,
//! threads; trainable suffixes and parameter groups; embeddings keyed by backbone; trained
//! heads as files.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use graft::backbone::{Architecture, Backbone, BackboneKey};
use graft::embed::block_on;
use graft::embed::EmbeddingCache;
use graft::exec::{CpuExecutor, FeatureMap, FoldedPlan};
use graft::train::{SavedHead, SuffixMode, TrainConfig, TrainData, Trainer};
use graft::GraftError;
use random::random_backbone;

mod common;
#[path = "common/backbone.rs"]
mod random;

fn executor(backbone: &Backbone, threads: usize) -> CpuExecutor {
    let mut executor = CpuExecutor::new(Arc::new(FoldedPlan::from_backbone(backbone).unwrap()));
    executor.set_threads(threads);
    executor
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn a_prefix_then_a_suffix_equals_the_whole_range() {
    let backbone = random_backbone();
    let n = backbone.num_blocks();
    assert_eq!(n, 19);
    let executor = executor(&backbone, 1);
    let x = FeatureMap::from_nchw(&Tensor::randn(0f32, 1.0, (3, 3, 48, 40), &Device::Cpu).unwrap()).unwrap();
    let whole = executor.run_now(&x, 0..n).unwrap();
    assert_eq!((whole.batch, whole.height, whole.width, whole.channels), (3, 2, 2, 1280));
    for k in [0, 1, 5, 17, n] {
        let prefix = executor.run_now(&x, 0..k).unwrap();
        let split = executor.run_now(&prefix, k..n).unwrap();
        assert_eq!(split, whole, "boundary {k}");
    }
    assert!(executor.run_now(&x, 3..n + 1).is_err());
}

#[test]
fn executor_ranges_match_the_candle_blocks() {
    let backbone = random_backbone();
    let executor = executor(&backbone, 1);
    let input = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).unwrap();
    let boundary = backbone.forward_blocks(&input, 0..14).unwrap();
    let ours = executor.run_now(&FeatureMap::from_nchw(&boundary).unwrap(), 14..19).unwrap();
    let twin = backbone.forward_blocks(&boundary, 14..19).unwrap();
    let twin_values = values(&twin);
    let scale = twin_values.iter().fold(1f32, |m, v| m.max(v.abs()));
    let ours_nchw = values(&ours.to_nchw(&Device::Cpu).unwrap());
    assert!(max_abs_diff(&ours_nchw, &twin_values) < 1e-4 * scale);
}

#[test]
fn features_match_the_candle_backbone_over_input_sizes() {
    let backbone = random_backbone();
    let executor = executor(&backbone, 1);
    for (batch, height, width) in [(2, 64, 64), (1, 45, 71), (1, 224, 224)] {
        let x = Tensor::randn(0f32, 1.0, (batch, 3, height, width), &Device::Cpu).unwrap();
        let ours = executor.features_now(&x).unwrap();
        let twin = backbone.forward_features(&x).unwrap();
        assert_eq!(ours.dims(), twin.dims());
        let (ours, twin) = (values(&ours), values(&twin));
        let scale = twin.iter().fold(1f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&ours, &twin);
        assert!(diff < 1e-4 * scale, "{batch}x{height}x{width}: {diff} (scale {scale})");
        let pooled = executor.run_now(&FeatureMap::from_nchw(&x).unwrap(), 0..19).unwrap().pooled();
        assert!(max_abs_diff(&pooled, &ours) < 1e-6 * scale);
    }
}

#[test]
fn threads_share_a_batch_without_changing_its_results() {
    let backbone = random_backbone();
    let x = Tensor::randn(0f32, 1.0, (7, 3, 40, 48), &Device::Cpu).unwrap();
    let alone = executor(&backbone, 1);
    let features = values(&alone.features_now(&x).unwrap());
    let map = FeatureMap::from_nchw(&x).unwrap();
    let prefix = alone.run_now(&map, 0..9).unwrap();
    for threads in [2, 3, 8] {
        let shared = executor(&backbone, threads);
        assert_eq!(values(&shared.features_now(&x).unwrap()), features, "{threads} threads");
        assert_eq!(shared.run_now(&map, 0..9).unwrap(), prefix, "{threads} threads");
    }
}

/// Boundary activations entering block 17 for `n` random images, and labels 0, 1, 0, 1, ...
fn boundary_data(backbone: &Backbone, n: usize) -> TrainData {
    let images = Tensor::randn(0f32, 1.0, (n, 3, 32, 32), &Device::Cpu).unwrap();
    let inputs = backbone.forward_blocks(&images, 0..17).unwrap().permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
    let labels = (0..n).map(|i| i % 2).collect();
    TrainData::new(inputs, labels, vec!["a".into(), "b".into()])
}

#[test]
fn a_folded_suffix_scores_as_its_training_ops_do() {
    // The trainer scores unfrozen blocks through the fast executor on their current weights.
    let backbone = random_backbone();
    let suffix = backbone.trainable_suffix(14).unwrap();
    let x = Tensor::randn(0f32, 1.0, (3, 14, 14, 96), &Device::Cpu).unwrap();
    let want = values(&suffix.forward_features(&x).unwrap());
    let plan = FoldedPlan::from_blocks(suffix.blocks()).unwrap();
    let got = values(&CpuExecutor::new(Arc::new(plan)).pooled_nhwc(&x).unwrap());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max_abs_diff(&got, &want) <= 1e-4 * scale, "{} vs scale {scale}", max_abs_diff(&got, &want));
}

#[test]
fn the_blocks_join_after_the_head_stage_and_a_head_stage_best_restores_them() {
    let backbone = random_backbone();
    let suffix = backbone.trainable_suffix(17).unwrap();
    let before = suffix_values(&suffix);
    let config = TrainConfig { epochs: 3, batch_size: 8, val_fraction: 0.0, ..Default::default() };
    let mut trainer =
        Trainer::with_suffix(boundary_data(&backbone, 8), config, suffix.clone(), SuffixMode::Frozen).unwrap();
    assert_eq!(trainer.suffix_mode(), Some(SuffixMode::Frozen));
    block_on(trainer.run_epoch()).unwrap();
    assert_eq!(suffix_values(&suffix), before, "the blocks moved in the head stage");
    trainer.set_suffix_mode(SuffixMode::Trainable).unwrap();
    block_on(trainer.run_epoch()).unwrap();
    assert!(before.iter().zip(&suffix_values(&suffix)).any(|((_, old), (_, new))| max_abs_diff(old, new) > 0.0));
    // Back to head-only: the blocks stop moving again.
    trainer.set_suffix_mode(SuffixMode::Frozen).unwrap();
    let tuned = suffix_values(&suffix);
    block_on(trainer.run_epoch()).unwrap();
    assert_eq!(suffix_values(&suffix), tuned);
    let trained = block_on(trainer.finish()).unwrap();
    // Whichever epoch was best, the saved blocks are the ones it ran with.
    let expected = if trained.report.best_epoch == 1 { &before } else { &tuned };
    assert_eq!(&suffix_values(trained.suffix().unwrap()), expected, "best epoch {}", trained.report.best_epoch);
    let mut plain = Trainer::new(
        TrainData::new(
            Tensor::zeros((4, 1280), candle_core::DType::F32, &Device::Cpu).unwrap(),
            vec![0, 1, 0, 1],
            vec!["a".into(), "b".into()],
        ),
        TrainConfig::default(),
    )
    .unwrap();
    assert!(plain.set_suffix_mode(SuffixMode::Trainable).is_err(), "a head-only run has no blocks to unfreeze");
}

fn suffix_values(suffix: &graft::backbone::TrainableSuffix) -> Vec<(String, Vec<f32>)> {
    suffix.vars().iter().map(|(name, var)| (name.clone(), values(var.as_tensor()))).collect()
}

#[test]
fn the_last_two_blocks_learn_only_when_their_group_is_trainable() {
    let backbone = random_backbone();
    let suffix = backbone.trainable_suffix(17).unwrap();
    let names: Vec<&str> = suffix.vars().iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"features.17.conv.0.0.weight") && names.contains(&"features.18.1.bias"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("running")), "BN statistics are not trainable");
    // Loaded, not re-initialised: the suffix computes what the pretrained blocks compute.
    let probe = boundary_data(&backbone, 2).inputs;
    let probe_nchw = probe.permute((0, 3, 1, 2)).unwrap();
    let pretrained = values(&backbone.forward_blocks(&probe_nchw, 17..19).unwrap().mean((2, 3)).unwrap());
    let scale = pretrained.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(max_abs_diff(&values(&suffix.forward_features(&probe).unwrap()), &pretrained) < 1e-5 * scale);
    let before = suffix_values(&suffix);
    let config = TrainConfig { epochs: 1, batch_size: 8, val_fraction: 0.0, ..Default::default() };

    let data = boundary_data(&backbone, 8);
    let mut head_only = Trainer::with_suffix(data, config.clone(), suffix.clone(), SuffixMode::Frozen).unwrap();
    block_on(head_only.run_epoch()).unwrap();
    assert_eq!(suffix_values(&suffix), before, "a frozen suffix moved");

    let data = boundary_data(&backbone, 8);
    let mut both = Trainer::with_suffix(data, config, suffix.clone(), SuffixMode::Trainable).unwrap();
    block_on(both.run_epoch()).unwrap();
    for ((name, old), (_, new)) in before.iter().zip(&suffix_values(&suffix)) {
        assert!(max_abs_diff(old, new) > 0.0, "{name} did not move");
    }
    // The backbone the suffix was copied from is untouched.
    let again = values(&backbone.forward_blocks(&probe_nchw, 17..19).unwrap().mean((2, 3)).unwrap());
    assert!(max_abs_diff(&again, &pretrained) < 1e-5 * scale);
}

fn key(sha: &str) -> BackboneKey {
    BackboneKey { architecture: Architecture::MobileNetV2, weights_sha256: sha.into() }
}

#[test]
fn an_embedding_cache_refuses_features_of_another_backbone() {
    let mut cache = EmbeddingCache::new(key("aaaa"), 3);
    cache.insert(&key("aaaa"), 1, vec![1.0, 2.0, 3.0]).unwrap();
    let err = cache.insert(&key("bbbb"), 2, vec![1.0, 2.0, 3.0]).unwrap_err();
    assert!(matches!(err, GraftError::BackboneMismatch { .. }), "{err}");
    assert!(cache.insert(&key("aaaa"), 2, vec![1.0]).is_err(), "a row of the wrong width");
    let mut other = EmbeddingCache::new(key("bbbb"), 3);
    other.insert(&key("bbbb"), 5, vec![0.0; 3]).unwrap();
    assert!(cache.merge(other).is_err());
    let json = serde_json::to_string(&cache).unwrap();
    let back: EmbeddingCache = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cache);
    assert_eq!(back.ids().collect::<Vec<_>>(), vec![1]);
}

#[test]
fn a_saved_head_restores_the_same_predictions_and_checks_its_backbone() {
    let features = Tensor::randn(0f32, 1.0, (12, 1280), &Device::Cpu).unwrap();
    let labels: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let class_names: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
    let data = TrainData::new(features.clone(), labels, class_names.clone());
    let config = TrainConfig { epochs: 2, hidden: 5, ..Default::default() };
    let mut trainer = Trainer::new(data, config).unwrap();
    block_on(trainer.run_epoch()).unwrap();
    let trained = block_on(trainer.finish()).unwrap();
    let saved = SavedHead::new(&trained, key("aaaa"), class_names).unwrap();
    let backbone = random_backbone();
    let restored = saved.restore(&key("aaaa"), &backbone, &Device::Cpu).unwrap();
    assert_eq!(values(&restored.predict(&features).unwrap()), values(&trained.predict(&features).unwrap()));
    assert_eq!(restored.report, trained.report);
    assert!(restored.suffix().is_none());
    let other = saved.restore(&key("bbbb"), &backbone, &Device::Cpu);
    assert!(matches!(other, Err(GraftError::BackboneMismatch { .. })));
    let mut broken = saved.clone();
    broken.safetensors.truncate(20);
    assert!(matches!(broken.restore(&key("aaaa"), &backbone, &Device::Cpu), Err(GraftError::BadFile { .. })));
    // A head for features of another width is refused, not run into a shape error later.
    let narrow = TrainData::new(
        features.narrow(1, 0, 6).unwrap().contiguous().unwrap(),
        (0..12).map(|i| i % 3).collect(),
        saved.class_names.clone(),
    );
    let mut trainer = Trainer::new(narrow, TrainConfig { epochs: 1, hidden: 5, ..Default::default() }).unwrap();
    block_on(trainer.run_epoch()).unwrap();
    let narrow = SavedHead::new(&block_on(trainer.finish()).unwrap(), key("aaaa"), saved.class_names.clone()).unwrap();
    let err = narrow.restore(&key("aaaa"), &backbone, &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("its head takes 6 features, the backbone gives 1280"), "{err}");
}

/// A file of `tests/fixtures/saved/` (`tests/reference/make_saved_files.py`: one of each shape
/// Graft has saved a model in). A `.header` file is a safetensors header alone: the zeros its
/// offsets cover are appended.
fn saved_file(name: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(common::manifest_dir().join("tests/fixtures/saved").join(name)).unwrap();
    if name.ends_with(".header") {
        let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
        let end = header.values().filter_map(|t| t["data_offsets"][1].as_u64()).max().unwrap();
        bytes.resize(8 + length + end as usize, 0);
    }
    bytes
}

fn saved_head(safetensors: Vec<u8>, classes: usize) -> SavedHead {
    let report: graft::train::TrainReport = serde_json::from_value(serde_json::json!({
        "epochs_run": 1, "best_epoch": 1, "val_accuracy": 1.0, "per_class_accuracy": vec![1.0; classes],
        "confusion": {"counts": vec![vec![0; classes]; classes]}, "train_samples": 2, "val_samples": 2
    }))
    .unwrap();
    let class_names = (0..classes).map(|i| format!("class {i}")).collect();
    SavedHead { backbone: key("aaaa"), class_names, report, safetensors }
}

/// Every shape a model was saved in so far is read by today's readers, through one validator.
#[test]
fn every_older_saved_model_shape_is_still_read() {
    let backbone = random_backbone();
    let features = Tensor::randn(0f32, 1.0, (2, 1280), &Device::Cpu).unwrap();
    // A bare head, as `graft train --save` wrote it before model files and a project keeps it.
    let bare = saved_head(saved_file("head-bare-hidden.safetensors"), 3);
    let head = bare.restore(&key("aaaa"), &backbone, &Device::Cpu).unwrap();
    assert_eq!(head.head().spec(), graft::model::MlpHeadSpec { in_dim: 1280, hidden: 4, classes: 3 });
    assert_eq!(head.to_safetensors().unwrap(), bare.safetensors, "the values come back as saved");
    let probabilities = values(&head.predict(&features).unwrap());
    assert!(probabilities.iter().all(|p| p.is_finite() && *p > 0.0));
    // Fine-tuned blocks saved before their batch-norm statistics were: the pretrained ones.
    let old = saved_head(saved_file("finetuned-no-stats.header"), 2);
    let head = old.restore(&key("aaaa"), &backbone, &Device::Cpu).unwrap();
    let tuned = head.suffix().expect("the fine-tuned block comes back");
    assert_eq!(tuned.first_block(), 18);
    let pretrained = backbone.trainable_suffix(18).unwrap();
    for ((name, var), (_, original)) in tuned.tensors().zip(pretrained.tensors()) {
        let expected =
            if name.contains("running_") { values(original.as_tensor()) } else { vec![0.0; var.elem_count()] };
        assert_eq!(values(var.as_tensor()), expected, "{name}");
    }
    // A model file of version 1 (its report has no `kept_final`), fine-tuned.
    let file = graft::train::ModelFile::parse("v1.safetensors", saved_file("model-v1-finetuned.header")).unwrap();
    assert_eq!(file.meta.classes, ["cat", "dog"]);
    assert!(!file.meta.report.kept_final);
    let head = file.restore(&key("aaaa"), &backbone, &Device::Cpu).unwrap();
    assert_eq!(head.suffix().map(|s| s.first_block()), Some(18));
    // A .graft file as the first project files were (no adaptation, checks or target bin).
    let bytes = saved_file("project-v1.graft");
    let archive = graft::project::archive::read_archive("old.graft", &bytes, &Default::default()).unwrap();
    assert_eq!(archive.name, "Old lesson");
    assert_eq!(archive.images.len(), 2);
    assert!(!archive.project.settings.adapt.enabled && archive.project.target.is_none());
    let saved = archive.project.head.as_ref().unwrap();
    let head = saved.restore(&key("aaaa"), &backbone, &Device::Cpu).unwrap();
    assert_eq!(head.head().spec().classes, 2);
}

/// A tensor of a safetensors file, to edit: dtype, shape, bytes.
type OwnedTensor = (safetensors::Dtype, Vec<usize>, Vec<u8>);

/// The one validator refuses what no Graft ever wrote, in every reader, with the same words.
#[test]
fn a_weights_file_that_graft_never_wrote_is_refused_by_every_reader() {
    let backbone = random_backbone();
    let bare = saved_file("head-bare-hidden.safetensors");
    let tensors = safetensors::SafeTensors::deserialize(&bare).unwrap();
    let rewritten = |edit: &dyn Fn(&str, &mut OwnedTensor)| {
        let mut owned: Vec<(String, OwnedTensor)> = tensors
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
            .collect();
        owned.iter_mut().for_each(|(name, tensor)| edit(name, tensor));
        let views: Vec<(String, safetensors::tensor::TensorView)> = owned
            .iter()
            .map(|(n, (d, s, b))| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    };
    let half = rewritten(&|name, tensor| {
        if name == "output.bias" {
            *tensor = (safetensors::Dtype::F16, vec![3], tensor.2[..6].to_vec());
        }
    });
    let wide = rewritten(&|name, tensor| {
        if name == "hidden.bias" {
            *tensor = (safetensors::Dtype::F32, vec![5], [tensor.2.clone(), vec![0; 4]].concat());
        }
    });
    for (bytes, expected) in [(half, "tensor output.bias is F16, not F32"), (wide, "tensor hidden.bias has shape [5]")]
    {
        let err = saved_head(bytes, 3).restore(&key("aaaa"), &backbone, &Device::Cpu).err().unwrap();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn a_saved_fine_tuned_model_restores_its_blocks() {
    let backbone = random_backbone();
    let suffix = backbone.trainable_suffix(17).unwrap();
    let config = TrainConfig { epochs: 1, batch_size: 8, val_fraction: 0.0, ..Default::default() };
    let mut trainer = Trainer::with_suffix(boundary_data(&backbone, 8), config, suffix, SuffixMode::Trainable).unwrap();
    block_on(trainer.run_epoch()).unwrap();
    let trained = block_on(trainer.finish()).unwrap();
    let saved = SavedHead::new(&trained, key("aaaa"), vec!["a".into(), "b".into()]).unwrap();
    let restored = saved.restore(&key("aaaa"), &backbone, &Device::Cpu).unwrap();
    let tuned = restored.suffix().expect("the fine-tuned blocks come back");
    assert_eq!(tuned.first_block(), 17);
    assert_eq!(suffix_values(tuned), suffix_values(trained.suffix().unwrap()));
    let probe = boundary_data(&backbone, 3).inputs;
    let (a, b) = (tuned.forward_features(&probe).unwrap(), trained.suffix().unwrap().forward_features(&probe).unwrap());
    assert_eq!(values(&restored.predict(&a).unwrap()), values(&trained.predict(&b).unwrap()));
    // Blocks that are not a suffix of this backbone are refused, by file.
    let mut tensors = candle_core::safetensors::load_buffer(&saved.safetensors, &Device::Cpu).unwrap();
    tensors.retain(|name, _| !name.starts_with("features.18."));
    let path = std::env::temp_dir().join(format!("graft-odd-{}.safetensors", std::process::id()));
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let mut odd = saved.clone();
    odd.safetensors = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = odd.restore(&key("aaaa"), &backbone, &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("are not the last blocks"), "{err}");
}

#[test]
fn the_freeze_picture_names_every_block_with_its_output_and_parameters() {
    let infos = random_backbone().block_infos();
    assert_eq!(infos.len(), 19);
    let names: Vec<String> = (0..19).map(|i| format!("features.{i}")).collect();
    assert_eq!(infos.iter().map(|b| b.name.clone()).collect::<Vec<_>>(), names);
    assert_eq!(infos[0].output, [112, 112, 32]);
    assert_eq!(infos[17].output, [7, 7, 320]);
    assert_eq!(infos[18].output, [7, 7, 1280]);
    // torchvision's mobilenet_v2().features has 2,223,872 parameters.
    assert_eq!(infos.iter().map(|b| b.parameters).sum::<usize>(), 2_223_872);
}
