//! The page: model status; classes with their samples; training settings, live metrics;
//! prediction; and the ImageNet smoke path. All computing happens in the worker
//! (`GraftWorker`), reached through a reactor bridge.

use std::rc::Rc;

use gloo::file::{Blob, ObjectUrl};
use graft::backbone::Architecture;
use graft::manifest::manifest_file;
use graft::preprocess::StoredImage;
use web_sys::{File, HtmlVideoElement};
use yew::prelude::*;
use yew_agent::reactor::{use_reactor_bridge, ReactorEvent, ReactorProvider, UseReactorBridgeHandle};

use super::backbone_panel::BackbonePanel;
use super::check_panel::CheckPanel;
use super::class_card::{ClassCard, ClassStateProp};
use super::freeze_panel::FreezePanel;
use super::held_elsewhere::HeldElsewhere;
use super::image_drop::ImageDrop;
use super::language_picker::{apply_to_document, initial_language, LanguagePicker};
use super::metrics::Metrics;
use super::model_status::ModelStatusBar;
use super::pool_picker::{stored_choice, PoolPicker};
use super::predict_panel::PredictPanel;
use super::project_bar::ProjectBar;
use super::projector_toggle::ProjectorToggle;
use super::top_predictions::TopPredictions;
use super::tour::{self, Tour};
use super::train_panel::TrainPanel;
use super::transfer_check::TransferCheckPanel;
use super::webcam_panel::WebcamPanel;
use crate::download::download;
use crate::file_input::read_then;
use crate::hooks::{
    first_project, input_error, use_camera, use_class_actions, use_live_prediction, use_project_actions, use_recorder,
    use_update,
};
use crate::i18n::Lang;
use crate::protocol::{ClassSamples, FromWorker, ImageData, ToWorker};
use crate::state::{next_id, Action, AppState, Cause, ChosenImage, ModelStatus, Picture, Sample, TrainStatus};
use crate::t;
use crate::webcam;
use crate::worker::GraftWorker;

/// The worker's wasm-bindgen script (`no-modules` output; gloo-worker loads it with
/// `importScripts` and finds `<name>_bg.wasm` beside it): the build with relaxed SIMD's fused
/// multiply-add where this browser validates a relaxed SIMD instruction, else the SIMD128 one.
fn worker_path() -> &'static str {
    let probe = js_sys::Uint8Array::from(&graft::kernels::RELAXED_SIMD_PROBE[..]);
    match js_sys::WebAssembly::validate(&probe.into()) {
        Ok(true) => "graft-worker-relaxed.js",
        _ => "graft-worker.js",
    }
}

type Worker = UseReactorBridgeHandle<GraftWorker>;

/// The embedding pool runs the worker's own script: `workers` of them, or one per core.
fn set_pool(workers: Option<u32>) -> ToWorker {
    ToWorker::SetPool { script_url: page_url(worker_path()), workers }
}

/// `relative` resolved against the page's address. The worker runs from a `blob:` URL, so
/// it cannot resolve relative URLs itself.
fn page_url(relative: &str) -> String {
    gloo::utils::window()
        .location()
        .href()
        .ok()
        .and_then(|base| web_sys::Url::new_with_base(relative, &base).ok())
        .map(|url| url.href())
        .unwrap_or_else(|| relative.to_string())
}

#[function_component(App)]
pub fn app() -> Html {
    let lang = use_state(initial_language);
    use_effect_with(*lang, |lang| apply_to_document(*lang));
    let on_language = {
        let lang = lang.clone();
        Callback::from(move |chosen: Lang| lang.set(chosen))
    };
    html! {
        <ContextProvider<Lang> context={ *lang }>
            <ReactorProvider<GraftWorker> path={ worker_path() }>
                <Graft on_language={ on_language } />
            </ReactorProvider<GraftWorker>>
        </ContextProvider<Lang>>
    }
}

#[derive(Properties, PartialEq)]
struct GraftProps {
    on_language: Callback<Lang>,
}

