//! What a person does to classes: add, rename, delete, fill with files, remove a sample. Each
//! changes the project through the reducer and tells the worker what it must embed or forget.

use std::rc::Rc;

use gloo::file::{Blob, ObjectUrl};
use web_sys::File;
use yew::prelude::*;
use yew_agent::reactor::UseReactorBridgeHandle;

use crate::file_input::read_then;
use crate::i18n::{use_lang, Text};
use crate::protocol::{ImageData, ToWorker};
use crate::state::{next_id, Action, AppState, Cause, Picture, Sample};
use crate::t;
use crate::worker::GraftWorker;

type Worker = UseReactorBridgeHandle<GraftWorker>;

#[derive(Clone)]
pub struct ClassActions {
    pub add_class: Callback<MouseEvent>,
    pub rename: Callback<(u64, String)>,
    pub delete: Callback<u64>,
    pub add_files: Callback<(u64, Vec<File>)>,
    pub remove_sample: Callback<(u64, u64)>,
}

/// A page message for a file that could not be read.
pub fn input_error(state: &UseReducerHandle<AppState>) -> Callback<String> {
    let state = state.clone();
    Callback::from(move |message| {
        state.dispatch(Action::Error { cause: Cause::Input, message: Text::verbatim(message) })
    })
}

/// Files larger than this are skipped before they are read: a photo is a few MB, and reading
/// a huge file into the tab (then copying it to the worker) could exhaust its memory.
pub const MAX_UPLOAD_BYTES: f64 = 64e6;

fn add_files(state: &UseReducerHandle<AppState>, worker: &Worker, class_id: u64, files: Vec<File>) {
    // Files dropped on a card whose project was replaced meanwhile belong nowhere.
    if !state.project.entries().any(|c| c.id == class_id) {
        return;
    }
    let (files, too_large): (Vec<File>, Vec<File>) = files.into_iter().partition(|f| f.size() <= MAX_UPLOAD_BYTES);
    let samples: Vec<(Sample, File)> = files
        .into_iter()
        .map(|file| {
            let picture = Picture::Object(Rc::new(ObjectUrl::from(Blob::from(file.clone()))));
            (Sample { id: next_id(), picture, embedded: false }, file)
        })
        .collect();
    state.dispatch(Action::AddSamples { class_id, samples: samples.iter().map(|(s, _)| s.clone()).collect() });
    let skipped = too_large.iter().map(|f| {
        let megabytes = |bytes: f64| format!("{:.0}", bytes / 1e6);
        Text::new("file-too-large")
            .arg("name", f.name())
            .arg("size", megabytes(f.size()))
            .arg("limit", megabytes(MAX_UPLOAD_BYTES))
    });
    state.dispatch(Action::Skipped(skipped.collect()));
    for (sample, file) in samples {
        let worker = worker.clone();
        read_then(&file, input_error(state), move |file_name, bytes| {
            worker.send(ToWorker::AddSample { sample_id: sample.id, image: ImageData::File { file_name, bytes } })
        });
    }
}

#[hook]
pub fn use_class_actions(state: UseReducerHandle<AppState>, worker: Worker) -> ClassActions {
    let lang = use_lang();
    let add_class = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            let name = t!(lang, "class-default-name", number = state.project.classes.len() + 1);
            state.dispatch(Action::AddClass { class_id: next_id(), name })
        })
    };
    let rename = {
        let state = state.clone();
        Callback::from(move |(class_id, name): (u64, String)| state.dispatch(Action::RenameClass { class_id, name }))
    };
    let delete = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |class_id: u64| {
            let class = state.project.classes.iter().find(|c| c.id == class_id);
            for &sample_id in class.into_iter().chain(state.project.check_bin(class_id)).flat_map(|c| &c.sample_ids) {
                worker.send(ToWorker::RemoveSample { sample_id });
            }
            state.dispatch(Action::DeleteClass { class_id });
        })
    };
    let add_files = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |(class_id, files): (u64, Vec<File>)| add_files(&state, &worker, class_id, files))
    };
    let remove_sample = Callback::from(move |(class_id, sample_id): (u64, u64)| {
        worker.send(ToWorker::RemoveSample { sample_id });
        state.dispatch(Action::RemoveSample { class_id, sample_id });
    });
    ClassActions { add_class, rename, delete, add_files, remove_sample }
}
