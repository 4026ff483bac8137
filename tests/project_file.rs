//! `.graft` project files: a round trip keeps everything, and every kind of broken or hostile
//! file (made here, none committed) is refused with its own message, never a panic. The
//! property test runs with overflow checks on (`cargo xtask test native`) and replays any failing case
//! it once found from `project_file.regressions` beside this file.

#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use candle_core::{Device, Tensor};
use graft::backbone::{Architecture, BackboneKey};
use graft::preprocess::{store_image, InputSpec, StoredImage};
use graft::project::archive::{read_archive, write_archive, ArchiveLimits, ProjectArchive};
use graft::project::Project;
use graft::train::{SavedHead, TrainConfig, TrainData, Trainer};
use graft::GraftError;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

fn key() -> BackboneKey {
    BackboneKey { architecture: Architecture::MobileNetV2, weights_sha256: "ab".repeat(32) }
}

/// A small trained head on random 8-d features of `classes` classes.
fn saved_head(class_names: &[&str]) -> SavedHead {
    let classes = class_names.len();
    let rows = 6 * classes;
    let inputs = Tensor::randn(0f32, 1.0, (rows, 8), &Device::Cpu).unwrap();
    let labels = (0..rows).map(|i| i % classes).collect();
    let names: Vec<String> = class_names.iter().map(|s| s.to_string()).collect();
    let config = TrainConfig { epochs: 2, hidden: 4, ..TrainConfig::default() };
    let mut trainer = Trainer::new(TrainData::new(inputs, labels, names.clone()), config).unwrap();
    while !trainer.is_done() {
        graft::embed::block_on(trainer.run_epoch()).unwrap();
    }
    let head = graft::embed::block_on(trainer.finish()).unwrap();
    SavedHead::new(&head, key(), names).unwrap()
}

fn picture(seed: u8, side: u32) -> StoredImage {
    let image = image::RgbImage::from_fn(side, side + 3, |x, y| image::Rgb([seed, (x * 7) as u8, (y * 5) as u8]));
    store_image(&image, &InputSpec::imagenet()).unwrap()
}

/// Two classes with two samples each (one PNG, one JPEG per class), trained.
fn project() -> (Project, BTreeMap<u64, StoredImage>) {
    let mut ids = 0..;
    let mut project = Project::new(|| ids.next().unwrap());
    let mut images = BTreeMap::new();
    for (class, name) in project.classes.iter_mut().zip(["cats", "cups"]) {
        class.name = name.into();
        for side in [40, 120] {
            let id = 100 + images.len() as u64;
            class.sample_ids.push(id);
            images.insert(id, picture(id as u8, side));
        }
    }
    project.backbone = Some(key());
    project.head = Some(saved_head(&["cats", "cups"]));
    (project, images)
}

fn archive() -> Vec<u8> {
    let (project, images) = project();
    write_archive("lesson", &project, &images).unwrap()
}

/// The message a refused file gets (it must name the file).
fn refused(bytes: &[u8], limits: &ArchiveLimits) -> String {
    match read_archive("class.graft", bytes, limits) {
        Ok(_) => panic!("a broken file was accepted"),
        Err(e @ GraftError::BadProjectFile { .. }) => {
            let message = e.to_string();
            assert!(message.starts_with("class.graft is not a usable Graft project: "), "{message}");
            message
        }
        Err(e) => panic!("not a BadProjectFile: {e}"),
    }
}

/// A zip of these entries (name, bytes, method), as a hostile tool might write it.
fn zip_of(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in entries {
        zip.start_file(*name, SimpleFileOptions::default().compression_method(*method)).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The entries of a valid archive, to change one by one.
fn entries() -> Vec<(String, Vec<u8>)> {
    let bytes = archive();
    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            (entry.name().unwrap().to_string(), data)
        })
        .collect()
}

fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8], CompressionMethod)> =
        entries.iter().map(|(n, b)| (n.as_str(), b.as_slice(), CompressionMethod::Deflated)).collect();
    zip_of(&refs)
}