/// Captures the current webcam frame into class `class_id`.
fn add_frame(state: &UseReducerHandle<AppState>, worker: &Worker, class_id: u64, video: &NodeRef) {
    let Some((image, thumbnail)) = video.cast::<HtmlVideoElement>().and_then(|v| webcam::capture(&v)) else {
        return;
    };
    let sample = Sample { id: next_id(), picture: Picture::Data(thumbnail.into()), embedded: false };
    let sample_id = sample.id;
    state.dispatch(Action::AddSamples { class_id, samples: vec![sample] });
    worker.send(ToWorker::AddSample { sample_id, image });
}

/// Sends Train for the project's classes, or says why it cannot start.
fn start_training(state: &UseReducerHandle<AppState>, worker: &Worker) {
    if let Some(message) = state.training_blocker() {
        state.dispatch(Action::Error { cause: Cause::Training, message });
        return;
    }
    if let Err(message) = state.validate(&state.project.settings) {
        state.dispatch(Action::Error { cause: Cause::Settings, message });
        return;
    }
    let classes = class_samples(state);
    let run_id = next_id();
    state.dispatch(Action::TrainingRequested { run_id, class_names: classes.iter().map(|c| c.name.clone()).collect() });
    let (target, check) = (state.project.target_ids().to_vec(), state.project.check_ids());
    worker.send(ToWorker::Train { run_id, classes, config: state.project.settings.clone(), target, check });
}

/// The project's classes with their samples, as the worker takes them.
fn class_samples(state: &AppState) -> Vec<ClassSamples> {
    let classes = state.project.classes.iter();
    classes.map(|c| ClassSamples { name: c.name.clone(), sample_ids: c.sample_ids.clone() }).collect()
}

/// Samples in the first two classes (the guided first run fills those).
fn first_counts(state: &AppState) -> [usize; 2] {
    let count = |i: usize| state.project.classes.get(i).map_or(0, |c| c.sample_ids.len());
    [count(0), count(1)]
}

/// A stored image as a picture the page can show.
fn picture_of(image: &StoredImage) -> Picture {
    let blob = Blob::new_with_options(image.bytes.as_slice(), Some(&image.mime));
    Picture::Object(Rc::new(ObjectUrl::from(blob)))
}

/// Asks for augmented views of a few samples: the first of each class, then the next ones.
fn preview_augmentation(state: &AppState, worker: &Worker) {
    let classes = &state.project.classes;
    let longest = classes.iter().map(|c| c.sample_ids.len()).max().unwrap_or(0);
    let sample_ids: Vec<u64> =
        (0..longest).flat_map(|i| classes.iter().filter_map(move |c| c.sample_ids.get(i).copied())).take(6).collect();
    let strength = state.project.settings.augment.strength;
    worker.send(ToWorker::PreviewAugment { request_id: next_id(), sample_ids, strength });
}

/// The test hook of the lost-device path: `window.graftLoseGpuDevice()` destroys the worker's
/// GPU device, as a driver reset would. Returns the effect's cleanup, which removes it.
fn expose_gpu_loss_hook(worker: Worker) -> impl FnOnce() {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let hook = Closure::<dyn Fn()>::new(move || worker.send(ToWorker::LoseGpuDevice));
    let window = gloo::utils::window();
    let name = wasm_bindgen::JsValue::from_str("graftLoseGpuDevice");
    let _ = js_sys::Reflect::set(&window, &name, hook.as_ref().unchecked_ref());
    move || {
        let _ = js_sys::Reflect::delete_property(&window, &name);
        drop(hook);
    }
}

