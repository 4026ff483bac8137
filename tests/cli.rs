//! The `graft` binary as a user runs it: classify (text, JSON, bad files) and train.

mod common;

use std::path::PathBuf;
use std::process::Command;

const CHELSEA: &str = "/usr/lib/python3/dist-packages/skimage/data/chelsea.png";
const COFFEE: &str = "/usr/lib/python3/dist-packages/skimage/data/coffee.png";

fn ready() -> bool {
    common::require(
        common::model_dir().join(graft::manifest::manifest_file(graft::backbone::Architecture::DEFAULT)),
        "run `cargo xtask setup`",
    )
    .is_some()
        && common::require(PathBuf::from(CHELSEA), "install python3-skimage").is_some()
}

/// The JSON lines a successful run printed (fails the test, with stderr, if it failed).
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn graft(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_graft")).args(args).output().unwrap()
}

/// Whether a GPU adapter exists here (lavapipe in CI, where `GRAFT_REQUIRE_GPU` makes a
/// missing one a failure); prints why not.
fn gpu_here() -> bool {
    match graft::embed::block_on(graft::gpu::GpuContext::request(true)) {
        Ok(_) => true,
        Err(e) if std::env::var_os("GRAFT_REQUIRE_GPU").is_some() => panic!("GRAFT_REQUIRE_GPU is set, but {e}"),
        Err(e) => {
            eprintln!("SKIPPED the webgpu runs: {e}");
            false
        }
    }
}

/// The backends to run the CLI with: the CPU, and WebGPU where an adapter exists.
fn backends() -> Vec<&'static str> {
    if gpu_here() {
        vec!["cpu", "webgpu"]
    } else {
        vec!["cpu"]
    }
}

#[test]
fn classify_json_puts_egyptian_cat_first() {
    if !ready() {
        return;
    }
    for backend in backends() {
        classify_chelsea(backend);
    }
}

