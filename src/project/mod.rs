//! The project: what a person made and would want back after a reload (classes and their
//! sample ids, settings, which backbone, the trained head with its metrics and curves). It
//! derives serde; what else the page holds (pictures, progress, messages) is view state. Sample
//! images and embeddings live in the web worker, under the sample ids, and in `archive`'s
//! `.graft` files.

pub mod archive;

use serde::{Deserialize, Serialize};

use crate::backbone::BackboneKey;
use crate::gpu::BackendChoice;
use crate::train::{ClassProblem, EpochMetrics, SavedHead, TrainConfig};
use crate::transfer::baseline::TransferCheck;

/// Bumped when the format changes incompatibly.
pub const PROJECT_VERSION: u32 = 1;

/// The name of the target bin.
pub const TARGET_NAME: &str = "Unlabelled: new domain";
/// The name of each class's check bin.
pub const CHECK_NAME: &str = "Check: new domain";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassEntry {
    pub id: u64,
    pub name: String,
    pub sample_ids: Vec<u64>,
}

/// Labelled images of the new domain for one class (`class_id`), which no run trains on: after
/// each run they are classified, so that what adaptation changed is measured, not assumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckBin {
    pub class_id: u64,
    pub bin: ClassEntry,
}

/// Accuracy on the check images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckScore {
    pub accuracy: f32,
    pub images: usize,
}

/// The last run's accuracy on the check images, with adaptation and without.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckScores {
    pub adapted: Option<CheckScore>,
    pub source_only: Option<CheckScore>,
}

impl CheckScores {
    /// Keeps `score` as the latest with adaptation (`adapted`) or without.
    pub fn record(&mut self, adapted: bool, score: CheckScore) {
        *(if adapted { &mut self.adapted } else { &mut self.source_only }) = Some(score);
    }
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
    /// One check bin per class ([`Self::sync_check_bins`]).
    #[serde(default)]
    pub checks: Vec<CheckBin>,
    #[serde(default)]
    pub check_scores: CheckScores,
}

impl Project {
    /// A new project: two empty classes with ids from `next_id`.
    pub fn new(mut next_id: impl FnMut() -> u64) -> Self {
        let classes =
            (1..=2).map(|i| ClassEntry { id: next_id(), name: format!("Class {i}"), sample_ids: Vec::new() }).collect();
        let mut project = Self {
            version: PROJECT_VERSION,
            backbone: None,
            classes,
            settings: TrainConfig::default(),
            backend: BackendChoice::Auto,
            head: None,
            history: Vec::new(),
            transfer_check: None,
            target: Some(ClassEntry { id: next_id(), name: TARGET_NAME.into(), sample_ids: Vec::new() }),
            checks: Vec::new(),
            check_scores: CheckScores::default(),
        };
        project.sync_check_bins(next_id);
        project
    }

    /// The classes, the unlabelled target bin, then the check bins: every entry that holds
    /// samples.
    pub fn entries(&self) -> impl Iterator<Item = &ClassEntry> {
        self.classes.iter().chain(&self.target).chain(self.checks.iter().map(|c| &c.bin))
    }