#[function_component(Graft)]
fn graft(props: &GraftProps) -> Html {
    let lang = crate::i18n::use_lang();
    let state = use_reducer(move || AppState::with_draft(first_project(lang).project));
    // A live prediction is in flight: the next frame waits for its answer.
    let live_in_flight = use_mut_ref(|| false);
    let worker = {
        let state = state.clone();
        let live_in_flight = live_in_flight.clone();
        use_reactor_bridge::<GraftWorker, _>(move |event| {
            if let ReactorEvent::Output(message) = event {
                if matches!(message, FromWorker::Predicted { .. } | FromWorker::PredictFailed { .. }) {
                    *live_in_flight.borrow_mut() = false;
                }
                match message {
                    FromWorker::AugmentPreview { images, .. } => {
                        state.dispatch(Action::AugmentPreview(images.iter().map(picture_of).collect()))
                    }
                    FromWorker::ProjectOpened { project_id, name, project, thumbnails, projects, lost, .. } => {
                        let pictures = thumbnails.iter().map(|t| (t.sample_id, picture_of(&t.image))).collect();
                        state.dispatch(Action::Opened {
                            project_id,
                            name,
                            project: *project,
                            pictures,
                            projects,
                            lost,
                        });
                    }
                    FromWorker::FileReady { ref file_name, ref mime, ref bytes, .. } => {
                        download(file_name, mime, bytes);
                        state.dispatch(Action::Worker(message));
                    }
                    message => state.dispatch(Action::Worker(message)),
                }
            }
        })
    };
    let update = use_update();
    let camera = use_camera(state.clone());
    let recorder = {
        let (state, worker, video) = (state.clone(), worker.clone(), camera.video.clone());
        use_recorder(Callback::from(move |class_id: u64| add_frame(&state, &worker, class_id, &video)))
    };
    let live = use_state(|| false);
    let tour_open = use_state(tour::opens_by_itself);
    let on_tour_skip = {
        let tour_open = tour_open.clone();
        Callback::from(move |()| {
            tour::remember_skipped();
            tour_open.set(false);
        })
    };
    let on_tour_open = {
        let tour_open = tour_open.clone();
        Callback::from(move |_: MouseEvent| tour_open.set(true))
    };
    let send = {
        let worker = worker.clone();
        Callback::from(move |message: ToWorker| worker.send(message))
    };
    use_live_prediction(*live && camera.on, camera.video.clone(), live_in_flight, send);
    {
        let worker = worker.clone();
        let backend = state.project.backend;
        use_effect_with((), move |_| {
            let manifest_url = page_url(&format!("models/{}", manifest_file(Architecture::DEFAULT)));
            worker.send(ToWorker::LoadModel { manifest_url, backend });
            worker.send(set_pool(stored_choice()));
            expose_gpu_loss_hook(worker)
        });
    }
    let projects = use_project_actions(state.clone(), worker.clone());
    let on_switch_backbone = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |architecture: Architecture| {
            state.dispatch(Action::ProjectRequested);
            let backend = state.project.backend;
            worker.send(ToWorker::SwitchBackbone { request_id: next_id(), architecture, backend });
        })
    };
    let on_rank = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |()| {
            state.dispatch(Action::RankRequested);
            let (classes, backend) = (class_samples(&state), state.project.backend);
            worker.send(ToWorker::RankBackbones { request_id: next_id(), classes, backend });
        })
    };
    let on_pool = {
        let worker = worker.clone();
        Callback::from(move |workers: Option<u32>| worker.send(set_pool(workers)))
    };
    let on_backend = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |choice| {
            state.dispatch(Action::BackendChosen(choice));
            worker.send(ToWorker::SelectBackend { choice });
        })
    };

    let on_smoke_file = {
        let state = state.clone();
        let worker = worker.clone();
        Callback::from(move |file: File| {
            let request_id = next_id();
            state.dispatch(Action::Chose(ChosenImage {
                request_id,
                file_name: file.name(),
                preview_url: Rc::new(ObjectUrl::from(Blob::from(file.clone()))),
            }));
            let worker = worker.clone();
            read_then(&file, input_error(&state), move |file_name, bytes| {
                worker.send(ToWorker::Classify { request_id, file_name, bytes })
            });
        })
    };
    let classes = use_class_actions(state.clone(), worker.clone());
    let on_settings = {
        let state = state.clone();
        Callback::from(move |settings| state.dispatch(Action::Settings(settings)))
    };
    let on_train = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |()| start_training(&state, &worker))
    };
    let on_stop = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |()| {
            if let Some(run_id) = state.run_id {
                worker.send(ToWorker::StopTraining { run_id });
            }
        })
    };
    let on_preview = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |()| preview_augmentation(&state, &worker))
    };
    let on_predict_file = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |file: File| {
            let request_id = next_id();
            state.dispatch(Action::PredictRequested { request_id, label: file.name() });
            let worker = worker.clone();
            read_then(&file, input_error(&state), move |file_name, bytes| {
                worker.send(ToWorker::Predict { request_id, image: ImageData::File { file_name, bytes } })
            });
        })
    };
    let on_camera_toggle = {
        let (toggle, live) = (camera.toggle.clone(), live.clone());
        Callback::from(move |()| {
            live.set(false);
            toggle.emit(());
        })
    };
    let on_live = {
        let live = live.clone();
        Callback::from(move |on: bool| live.set(on))
    };

    // Ready once the model is loaded and the last project is back. Classes can be filled at
    // once: what is added before the first project opens joins it (`Project::absorb_draft`);
    // while another project is being opened, created or imported they wait.
    // Another tab editing the project makes this one read-only until it takes the project over.
    let opened = matches!(state.model, ModelStatus::Ready { .. }) && state.project_id.is_some();
    let ready = opened && state.held_elsewhere.is_none();
    let editable =
        !state.project_busy && !matches!(state.model, ModelStatus::Failed { .. }) && state.held_elsewhere.is_none();
    let trained = state.training.report.is_some() && state.train_status() != TrainStatus::Training;
    let target_card = state.target_view().map(|target| {
        let id = target.id;
        html! {
            <section class="classes target-bin">
                <ClassCard key={ id } recording={ recorder.recording == Some(id) } unlabelled=true
                    class={ ClassStateProp(target) } on_rename={ classes.rename.clone() }
                    on_delete={ classes.delete.clone() } on_files={ classes.add_files.clone() }
                    on_remove_sample={ classes.remove_sample.clone() } on_record={ recorder.record.clone() }
                    camera_on={ camera.on } disabled={ !editable } />
            </section>
        }
    });
    html! {
        <main class="graft">
            <header>
                <h1>{ "Graft" }</h1>
                <p class="tagline">{ t!(lang, "tagline") }</p>
                <LanguagePicker lang={ lang } on_choose={ props.on_language.clone() } />
                <ProjectorToggle />
                if !*tour_open {
                    <button class="tour-open" data-testid="tour-open" onclick={ on_tour_open }>{ t!(lang, "tour-open") }</button>
                }
            </header>
            if *tour_open {
                <Tour camera_on={ camera.on } first_counts={ first_counts(&state) } trained={ trained } live={ *live }
                    on_skip={ on_tour_skip } />
            }
            <ProjectBar project_id={ state.project_id.clone() } name={ state.project_name.clone() }
                projects={ state.projects.clone() } storage={ state.storage } trained={ trained } samples={ state.samples.len() }
                busy={ state.project_busy || !opened } editable={ state.held_elsewhere.is_none() }
                on_open={ projects.open } on_rename={ projects.rename }
                on_new={ projects.create } on_delete={ projects.delete } on_export={ projects.export }
                on_import={ projects.import } on_export_model={ projects.export_model } />
            <ModelStatusBar status={ state.model.clone() } backend={ state.backend.clone() }
                choice={ state.project.backend } on_choose={ on_backend }
                project_open={ state.project_id.is_some() } />
            <PoolPicker pool={ state.pool.clone() } on_choose={ on_pool } />
            <BackbonePanel options={ state.backbone_options.clone() }
                current={ state.project.backbone.as_ref().map(|key| key.architecture) }
                ms_per_image={ state.ms_per_image.clone() } reembedding={ state.reembedding }
                ranking={ state.ranking } scores={ state.scores.clone() } samples={ state.samples.len() }
                disabled={ !ready || state.project_busy || state.train_status() == TrainStatus::Training }
                on_switch={ on_switch_backbone } on_rank={ on_rank } />
            if let Some(message) = &state.error {
                <div class="error" role="alert" data-testid="error">{ lang.text(&message.message) }</div>
            }
            if update.ready {
                <div class="warning update" role="status" data-testid="update-ready">
                    <p>{ t!(lang, "update-ready") }</p>
                    <button data-testid="update-reload" onclick={ update.apply.reform(|_: MouseEvent| ()) }
                        disabled={ state.train_status() == TrainStatus::Training }>{ t!(lang, "update-reload") }</button>
                    if state.train_status() == TrainStatus::Training {
                        <span class="hint">{ t!(lang, "update-after-training") }</span>
                    }
                </div>
            }
            if let Some(taken_over) = state.held_elsewhere {
                <HeldElsewhere name={ state.project_name.clone() } taken_over={ taken_over }
                    busy={ state.project_busy } on_take_over={ projects.take_over.clone() } />
            }
            if !state.storage_problems.is_empty() {
                <div class="warning" role="status" data-testid="storage-problem">
                    { for state.storage_problems.iter().map(|lost| html! { <p>{ lang.text(lost) }</p> }) }
                </div>
            }
            if !state.skipped.is_empty() {
                <div class="warning" role="status" data-testid="skipped">
                    { t!(lang, "skipped", count = state.skipped.len(), first = lang.text(&state.skipped[0])) }
                    if state.skipped.len() > 1 {
                        <details><summary>{ t!(lang, "skipped-why") }</summary>
                            <ul>{ for state.skipped.iter().map(|why| html! { <li data-testid="skipped-file">{ lang.text(why) }</li> }) }</ul>
                        </details>
                    }
                </div>
            }
            <WebcamPanel video_ref={ camera.video.clone() } camera_on={ camera.on } cameras={ camera.cameras.clone() }
                fps={ recorder.fps } live={ *live } can_predict={ trained } on_toggle={ on_camera_toggle }
                on_camera={ camera.choose.clone() } rear={ camera.rear } on_flip={ camera.flip.clone() } on_fps={ recorder.set_fps.clone() } on_live={ on_live } />
            <section class="classes">
                { for state.class_views().into_iter().map(|class| html! {
                    <ClassCard key={ class.id } recording={ recorder.recording == Some(class.id) }
                        class={ ClassStateProp(class.clone()) } on_rename={ classes.rename.clone() }
                        on_delete={ classes.delete.clone() } on_files={ classes.add_files.clone() }
                        on_remove_sample={ classes.remove_sample.clone() } on_record={ recorder.record.clone() }
                        camera_on={ camera.on } disabled={ !editable } />
                }) }
                <button class="add-class" data-testid="add-class" onclick={ classes.add_class.clone() } disabled={ !editable }>{ t!(lang, "add-class") }</button>
            </section>
            if let Some(target) = target_card { { target } }
            <CheckPanel rows={ state.check_rows() } scores={ state.project.check_scores.clone() }
                adapting={ state.project.settings.adapt.enabled } on_files={ classes.add_files.clone() }
                disabled={ !ready } />
            if !state.blocks.is_empty() {
                <FreezePanel key={ state.settings_revision } blocks={ state.blocks.clone() } settings={ state.project.settings.clone() }
                    classes={ state.project.classes.len() } samples={ state.samples.len() } on_settings={ on_settings.clone() }
                    preview={ state.augment_preview.clone() } on_preview={ on_preview } disabled={ !ready } />
            }
            <TrainPanel key={ state.settings_revision } settings={ state.project.settings.clone() } status={ state.train_status() }
                stage={ state.training.stage() } preparing={ state.training.preparing }
                pending_samples={ state.pending_samples() } on_settings={ on_settings }
                on_train={ on_train } on_stop={ on_stop } disabled={ !ready }
                target_samples={ state.project.target_ids().len() } />
            <Metrics training={ state.training.clone() } />
            <TransferCheckPanel check={ state.project.transfer_check } pending={ state.baseline_run.is_some() }
                backbone={ state.project.backbone.as_ref().map(|k| k.architecture.display_name()).unwrap_or_default() } />
            <PredictPanel class_names={ state.training.class_names.clone() } prediction={ state.prediction.clone() }
                on_file={ on_predict_file } ready={ trained } stale={ state.training.stale } />
            <details class="smoke">
                <summary>{ t!(lang, "smoke-summary") }</summary>
                <ImageDrop on_file={ on_smoke_file } disabled={ !ready } />
                <div class="result" aria-busy={ state.busy.to_string() }>
                    if let (Some(chosen), Some(result)) = (&state.chosen, &state.result) {
                        if !state.busy && state.error.is_none() {
                            <img class="preview" src={ chosen.preview_url.to_string() } alt={ chosen.file_name.clone() } />
                        }
                        <TopPredictions file_name={ result.file_name.clone() } top5={ result.top5.clone() } millis={ result.millis } />
                    }
                    if state.busy {
                        <p class="busy" data-testid="busy">{ t!(lang, "classifying") }</p>
                    }
                </div>
            </details>
        </main>
    }
}
