//! The project: what a person made and would want back after a reload (classes and their
//! sample ids, settings, which backbone, the trained head with its metrics and curves). It
//! derives serde; what else the page holds (pictures, progress, messages) is view state. Sample
//! images and embeddings live in the web worker, under the sample ids, and in `archive`'s
//! `.graft` files.

pub mod archive;

use serde::{Deserialize, Serialize};

use crate::backbone::BackboneKey;
use crate::gpu::BackendChoice;
use crate::train::{EpochMetrics, SavedHead, TrainConfig};
use crate::transfer::baseline::TransferCheck;

/// Bumped when the format changes incompatibly.
pub const PROJECT_VERSION: u32 = 1;

/// The name of the target bin.
pub const TARGET_NAME: &str = "Unlabelled: new domain";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassEntry {
    pub id: u64,
    pub name: String,
    pub sample_ids: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub version: u32,
    /// The backbone whose features the samples and the head belong to.
    pub backbone: Option<BackboneKey>,
    pub classes: Vec<ClassEntry>,
    pub settings: TrainConfig,
    /// Where the model computes: `auto` unless the user picked one.
    #[serde(default)]
    pub backend: BackendChoice,
    /// The trained head, its class names and report.
    pub head: Option<SavedHead>,
    /// The epochs of the run that trained `head` (its curves).
    #[serde(default)]
    pub history: Vec<EpochMetrics>,
    /// That run's accuracy beside its no-transfer baseline's, once the baseline has trained.
    #[serde(default)]
    pub transfer_check: Option<TransferCheck>,
    /// Unlabelled images of the domain the model will be used in (domain adaptation): a bin
    /// like a class, whose name the page does not use as a label.
    #[serde(default)]
    pub target: Option<ClassEntry>,
}

impl Project {
    /// A new project: two empty classes with ids from `next_id`.
    pub fn new(mut next_id: impl FnMut() -> u64) -> Self {
        let classes =
            (1..=2).map(|i| ClassEntry { id: next_id(), name: format!("Class {i}"), sample_ids: Vec::new() }).collect();
        Self {
            version: PROJECT_VERSION,
            backbone: None,
            classes,
            settings: TrainConfig::default(),
            backend: BackendChoice::Auto,
            head: None,
            history: Vec::new(),
            transfer_check: None,
            target: Some(ClassEntry { id: next_id(), name: TARGET_NAME.into(), sample_ids: Vec::new() }),
        }
    }

    /// The classes, then the unlabelled target bin: every entry that holds samples.
    pub fn entries(&self) -> impl Iterator<Item = &ClassEntry> {
        self.classes.iter().chain(&self.target)
    }

    /// [`Self::entries`], mutable.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut ClassEntry> {
        self.classes.iter_mut().chain(&mut self.target)
    }

    /// The target bin's sample ids (none without a bin).
    pub fn target_ids(&self) -> &[u64] {
        self.target.as_ref().map_or(&[], |t| &t.sample_ids)
    }

    /// The largest id in use (classes and samples), so that new ids never collide after a
    /// restore.
    pub fn max_id(&self) -> u64 {
        self.entries().flat_map(|c| std::iter::once(c.id).chain(c.sample_ids.iter().copied())).max().unwrap_or(0)
    }

    /// The class or the target bin with `id`.
    pub fn class_mut(&mut self, id: u64) -> Option<&mut ClassEntry> {
        self.entries_mut().find(|c| c.id == id)
    }

    /// Why training cannot start, naming the class at fault: the page's one check before it
    /// asks the worker (which refuses the same cases in the engine).
    pub fn training_blocker(&self) -> Option<String> {
        let names: Vec<String> = self.classes.iter().map(|c| c.name.clone()).collect();
        let counts: Vec<usize> = self.classes.iter().map(|c| c.sample_ids.len()).collect();
        crate::train::class_problem(&names, &counts).or_else(|| {
            let adapting_to_nothing = self.settings.adapt.enabled && self.target_ids().is_empty();
            adapting_to_nothing.then(|| "add unlabelled images of the new domain to adapt to it".into())
        })
    }

    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| e.to_string())
    }

    /// A project from its JSON, refusing other format versions.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let project: Project = serde_json::from_str(text).map_err(|e| format!("not a Graft project: {e}"))?;
        if project.version != PROJECT_VERSION {
            return Err(format!(
                "project format {} is not supported (this Graft reads {PROJECT_VERSION})",
                project.version
            ));
        }
        Ok(project)
    }
}