    /// [`Self::entries`], mutable.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut ClassEntry> {
        self.classes.iter_mut().chain(&mut self.target).chain(self.checks.iter_mut().map(|c| &mut c.bin))
    }

    /// Gives every class a check bin and drops the bins of classes that are gone, returning
    /// the samples they held (for the worker to forget).
    pub fn sync_check_bins(&mut self, mut next_id: impl FnMut() -> u64) -> Vec<u64> {
        let class_ids: Vec<u64> = self.classes.iter().map(|c| c.id).collect();
        let (kept, dropped): (Vec<CheckBin>, Vec<CheckBin>) =
            std::mem::take(&mut self.checks).into_iter().partition(|c| class_ids.contains(&c.class_id));
        self.checks = kept;
        for class_id in class_ids {
            if !self.checks.iter().any(|c| c.class_id == class_id) {
                let bin = ClassEntry { id: next_id(), name: CHECK_NAME.into(), sample_ids: Vec::new() };
                self.checks.push(CheckBin { class_id, bin });
            }
        }
        dropped.into_iter().flat_map(|c| c.bin.sample_ids).collect()
    }

    /// The check images of each class, in class order.
    pub fn check_ids(&self) -> Vec<Vec<u64>> {
        let of = |id| self.checks.iter().find(|c| c.class_id == id).map(|c| c.bin.sample_ids.clone());
        self.classes.iter().map(|class| of(class.id).unwrap_or_default()).collect()
    }

    /// The check bin of class `class_id`.
    pub fn check_bin(&self, class_id: u64) -> Option<&ClassEntry> {
        self.checks.iter().find(|c| c.class_id == class_id).map(|c| &c.bin)
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
    pub fn training_blocker(&self) -> Option<ClassProblem> {
        let names: Vec<String> = self.classes.iter().map(|c| c.name.clone()).collect();
        let counts: Vec<usize> = self.classes.iter().map(|c| c.sample_ids.len()).collect();
        crate::train::class_problem(&names, &counts).or_else(|| {
            let adapting_to_nothing = self.settings.adapt.enabled && self.target_ids().is_empty();
            adapting_to_nothing.then_some(ClassProblem::NoTargetImages)
        })
    }

    /// Applies to `self` (the project that just opened) what a person did to `draft` before it
    /// opened, so that nothing done in the first seconds is lost. `pristine` is the draft as
    /// first shown: a class still as it was there (same id and name, no samples) is skipped.
    /// Any other draft class joins the class with its id (a project made from the draft), else
    /// the class with its name, else comes as a new class; its check images come along, and
    /// so do the unlabelled bin's. Settings or a backend changed in the draft win. Returns
    /// whether any sample joined (a trained model is then stale).
    pub fn absorb_draft(&mut self, draft: &Project, pristine: &Project, mut next_id: impl FnMut() -> u64) -> bool {
        let untouched = |c: &ClassEntry| {
            c.sample_ids.is_empty() && pristine.classes.iter().any(|p| p.id == c.id && p.name == c.name)
        };
        let mut joined = Vec::new();
        for class in draft.classes.iter().filter(|c| !untouched(c)) {
            let own = self.classes.iter().position(|c| c.id == class.id);
            let index = own.or_else(|| self.classes.iter().position(|c| c.name == class.name));
            let into = match index {
                Some(i) => {
                    let entry = &mut self.classes[i];
                    if own.is_some() {
                        entry.name = class.name.clone();
                    }
                    append_missing(&mut entry.sample_ids, &class.sample_ids);
                    entry.id
                }
                None => {
                    self.classes.push(class.clone());
                    class.id
                }
            };
            joined.push((class.id, into));
        }
        self.sync_check_bins(&mut next_id);
        for (from, into) in joined {
            let (Some(bin), Some(own)) = (draft.check_bin(from), self.checks.iter_mut().find(|c| c.class_id == into))
            else {
                continue;
            };
            append_missing(&mut own.bin.sample_ids, &bin.sample_ids);
        }
        if let Some(target) = draft.target.as_ref().filter(|t| !t.sample_ids.is_empty()) {
            let own = self.target.get_or_insert_with(|| ClassEntry { sample_ids: Vec::new(), ..target.clone() });
            append_missing(&mut own.sample_ids, &target.sample_ids);
        }
        if draft.settings != pristine.settings {
            self.settings = draft.settings.clone();
        }
        if draft.backend != pristine.backend {
            self.backend = draft.backend;
        }
        draft.entries().any(|c| !c.sample_ids.is_empty())
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

/// Appends the ids of `more` that `ids` lacks, in order.
fn append_missing(ids: &mut Vec<u64>, more: &[u64]) {
    for id in more {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_one_check_bin_and_a_deleted_class_takes_its_images_along() {
        let mut ids = 0..;
        let mut next = move || ids.next().unwrap();
        let mut project = Project::new(&mut next);
        assert_eq!(project.checks.len(), 2);
        let first = project.classes[0].id;
        let bin = project.checks.iter().find(|c| c.class_id == first).unwrap().bin.id;
        project.class_mut(bin).unwrap().sample_ids.extend([100, 101]);
        assert_eq!(project.check_ids(), vec![vec![100, 101], vec![]]);
        assert_eq!(project.max_id(), 101);
        project.classes.remove(0);
        assert_eq!(project.sync_check_bins(&mut next), vec![100, 101]);
        assert_eq!(project.checks.len(), 1);
        project.classes.push(ClassEntry { id: 50, name: "new".into(), sample_ids: Vec::new() });
        assert!(project.sync_check_bins(&mut next).is_empty());
        assert!(project.check_bin(50).is_some());
        let mut scores = CheckScores::default();
        scores.record(true, CheckScore { accuracy: 0.75, images: 4 });
        assert_eq!((scores.adapted.map(|s| s.images), scores.source_only), (Some(4), None));
    }

    /// The first seconds: a draft renamed and filled before the project opened.
    fn draft_with_fish(next: &mut impl FnMut() -> u64) -> (Project, Project) {
        let pristine = Project::new(&mut *next);
        let mut draft = pristine.clone();
        draft.classes[0].name = "fish".into();
        draft.classes[0].sample_ids.extend([900, 901]);
        (draft, pristine)
    }

    #[test]
    fn a_draft_made_into_the_project_keeps_its_names_and_samples() {
        let mut ids = 0..;
        let mut next = move || ids.next().unwrap();
        let (mut draft, pristine) = draft_with_fish(&mut next);
        // The project was made from the draft as it was when the page asked for it.
        let mut opened = draft.clone();
        draft.classes[0].sample_ids.push(902);
        draft.classes[1].name = "shark".into();
        let first_bin = draft.checks[0].bin.id;
        draft.class_mut(first_bin).unwrap().sample_ids.push(903);
        draft.settings.epochs = 7;
        assert!(opened.absorb_draft(&draft, &pristine, &mut next));
        assert_eq!(opened.classes, draft.classes);
        assert_eq!(opened.check_ids(), vec![vec![903], vec![]]);
        assert_eq!(opened.settings.epochs, 7);
    }

    #[test]
    fn a_draft_joins_a_saved_project_by_name_or_as_new_classes() {
        let mut ids = 0..;
        let mut next = move || ids.next().unwrap();
        let (mut draft, pristine) = draft_with_fish(&mut next);
        let mut saved = Project::new(&mut next);
        saved.classes[0].name = "fish".into();
        saved.classes[0].sample_ids.extend([1, 2]);
        saved.classes[1].name = "cat".into();
        saved.settings.epochs = 30;
        draft.classes.push(ClassEntry { id: 950, name: "bird".into(), sample_ids: vec![951] });
        draft.target.as_mut().unwrap().sample_ids.push(960);
        assert!(saved.absorb_draft(&draft, &pristine, &mut next));
        let names: Vec<&str> = saved.classes.iter().map(|c| c.name.as_str()).collect();
        // The untouched "Class 2" of the draft is not added; "fish" joins "fish".
        assert_eq!(names, ["fish", "cat", "bird"]);
        assert_eq!(saved.classes[0].sample_ids, [1, 2, 900, 901]);
        assert_eq!(saved.classes[2].sample_ids, [951]);
        assert_eq!(saved.target_ids(), [960]);
        assert_eq!(saved.checks.len(), 3, "the new class has its check bin");
        assert_eq!(saved.settings.epochs, 30, "settings not changed in the draft stay as saved");
        let untouched = pristine.clone();
        assert!(!saved.clone().absorb_draft(&untouched, &pristine, &mut next), "an untouched draft adds nothing");
    }
}
