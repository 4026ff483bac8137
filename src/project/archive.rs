//! `.graft` project files: one zip a class can hand to another machine.
//!
//! ```text
//! manifest.json        {"format": "graft-project", "version": 1, "name": ...,
//!                       "project": Project (its head's weights left out),
//!                       "samples": [{"id", "file", "width", "height"}, ...]}
//! images/<id>.png|jpg  each sample's stored image (downscaled, as the worker keeps it)
//! model.safetensors    the trained head and any fine-tuned blocks, when there is one
//! ```
//!
//! [`read_archive`] checks everything before anything is used, so a refused file leaves the
//! open project untouched: the version; the entry names against an allow-list and the zip
//! crate's enclosed-name check; duplicates; stored or deflate only; caps on the entry count,
//! each entry's size and the total that hold when the declared sizes lie (every entry is read
//! through a limit); the manifest against the images (every sample has exactly one image, of
//! its declared size); and the weights' names, dtypes and shapes against the class names.

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Read, Write};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use super::{Project, PROJECT_VERSION};
use crate::error::{GraftError, Result};
use crate::preprocess::StoredImage;
use crate::train::head_file::WeightsLayout;

/// Bumped when the file layout changes incompatibly (the project inside has its own version).
pub const ARCHIVE_VERSION: u32 = 1;
const FORMAT: &str = "graft-project";
const MANIFEST: &str = "manifest.json";
const MODEL: &str = "model.safetensors";

/// Limits that keep a hostile file from exhausting a tab's memory.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
}

impl Default for ArchiveLimits {
    /// 20,000 samples; a stored image is a few tens of kB, the largest weights (every block of
    /// a backbone fine-tuned) under 64 MiB.
    fn default() -> Self {
        Self { max_entries: 20_003, max_entry_bytes: 64 << 20, max_total_bytes: 1 << 30 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SampleEntry {
    id: u64,
    file: String,
    width: u32,
    height: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    name: String,
    project: Project,
    samples: Vec<SampleEntry>,
}

/// A project file's content, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectArchive {
    pub name: String,
    /// With its head's weights when the file has a model.
    pub project: Project,
    /// Each sample's stored image, by id.
    pub images: BTreeMap<u64, StoredImage>,
}

fn image_file(id: u64, mime: &str) -> String {
    let extension = if mime == "image/png" { "png" } else { "jpg" };
    format!("images/{id}.{extension}")
}

/// Writes a `.graft` file. `images` must hold every sample of `project`.
pub fn write_archive(name: &str, project: &Project, images: &BTreeMap<u64, StoredImage>) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| GraftError::BadProjectFile { file: name.into(), reason: e.to_string() };
    let mut samples = Vec::new();
    for id in project.entries().flat_map(|c| &c.sample_ids) {
        let image = images.get(id).ok_or_else(|| failed(&format!("sample {id} has no stored image")))?;
        samples.push(SampleEntry {
            id: *id,
            file: image_file(*id, &image.mime),
            width: image.width,
            height: image.height,
        });
    }
    let mut bare = project.clone();
    let weights = bare.head.as_mut().map(|head| std::mem::take(&mut head.safetensors));
    let manifest =
        Manifest { format: FORMAT.into(), version: ARCHIVE_VERSION, name: name.into(), project: bare, samples };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    // Stored images are already compressed.
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| failed(&e))?;
    let mut add = |file: &str, bytes: &[u8], options| -> Result<()> {
        zip.start_file(file, options).map_err(|e| failed(&e))?;
        zip.write_all(bytes).map_err(|e| failed(&e))
    };
    add(MANIFEST, &json, deflated)?;
    if let Some(weights) = &weights {
        add(MODEL, weights, deflated)?;
    }
    for entry in &manifest.samples {
        add(&entry.file, &images[&entry.id].bytes, stored)?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}

/// Whether `name` is one a `.graft` file may hold.
fn allowed_name(name: &str) -> bool {
    if name == MANIFEST || name == MODEL || name == "images/" {
        return true;
    }
    let Some(file) = name.strip_prefix("images/") else { return false };
    let Some((stem, extension)) = file.split_once('.') else { return false };
    !stem.is_empty()
        && stem.len() <= 20
        && stem.bytes().all(|b| b.is_ascii_digit())
        && matches!(extension, "png" | "jpg")
}

/// Every entry's bytes by name, each checked and read through the limits.
fn read_entries(bytes: &[u8], limits: &ArchiveLimits) -> std::result::Result<BTreeMap<String, Vec<u8>>, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("it is not a zip file ({e})"))?;
    if zip.has_duplicate_names() {
        return Err("it holds two entries with the same name".into());
    }
    if zip.len() > limits.max_entries {
        return Err(format!("it holds {} entries, more than the {} allowed", zip.len(), limits.max_entries));
    }
    let mut entries = BTreeMap::new();
    let mut total = 0u64;
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(|e| format!("entry {index} cannot be read ({e})"))?;
        let name = entry.name().map_err(|e| format!("entry {index} has an unreadable name ({e})"))?.to_string();
        let enclosed =
            entry.enclosed_name().is_some_and(|p| p.to_str().is_some_and(|p| p == name.trim_end_matches('/')));
        if !enclosed || !allowed_name(&name) {
            return Err(format!("it holds an entry named {name:?}, which a Graft project never has"));
        }
        if !matches!(entry.compression(), CompressionMethod::Stored | CompressionMethod::Deflated) {
            return Err(format!(
                "{name} uses compression {:?} (only stored and deflate are read)",
                entry.compression()
            ));
        }
        if entry.is_dir() {
            continue;
        }
        let cap = limits.max_entry_bytes.min(limits.max_total_bytes - total);
        let mut data = Vec::new();
        (&mut entry).take(cap + 1).read_to_end(&mut data).map_err(|e| format!("{name} cannot be read ({e})"))?;
        if data.len() as u64 > cap {
            return Err(format!(
                "{name} is larger than {} MiB, or the whole file than {} MiB",
                limits.max_entry_bytes >> 20,
                limits.max_total_bytes >> 20
            ));
        }
        total += data.len() as u64;
        entries.insert(name, data);
    }
    Ok(entries)
}

