//! What a person does to projects (open another, rename, new, delete, export, import, export
//! the model), and the autosave: the last project opens once the model is ready, and every
//! change to the open project is sent to the worker to save.

use web_sys::File;
use yew::prelude::*;
use yew_agent::reactor::UseReactorBridgeHandle;

use crate::download::request_persistent_storage;
use crate::file_input::read_then;
use crate::i18n::{use_lang, Lang, Text};
use crate::project::Project;
use crate::protocol::{FreshProject, ToWorker};
use crate::state::{next_id, Action, AppState, Cause, ModelStatus};
use crate::t;
use crate::worker::GraftWorker;

type Worker = UseReactorBridgeHandle<GraftWorker>;

#[derive(Clone)]
pub struct ProjectActions {
    pub open: Callback<String>,
    pub rename: Callback<String>,
    pub create: Callback<()>,
    pub delete: Callback<()>,
    pub export: Callback<()>,
    pub import: Callback<File>,
    pub export_model: Callback<()>,
    pub take_over: Callback<()>,
}

/// The open project as saved: its weights travel apart (the worker saves them when training
/// ends).
fn saved_form(project: &Project) -> Project {
    Project { head: None, ..project.clone() }
}

/// A new project named `name`, its two classes named in the page's language.
fn fresh_project(lang: Lang, name: String) -> FreshProject {
    let mut project = Project::new(next_id);
    for (i, class) in project.classes.iter_mut().enumerate() {
        class.name = t!(lang, "class-default-name", number = i + 1);
    }
    FreshProject { name, project }
}

/// The project a person starts with, when none is saved.
pub fn first_project(lang: Lang) -> FreshProject {
    fresh_project(lang, t!(lang, "project-default-first"))
}

/// A callback that marks the page busy with a project request, then sends what `make` builds.
fn request<T: 'static>(
    state: &UseReducerHandle<AppState>,
    worker: &Worker,
    make: impl Fn(&AppState, T) -> ToWorker + 'static,
) -> Callback<T> {
    let (state, worker) = (state.clone(), worker.clone());
    Callback::from(move |value: T| {
        let message = make(&state, value);
        state.dispatch(Action::ProjectRequested);
        worker.send(message);
    })
}

#[hook]
pub fn use_project_actions(state: UseReducerHandle<AppState>, worker: Worker) -> ProjectActions {
    let lang = use_lang();
    use_autosave(&state, &worker, lang);
    let open = request(&state, &worker, move |_, id: String| ToWorker::OpenProject {
        request_id: next_id(),
        project_id: Some(id),
        fresh: first_project(lang),
    });
    let rename = {
        let state = state.clone();
        Callback::from(move |name: String| state.dispatch(Action::RenameProject(name.trim().to_string())))
    };
    let create = request(&state, &worker, move |state, ()| {
        let FreshProject { name, project } =
            fresh_project(lang, t!(lang, "project-default-name", number = state.projects.len() + 1));
        ToWorker::NewProject { request_id: next_id(), name, project }
    });
    let delete = request(&state, &worker, move |_, ()| ToWorker::DeleteProject {
        request_id: next_id(),
        fresh: first_project(lang),
    });
    let export = request(&state, &worker, |state, ()| ToWorker::ExportProject {
        request_id: next_id(),
        name: state.project_name.clone(),
        project: saved_form(&state.project),
    });
    let export_model = request(&state, &worker, |state, ()| ToWorker::ExportModel {
        request_id: next_id(),
        class_names: state.training.class_names.clone(),
    });
    let import = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |file: File| {
            state.dispatch(Action::ProjectRequested);
            let worker = worker.clone();
            let on_error = {
                let state = state.clone();
                Callback::from(move |message: String| {
                    state.dispatch(Action::Error { cause: Cause::Storage, message: Text::verbatim(message) })
                })
            };
            read_then(&file, on_error, move |file_name, bytes| {
                worker.send(ToWorker::ImportProject { request_id: next_id(), file_name, bytes })
            });
        })
    };
    let take_over =
        request(&state, &worker, move |_, ()| ToWorker::TakeOver { request_id: next_id(), fresh: first_project(lang) });
    ProjectActions { open, rename, create, delete, export, import, export_model, take_over }
}

/// Opens the last saved project once the model is ready (its samples' embeddings and its
/// model belong to the backbone), then saves the open project whenever it changes. With no
/// project saved, the page's draft becomes the project: what a person did meanwhile stays
/// (and joins a saved project that opens instead, see `Project::absorb_draft`).
#[hook]
fn use_autosave(state: &UseReducerHandle<AppState>, worker: &Worker, lang: Lang) {
    use_effect_with((), |_| request_persistent_storage());
    let ready = matches!(state.model, ModelStatus::Ready { .. });
    {
        let (worker, state) = (worker.clone(), state.clone());
        use_effect_with(ready, move |&ready| {
            if ready && state.project_id.is_none() {
                let fresh =
                    FreshProject { name: t!(lang, "project-default-first"), project: saved_form(&state.project) };
                worker.send(ToWorker::OpenProject { request_id: next_id(), project_id: None, fresh });
            }
        });
    }
    let worker = worker.clone();
    let saving = state.project_id.is_some() && !state.project_busy;
    let saved = (saved_form(&state.project), state.project_name.clone(), saving);
    use_effect_with(saved, move |(project, name, saving)| {
        if *saving {
            worker.send(ToWorker::SaveProject { name: name.clone(), project: project.clone() });
        }
    });
}