#[test]
fn an_unknown_backend_is_refused_with_the_choices() {
    let out = graft(&["classify", CHELSEA, "--backend", "cuda"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use auto, cpu or webgpu"));
}

fn classify_chelsea(backend: &str) {
    let out = graft(&["classify", CHELSEA, "--json", "--backend", backend]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = if backend == "cpu" { "on CPU" } else { "on WebGPU · " };
    assert!(stderr.contains(expected), "{backend}: {stderr}");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["file"], CHELSEA);
    let top5 = results[0]["top5"].as_array().unwrap();
    assert_eq!(top5.len(), 5);
    assert_eq!(top5[0]["label"], "Egyptian cat");
    assert_eq!(top5[0]["index"], 285);
    assert!((top5[0]["prob"].as_f64().unwrap() - 0.72).abs() < 0.01);
}

#[test]
fn bad_files_are_named_and_exit_non_zero() {
    if !ready() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("graft-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    let text = text.to_str().unwrap();
    let out = graft(&["classify", CHELSEA, text, "/no/such/photo.jpg"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.txt is not an image"), "{stderr}");
    assert!(stderr.contains("/no/such/photo.jpg"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The good image is still classified.
    assert!(String::from_utf8_lossy(&out.stdout).contains("Egyptian cat"));
}

#[test]
fn train_prints_epochs_and_a_final_report() {
    if !ready() {
        return;
    }
    let mut runs = Vec::new();
    for backend in backends() {
        runs.push(train_on_five_crops(backend));
    }
    // The same data and seed reach the same losses on the GPU (its features agree with the
    // CPU's to ~1e-6, and the head trains with the same batches, masks and optimizer).
    if let [cpu, webgpu] = &runs[..] {
        for (a, b) in cpu.iter().zip(webgpu).take(5) {
            let (a, b) = (a["val_loss"].as_f64().unwrap(), b["val_loss"].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1e-3), "val loss CPU {a} vs WebGPU {b}");
        }
    }
}

#[test]
fn train_unfreezes_the_last_blocks_after_the_head_epochs_and_saves_them() {
    if !ready() {
        return;
    }
    let dir = five_crops_each("unfreeze");
    let head = dir.join("tuned.safetensors");
    let out = graft(&[
        "train",
        dir.to_str().unwrap(),
        "--epochs",
        "4",
        "--unfreeze",
        "2",
        "--head-epochs",
        "2",
        "--val-fraction",
        "0.2",
        "--json",
        "--save",
        head.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    let lines = json_lines(&out);
    let stages: Vec<&str> = lines[..4].iter().map(|l| l["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["head", "head", "fine-tune", "fine-tune"]);
    assert_eq!(lines[4]["unfreeze"], 2);
    assert_eq!(lines[4]["val_accuracy"], 1.0, "{}", lines[4]);
    let saved = std::fs::read(&head).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&saved).unwrap();
    let names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
    assert!(names.iter().any(|n| n == "output.weight"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("features.17.")) && names.iter().any(|n| n.starts_with("features.18.")));
    assert!(!names.iter().any(|n| n.starts_with("features.16.")), "only the unfrozen blocks are saved");
    let (_, header) = safetensors::SafeTensors::read_metadata(&saved).unwrap();
    let metadata = header.metadata().clone().unwrap();
    assert_eq!(metadata["graft.fine_tuned_blocks"], "[17,18]");
    assert_eq!(metadata["graft.classes"], r#"["cat","coffee"]"#);
    predict_with_saved_model(&dir, &head);
    let out = graft(&["train", dir.to_str().unwrap(), "--unfreeze", "40"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unfrozen blocks must be between 0 and 19"));
    // Augmented views are cached per sample, as many as the cache budget allows (at most 4).
    let out = graft(&["train", dir.to_str().unwrap(), "--epochs", "2", "--augment", "--json", "--backend", "cpu"]);
    let last = json_lines(&out).pop().unwrap();
    assert_eq!(last["augmented_views"], 4, "{last}");
    let images = last["images"].as_u64().unwrap();
    assert_eq!(last["cache_bytes"].as_u64().unwrap(), 5 * images * 1280 * 4, "plain rows and four views of features");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two classes of real photos, with a few crops of each as samples, in a fresh folder.
fn five_crops_each(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("graft-train-{}-{tag}", std::process::id()));
    for (class, photo) in [("cat", CHELSEA), ("coffee", COFFEE)] {
        let folder = dir.join(class);
        std::fs::create_dir_all(&folder).unwrap();
        let image = image::open(photo).unwrap();
        for i in 0..5u32 {
            let crop = image.crop_imm(i * 20, i * 10, image.width() - 100, image.height() - 60);
            crop.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
    dir
}

/// `graft train` on two classes of five crops; returns its JSON lines.
fn train_on_five_crops(backend: &str) -> Vec<serde_json::Value> {
    let dir = five_crops_each(backend);
    std::fs::write(dir.join("cat/broken.jpg"), b"not really a jpeg").unwrap();
    let head = dir.join("head.safetensors");
    let out = graft(&[
        "train",
        dir.to_str().unwrap(),
        "--epochs",
        "5",
        "--val-fraction",
        "0.2",
        "--json",
        "--save",
        head.to_str().unwrap(),
        "--backend",
        backend,
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 6);
    for (i, epoch) in lines[..5].iter().enumerate() {
        assert_eq!(epoch["epoch"], i + 1);
        for key in ["train_loss", "train_accuracy", "val_loss", "val_accuracy"] {
            assert!(epoch[key].is_number(), "{key} in {epoch}");
        }
    }
    let last = &lines[5];
    assert_eq!(last["final"], true);
    assert_eq!(last["classes"], serde_json::json!(["cat", "coffee"]));
    assert_eq!(last["images"], 10);
    assert_eq!(last["skipped"], 1);
    assert_eq!(last["val_accuracy"], 1.0);
    assert_eq!(last["per_class_accuracy"]["cat"], 1.0);
    assert_eq!(last["confusion"], serde_json::json!([[1, 0], [0, 1]]));
    // The same head on raw pixels, same split and seed: what the data is worth without transfer.
    let baseline = last["baseline_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&baseline), "{last}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.jpg"));
    if backend == "cpu" {
        predict_with_saved_model(&dir, &head);
        refuse_broken_models(&dir, &std::fs::read(&head).unwrap());
    }
    let ran_on = if backend == "cpu" { "CPU" } else { "WebGPU · " };
    assert!(last["backend"]["embedding"].as_str().unwrap().starts_with(ran_on), "{last}");
    assert!(last["backend"]["training"].as_str().unwrap().starts_with(ran_on), "{last}");
    std::fs::remove_dir_all(&dir).unwrap();
    lines
}

/// `graft predict` on a model `graft train --save` wrote: every class, most likely first, the
/// right one on top for a photo of each class; an unreadable image fails alone.
fn predict_with_saved_model(dir: &std::path::Path, model: &std::path::Path) {
    let (cat, coffee) = (dir.join("cat/0.png"), dir.join("coffee/0.png"));
    let out = graft(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--backend",
        "cpu",
        cat.to_str().unwrap(),
        coffee.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (result, label) in results.as_array().unwrap().iter().zip(["cat", "coffee"]) {
        let predictions = result["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 2, "{result}");
        assert_eq!(predictions[0]["label"], label, "{result}");
        let (first, second) = (predictions[0]["prob"].as_f64().unwrap(), predictions[1]["prob"].as_f64().unwrap());
        assert!(first >= second && (first + second - 1.0).abs() < 1e-4, "{result}");
    }
    let broken = dir.join("cat/broken.jpg");
    std::fs::write(&broken, b"not really a jpeg").unwrap();
    let out = graft(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--json",
        cat.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(results[0]["predictions"].is_array() && results[1]["error"].as_str().unwrap().contains("broken.jpg"));
}

/// A copy of a model file with its metadata changed by `edit`.
fn with_metadata(model: &[u8], edit: impl FnOnce(&mut std::collections::HashMap<String, String>)) -> Vec<u8> {
    let tensors = safetensors::SafeTensors::deserialize(model).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(model).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    edit(&mut metadata);
    safetensors::serialize(tensors.tensors(), Some(metadata)).unwrap()
}

/// A corrupt model, one for another backbone and one whose shapes disagree with its metadata
/// are each refused with a message naming the file.
fn refuse_broken_models(dir: &std::path::Path, model: &[u8]) {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", model[..model.len() / 2].to_vec(), "not a safetensors file"),
        ("empty", Vec::new(), "empty"),
        (
            "other-backbone",
            with_metadata(model, |m| {
                m.insert("graft.backbone_sha256".into(), "0".repeat(64));
            }),
            "trained on the features of mobilenet_v2@00000000",
        ),
        (
            "wrong-shape",
            with_metadata(model, |m| {
                m.insert("graft.head".into(), r#"{"in_dim":1280,"hidden":50,"classes":2}"#.into());
            }),
            "tensor hidden.weight has shape [100, 1280], its metadata says [50, 1280]",
        ),
        ("no-metadata", with_metadata(model, |m| m.clear()), "does not say it is a Graft model"),
    ];
    let image = dir.join("cat/0.png");
    for (name, bytes, expected) in cases {
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let out = graft(&["predict", "--model", path.to_str().unwrap(), image.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert!(stderr.contains(&format!("{} is not a usable Graft model", path.display())), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

/// Whether EfficientNet-Lite0 is in the model folder (`cargo xtask setup` puts it there).
fn lite0_ready() -> bool {
    let manifest = graft::manifest::manifest_file(graft::backbone::Architecture::EfficientNetLite0);
    ready() && common::require(common::model_dir().join(manifest), "run `cargo xtask setup`").is_some()
}

#[test]
fn rank_scores_every_backbone_with_logme_best_first() {
    if !lite0_ready() {
        return;
    }
    let dir = five_crops_each("rank");
    let out = graft(&["rank", dir.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ranked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranked = ranked.as_array().unwrap();
    let mut backbones: Vec<&str> = ranked.iter().map(|r| r["backbone"].as_str().unwrap()).collect();
    backbones.sort();
    assert_eq!(backbones, ["efficientnet_lite0", "mobilenet_v2"]);
    for r in ranked {
        assert_eq!(r["images"], 10);
        assert!(r["logme"].as_f64().unwrap().is_finite() && r["seconds"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(ranked[0]["logme"].as_f64() >= ranked[1]["logme"].as_f64(), "best first");
    let out = graft(&["rank", dir.to_str().unwrap(), "--json", "--backbone", "mobilenet_v2"]);
    let only: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn efficientnet_lite0_classifies_trains_fine_tunes_and_predicts_from_the_cli() {
    if !lite0_ready() {
        return;
    }
    let out = graft(&["classify", COFFEE, "--json", "--backbone", "efficientnet_lite0", "--backend", "cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["top5"][0]["label"], "espresso", "{results}");
    let dir = five_crops_each("lite0");
    let model = dir.join("lite0.safetensors");
    let args = ["--epochs", "3", "--unfreeze", "2", "--head-epochs", "1", "--val-fraction", "0.2", "--json"];
    let mut train = vec!["train", dir.to_str().unwrap(), "--backbone", "efficientnet_lite0", "--backend", "cpu"];
    train.extend(args);
    train.extend(["--save", model.to_str().unwrap()]);
    let last = json_lines(&graft(&train)).pop().unwrap();
    assert_eq!(last["val_accuracy"], 1.0, "{last}");
    let saved = std::fs::read(&model).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&saved).unwrap();
    let metadata = header.metadata().clone().unwrap();
    assert_eq!(metadata["graft.backbone"], "efficientnet_lite0");
    assert_eq!(metadata["graft.fine_tuned_blocks"], "[16,17]");
    // `predict` takes the backbone from the file; asking for another one is refused.
    predict_with_saved_model(&dir, &model);
    let image = dir.join("cat/0.png");
    let out =
        graft(&["predict", "--model", model.to_str().unwrap(), "--backbone", "mobilenet_v2", image.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("trained on the features of efficientnet_lite0@"));
    let out = graft(&["classify", COFFEE, "--backbone", "resnet50"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("use mobilenet_v2 or efficientnet_lite0"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Grey noise plus or minus one fixed random pattern (`transfer_datasets.py pattern`): the
/// classes differ only in the sign of an invisible pattern, which pooled pretrained features
/// cannot see and raw pixels show at once.
fn invisible_pattern_classes(per_class: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("graft-pattern-{}", std::process::id()));
    let mut rng = graft::train::rng::SplitMix64::new(7);
    let pattern: Vec<f32> = (0..32 * 32).map(|_| if rng.next_f32() < 0.5 { -1.0 } else { 1.0 }).collect();
    for (class, sign) in [("plus", 1.0), ("minus", -1.0)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            let grey: Vec<u8> = pattern
                .iter()
                .map(|p| {
                    // The sum of four uniforms: roughly normal noise, standard deviation ~37.
                    let noise: f32 = (0..4).map(|_| rng.next_f32() - 0.5).sum::<f32>() * 128.0;
                    (128.0 + noise + 12.0 * sign * p).clamp(0.0, 255.0) as u8
                })
                .collect();
            let image = image::GrayImage::from_raw(32, 32, grey).unwrap();
            image::DynamicImage::ImageLuma8(image).to_rgb8().save(dir.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    dir
}

#[test]
fn train_says_when_transfer_does_not_help() {
    if !ready() {
        return;
    }
    let dir = invisible_pattern_classes(30);
    let out = graft(&["train", dir.to_str().unwrap(), "--val-fraction", "0.3", "--json", "--backend", "cpu"]);
    let last = json_lines(&out).pop().unwrap();
    let (transferred, baseline) = (last["val_accuracy"].as_f64().unwrap(), last["baseline_accuracy"].as_f64().unwrap());
    assert!(baseline > transferred + 0.2, "{last}");
    assert_eq!(last["transfer_helps"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("transfer is not helping here"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_adapts_to_unlabelled_target_images_and_scores_labelled_ones() {
    if !ready() {
        return;
    }
    let dir = five_crops_each("dann");
    // The new domain: the same photos, darker and tinted, in one folder without labels.
    let target = dir.with_extension("target");
    std::fs::create_dir_all(target.join("any/depth")).unwrap();
    for (i, file) in ["cat/0.png", "cat/3.png", "coffee/1.png", "coffee/4.png"].iter().enumerate() {
        let mut image = image::open(dir.join(file)).unwrap().to_rgb8();
        image.pixels_mut().for_each(|p| *p = image::Rgb([p[0] / 2, p[1] / 3, p[2] / 2 + 60]));
        image.save(target.join(if i % 2 == 0 { "any/depth" } else { "any" }).join(format!("{i}.png"))).unwrap();
    }
    let (src, tgt) = (dir.to_str().unwrap(), target.to_str().unwrap());
    for backend in backends() {
        let args = ["train", src, "--epochs", "3", "--json", "--backend", backend, "--target", tgt, "--adapt", "dann"];
        let lines = json_lines(&graft(&[&args[..], &["--target-test", src]].concat()));
        for epoch in &lines[..3] {
            let domain = epoch["domain_accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&domain), "{backend}: {epoch}");
        }
        let last = &lines[3];
        assert_eq!(last["target_images"], 4);
        assert_eq!(last["kept"], "final");
        assert_eq!(last["target_test_images"], 10);
        assert!((0.0..=1.0).contains(&last["target_accuracy"].as_f64().unwrap()), "{last}");
        let device = last["backend"]["training"].as_str().unwrap();
        assert_eq!(device.starts_with("WebGPU"), backend == "webgpu", "{backend}: {last}");
    }
    // Adapting needs target images, and target images need `--adapt`.
    let out = graft(&["train", src, "--adapt", "dann"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--target"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&target).unwrap();
}