/// Reads and checks a `.graft` file; `file` names it in every error.
pub fn read_archive(file: &str, bytes: &[u8], limits: &ArchiveLimits) -> Result<ProjectArchive> {
    let bad = |reason: String| GraftError::BadProjectFile { file: file.into(), reason };
    let mut entries = read_entries(bytes, limits).map_err(bad)?;
    let manifest = entries.remove(MANIFEST).ok_or_else(|| bad("it has no manifest.json".into()))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest).map_err(|e| bad(format!("its manifest.json is invalid ({e})")))?;
    if manifest.format != FORMAT {
        return Err(bad(format!("its manifest says format {:?}, not {FORMAT:?}", manifest.format)));
    }
    if manifest.version != ARCHIVE_VERSION || manifest.project.version != PROJECT_VERSION {
        return Err(bad(format!(
            "it is format version {}/{} (this Graft reads {ARCHIVE_VERSION}/{PROJECT_VERSION})",
            manifest.version, manifest.project.version
        )));
    }
    let mut project = manifest.project;
    let weights = entries.remove(MODEL);
    match (project.head.as_mut(), weights) {
        (Some(head), Some(weights)) => {
            check_weights(&weights, &head.class_names).map_err(bad)?;
            head.safetensors = weights;
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(bad("its manifest names a trained model, but model.safetensors is missing".into()))
        }
        (None, Some(_)) => return Err(bad("it has model.safetensors, but its manifest names no trained model".into())),
    }
    let images = check_samples(&project, &manifest.samples, entries).map_err(bad)?;
    Ok(ProjectArchive { name: manifest.name, project, images })
}

/// The weights hold a head whose outputs are the class names ([`WeightsLayout`]; fine-tuned
/// blocks are matched against the backbone when the head is restored).
fn check_weights(weights: &[u8], class_names: &[String]) -> std::result::Result<(), String> {
    let layout = WeightsLayout::of_bytes(weights).map_err(|e| format!("model.safetensors: {e}"))?;
    if layout.head.classes != class_names.len() {
        return Err(format!(
            "the model has {} outputs, but the manifest names {} classes",
            layout.head.classes,
            class_names.len()
        ));
    }
    Ok(())
}

/// Every sample of every class has exactly one image of its declared size, and there is no
/// other image.
fn check_samples(
    project: &Project,
    samples: &[SampleEntry],
    mut entries: BTreeMap<String, Vec<u8>>,
) -> std::result::Result<BTreeMap<u64, StoredImage>, String> {
    let mut in_classes = HashSet::new();
    for id in project.entries().flat_map(|c| &c.sample_ids) {
        if !in_classes.insert(*id) {
            return Err(format!("sample {id} is listed twice"));
        }
    }
    let mut images = BTreeMap::new();
    for sample in samples {
        if !in_classes.contains(&sample.id) || images.contains_key(&sample.id) {
            return Err(format!("sample {} is not in exactly one class", sample.id));
        }
        let mime = if sample.file.ends_with(".png") { "image/png" } else { "image/jpeg" };
        if sample.file != image_file(sample.id, mime) {
            return Err(format!("sample {} names the file {:?}", sample.id, sample.file));
        }
        let bytes = entries.remove(&sample.file).ok_or_else(|| format!("{} is missing", sample.file))?;
        let size = image::ImageReader::new(Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok());
        if size != Some((sample.width, sample.height)) {
            return Err(format!("{} is not a {}x{} image", sample.file, sample.width, sample.height));
        }
        images.insert(sample.id, StoredImage { mime: mime.into(), width: sample.width, height: sample.height, bytes });
    }
    if let Some(missing) = in_classes.iter().find(|id| !images.contains_key(id)) {
        return Err(format!("sample {missing} has no image"));
    }
    if let Some(extra) = entries.keys().next() {
        return Err(format!("{extra} belongs to no sample"));
    }
    Ok(images)
}