fn with_manifest(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut entries = entries();
    let manifest = entries.iter_mut().find(|(n, _)| n == "manifest.json").unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&manifest.1).unwrap();
    edit(&mut json);
    manifest.1 = serde_json::to_vec(&json).unwrap();
    rezip(&entries)
}

#[test]
fn a_project_file_round_trips() {
    let (project, images) = project();
    let bytes = write_archive("lesson", &project, &images).unwrap();
    let back = read_archive("lesson.graft", &bytes, &ArchiveLimits::default()).unwrap();
    assert_eq!(back, ProjectArchive { name: "lesson".into(), project, images });
    let names: Vec<String> = entries().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[..2], ["manifest.json", "model.safetensors"]);
    assert!(names[2..].iter().all(|n| n.starts_with("images/1")) && names.len() == 6, "{names:?}");
    let (mut untrained, images) = self::project();
    untrained.head = None;
    let bytes = write_archive("new", &untrained, &images).unwrap();
    assert_eq!(read_archive("new.graft", &bytes, &ArchiveLimits::default()).unwrap().project, untrained);
}

#[test]
fn broken_and_hostile_project_files_are_refused_with_their_reason() {
    let limits = ArchiveLimits::default();
    let good = archive();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "the file is empty"),
        ("random bytes", (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(), "not a zip file"),
        ("truncated", good[..good.len() / 2].to_vec(), "not a zip file"),
        ("unknown version", with_manifest(|m| m["version"] = 99.into()), "format version 99/1"),
        ("another format", with_manifest(|m| m["format"] = "other".into()), "format \"other\""),
        ("bad manifest", with_manifest(|m| m["project"] = 3.into()), "manifest.json is invalid"),
        ("no manifest", rezip(&entries()[1..]), "has no manifest.json"),
        (
            "missing image",
            rezip(&entries().into_iter().filter(|(n, _)| n != "images/100.png").collect::<Vec<_>>()),
            "images/100.png is missing",
        ),
        (
            "extra image",
            rezip(&[entries(), vec![("images/7.png".into(), vec![1, 2])]].concat()),
            "images/7.png belongs to no sample",
        ),
        ("wrong size", with_manifest(|m| m["samples"][0]["width"] = 41.into()), "is not a 41x43 image"),
        (
            "sample twice",
            with_manifest(|m| m["project"]["classes"][1]["sample_ids"][0] = 100.into()),
            "sample 100 is listed twice",
        ),
        (
            "model without weights",
            rezip(&entries().into_iter().filter(|(n, _)| n != "model.safetensors").collect::<Vec<_>>()),
            "model.safetensors is missing",
        ),
        (
            "labels that do not match the weights",
            with_manifest(|m| m["project"]["head"]["class_names"] = serde_json::json!(["a", "b", "c"])),
            "the model has 2 outputs, but the manifest names 3 classes",
        ),
    ];
    for (name, bytes, expected) in cases {
        let message = refused(&bytes, &limits);
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[test]
fn names_that_escape_or_are_not_on_the_allow_list_are_refused() {
    for name in [
        "../evil.png",
        "/etc/passwd",
        "images/../../x.png",
        "images/1.exe",
        "images/a.png",
        "notes.txt",
        "images\\1.png",
        "images/1.png/",
    ] {
        let bytes = zip_of(&[(name, b"x", CompressionMethod::Stored)]);
        let message = refused(&bytes, &ArchiveLimits::default());
        assert!(message.contains("which a Graft project never has"), "{name}: {message}");
    }
}

#[test]
fn duplicate_entries_and_other_compression_methods_are_refused() {
    // Two entries renamed to one name in both headers (same length, so offsets still hold).
    let mut bytes =
        zip_of(&[("images/1.png", b"a", CompressionMethod::Stored), ("images/2.png", b"b", CompressionMethod::Stored)]);
    replace_all(&mut bytes, b"images/2.png", b"images/1.png");
    assert!(refused(&bytes, &ArchiveLimits::default()).contains("two entries with the same name"));
    // Method 12 (bzip2) written into the local and central headers of a stored entry.
    let mut bytes = zip_of(&[("manifest.json", b"{}", CompressionMethod::Stored)]);
    set_method(&mut bytes, 12);
    let message = refused(&bytes, &ArchiveLimits::default());
    assert!(message.contains("compression") || message.contains("not a zip file"), "{message}");
}

#[test]
fn size_caps_hold_when_the_declared_sizes_lie() {
    let limits = ArchiveLimits { max_entries: 10, max_entry_bytes: 1 << 20, max_total_bytes: 3 << 20 };
    // A deflate bomb: 64 MiB of zeros in about 64 kB.
    let zeros = vec![0u8; 64 << 20];
    let mut bomb = zip_of(&[("manifest.json", &zeros, CompressionMethod::Deflated)]);
    assert!(bomb.len() < 200_000);
    assert!(refused(&bomb, &limits).contains("larger than 1 MiB"));
    // The same entry declaring 10 bytes uncompressed in both headers: still read through the cap.
    set_declared_size(&mut bomb, 10);
    let message = refused(&bomb, &limits);
    assert!(message.contains("larger than 1 MiB") || message.contains("cannot be read"), "{message}");
    // The total: four entries of 0.9 MiB each.
    let chunk = vec![7u8; 900 << 10];
    let files: Vec<(String, Vec<u8>)> = (1..=4).map(|i| (format!("images/{i}.png"), chunk.clone())).collect();
    assert!(refused(&rezip(&files), &limits).contains("or the whole file than 3 MiB"));
    let many: Vec<(String, Vec<u8>)> = (1..=11).map(|i| (format!("images/{i}.png"), vec![1])).collect();
    assert!(refused(&rezip(&many), &limits).contains("11 entries, more than the 10 allowed"));
}

#[test]
fn weights_of_the_wrong_shape_or_dtype_are_refused() {
    let (mut project, images) = project();
    let head = project.head.as_mut().unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&head.safetensors).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> =
        tensors.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    let output = owned.iter_mut().find(|t| t.0 == "output.bias").unwrap();
    output.1 = safetensors::Dtype::I32;
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    head.safetensors = safetensors::serialize(views, None).unwrap();
    let bytes = write_archive("lesson", &project, &images).unwrap();
    assert!(refused(&bytes, &ArchiveLimits::default()).contains("tensor output.bias is I32, not F32"));
    project.head.as_mut().unwrap().safetensors = saved_head(&["a", "b", "c"]).safetensors;
    let bytes = write_archive("lesson", &project, &images).unwrap();
    assert!(refused(&bytes, &ArchiveLimits::default()).contains("3 outputs, but the manifest names 2 classes"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))), ..ProptestConfig::default() })]

    /// Any corruption of a valid file is read or refused, never a panic.
    #[test]
    fn corrupted_project_files_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut bytes = archive_once().clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len()) + 1);
        let _ = read_archive("fuzz.graft", &bytes, &ArchiveLimits::default());
    }
}

fn archive_once() -> &'static Vec<u8> {
    static ARCHIVE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ARCHIVE.get_or_init(archive)
}

fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
}

/// Positions of the local (`PK\x03\x04`) and central (`PK\x01\x02`) headers.
fn headers(bytes: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let find = |sig: &[u8]| (0..bytes.len().saturating_sub(3)).filter(|&i| &bytes[i..i + 4] == sig).collect();
    (find(b"PK\x03\x04"), find(b"PK\x01\x02"))
}

fn set_method(bytes: &mut [u8], method: u16) {
    let (local, central) = headers(bytes);
    for i in local {
        bytes[i + 8..i + 10].copy_from_slice(&method.to_le_bytes());
    }
    for i in central {
        bytes[i + 10..i + 12].copy_from_slice(&method.to_le_bytes());
    }
}

fn set_declared_size(bytes: &mut [u8], size: u32) {
    let (local, central) = headers(bytes);
    for i in local {
        bytes[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
    }
    for i in central {
        bytes[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
    }
}
