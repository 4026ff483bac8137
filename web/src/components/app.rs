//! The page: model status; classes with their samples; training settings, live metrics;
//! prediction; and the ImageNet smoke path. All computing happens in the worker
//! (`GraftWorker`), reached through a reactor bridge.

use std::rc::Rc;

use gloo::file::{Blob, ObjectUrl};
use gloo::timers::callback::Interval;
use web_sys::{File, HtmlVideoElement, MediaStream};
use yew::prelude::*;
use yew_agent::reactor::{use_reactor_bridge, ReactorEvent, ReactorProvider, UseReactorBridgeHandle};

use super::class_card::{ClassCard, ClassStateProp};
use super::image_drop::ImageDrop;
use super::metrics::Metrics;
use super::model_status::ModelStatusBar;
use super::predict_panel::PredictPanel;
use super::top_predictions::TopPredictions;
use super::train_panel::TrainPanel;
use super::webcam_panel::WebcamPanel;
use crate::protocol::{ClassSamples, FromWorker, ImageData, ToWorker};
use crate::state::{next_id, Action, AppState, ChosenImage, ModelStatus, Picture, Sample, TrainStatus};
use crate::webcam;
use crate::worker::GraftWorker;

/// The worker's wasm-bindgen script (`no-modules` output; gloo-worker loads it with
/// `importScripts` and finds `graft-worker_bg.wasm` beside it), and the model manifest.
const WORKER_PATH: &str = "graft-worker.js";
const MANIFEST_URL: &str = "models/mobilenet_v2.json";

type Worker = UseReactorBridgeHandle<GraftWorker>;

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
    html! {
        <ReactorProvider<GraftWorker> path={ WORKER_PATH }>
            <Graft />
        </ReactorProvider<GraftWorker>>
    }
}

/// Reads a file's bytes, then hands them to `send`; a read failure becomes a page error.
fn read_then(file: &File, state: UseReducerHandle<AppState>, send: impl FnOnce(String, Vec<u8>) + 'static) {
    let blob = Blob::from(file.clone());
    let name = file.name();
    wasm_bindgen_futures::spawn_local(async move {
        match gloo::file::futures::read_as_bytes(&blob).await {
            Ok(bytes) => send(name, bytes),
            Err(e) => state.dispatch(Action::Error { message: format!("{name} could not be read: {e}") }),
        }
    });
}

fn add_files(state: &UseReducerHandle<AppState>, worker: &Worker, class_id: u64, files: Vec<File>) {
    let samples: Vec<(Sample, File)> = files
        .into_iter()
        .map(|file| {
            let sample = Sample {
                id: next_id(),
                picture: Picture::Object(Rc::new(ObjectUrl::from(Blob::from(file.clone())))),
                embedded: false,
            };
            (sample, file)
        })
        .collect();
    state.dispatch(Action::AddSamples { class_id, samples: samples.iter().map(|(s, _)| s.clone()).collect() });
    for (sample, file) in samples {
        let worker = worker.clone();
        read_then(&file, state.clone(), move |file_name, bytes| {
            worker.send(ToWorker::AddSample { sample_id: sample.id, image: ImageData::File { file_name, bytes } })
        });
    }
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

#[function_component(Graft)]
fn graft() -> Html {
    let state = use_reducer(AppState::default);
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
                state.dispatch(Action::Worker(message));
            }
        })
    };
    let video_ref = use_node_ref();
    let stream = use_mut_ref(|| None::<MediaStream>);
    let camera_on = use_state(|| false);
    let cameras = use_state(Vec::<webcam::Camera>::new);
    let fps = use_state(|| 10u32);
    let recording = use_state(|| None::<u64>);
    let recorder = use_mut_ref(|| None::<Interval>);
    let live = use_state(|| false);
    {
        let worker = worker.clone();
        use_effect_with((), move |_| {
            worker.send(ToWorker::LoadModel { manifest_url: page_url(MANIFEST_URL) });
        });
    }

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
            read_then(&file, state.clone(), move |file_name, bytes| {
                worker.send(ToWorker::Classify { request_id, file_name, bytes })
            });
        })
    };
    let on_files = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |(class_id, files): (u64, Vec<File>)| add_files(&state, &worker, class_id, files))
    };
    let on_rename = {
        let state = state.clone();
        Callback::from(move |(class_id, name): (u64, String)| state.dispatch(Action::RenameClass { class_id, name }))
    };
    let on_delete = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |class_id: u64| {
            if let Some(class) = state.classes.iter().find(|c| c.id == class_id) {
                for sample in &class.samples {
                    worker.send(ToWorker::RemoveSample { sample_id: sample.id });
                }
            }
            state.dispatch(Action::DeleteClass { class_id });
        })
    };
    let on_remove_sample = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |(class_id, sample_id): (u64, u64)| {
            worker.send(ToWorker::RemoveSample { sample_id });
            state.dispatch(Action::RemoveSample { class_id, sample_id });
        })
    };
    let on_add_class = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.dispatch(Action::AddClass))
    };
    let on_settings = {
        let state = state.clone();
        Callback::from(move |settings| state.dispatch(Action::Settings(settings)))
    };
    let on_train = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |()| {
            if let Some(message) = state.training_blocker() {
                state.dispatch(Action::Error { message });
                return;
            }
            let classes: Vec<ClassSamples> = state
                .classes
                .iter()
                .map(|c| ClassSamples { name: c.name.clone(), sample_ids: c.samples.iter().map(|s| s.id).collect() })
                .collect();
            state.dispatch(Action::TrainingRequested { class_names: classes.iter().map(|c| c.name.clone()).collect() });
            worker.send(ToWorker::Train { classes, config: state.settings.clone() });
        })
    };
    let on_stop = {
        let worker = worker.clone();
        Callback::from(move |()| worker.send(ToWorker::StopTraining))
    };
    let on_predict_file = {
        let (state, worker) = (state.clone(), worker.clone());
        Callback::from(move |file: File| {
            let request_id = next_id();
            state.dispatch(Action::PredictRequested { request_id, label: file.name() });
            let worker = worker.clone();
            read_then(&file, state.clone(), move |file_name, bytes| {
                worker.send(ToWorker::Predict { request_id, image: ImageData::File { file_name, bytes } })
            });
        })
    };

    let open_camera = {
        let (state, video_ref, stream, camera_on, cameras) =
            (state.clone(), video_ref.clone(), stream.clone(), camera_on.clone(), cameras.clone());
        Rc::new(move |device_id: Option<String>| {
            let Some(video) = video_ref.cast::<HtmlVideoElement>() else { return };
            let (state, stream, camera_on, cameras) =
                (state.clone(), stream.clone(), camera_on.clone(), cameras.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match webcam::open(&video, device_id.as_deref()).await {
                    Ok(opened) => {
                        if let Some(old) = stream.borrow_mut().replace(opened) {
                            webcam::close(&old);
                        }
                        camera_on.set(true);
                        cameras.set(webcam::cameras().await);
                    }
                    Err(message) => state.dispatch(Action::Error { message }),
                }
            });
        })
    };
    let on_camera_toggle = {
        let (stream, camera_on, live, open_camera) =
            (stream.clone(), camera_on.clone(), live.clone(), open_camera.clone());
        Callback::from(move |()| {
            if *camera_on {
                if let Some(old) = stream.borrow_mut().take() {
                    webcam::close(&old);
                }
                camera_on.set(false);
                live.set(false);
            } else {
                open_camera(None);
            }
        })
    };
    let on_camera = {
        let open_camera = open_camera.clone();
        Callback::from(move |device_id: String| open_camera(Some(device_id)))
    };
    let on_fps = {
        let fps = fps.clone();
        Callback::from(move |value: u32| fps.set(value))
    };
    let on_record = {
        let (state, worker, video_ref, fps, recording, recorder) =
            (state.clone(), worker.clone(), video_ref.clone(), fps.clone(), recording.clone(), recorder.clone());
        Callback::from(move |(class_id, start): (u64, bool)| {
            if !start {
                recorder.borrow_mut().take();
                recording.set(None);
                return;
            }
            if recorder.borrow().is_some() {
                return;
            }
            let (state, worker, video_ref) = (state.clone(), worker.clone(), video_ref.clone());
            add_frame(&state, &worker, class_id, &video_ref);
            let interval =
                Interval::new(1000 / (*fps).max(1), move || add_frame(&state, &worker, class_id, &video_ref));
            *recorder.borrow_mut() = Some(interval);
            recording.set(Some(class_id));
        })
    };
    let on_live = {
        let live = live.clone();
        Callback::from(move |on: bool| live.set(on))
    };
    {
        // While live prediction is on, classify a frame whenever the previous answer is in.
        let (worker, video_ref, in_flight) = (worker.clone(), video_ref.clone(), live_in_flight.clone());
        use_effect_with(*live, move |live| {
            let timer = live.then(|| {
                *in_flight.borrow_mut() = false;
                Interval::new(50, move || {
                    if *in_flight.borrow() {
                        return;
                    }
                    let Some((image, _)) = video_ref.cast::<HtmlVideoElement>().and_then(|v| webcam::capture(&v))
                    else {
                        return;
                    };
                    *in_flight.borrow_mut() = true;
                    worker.send(ToWorker::Predict { request_id: next_id(), image });
                })
            });
            move || drop(timer)
        });
    }

    let ready = matches!(state.model, ModelStatus::Ready { .. });
    let trained = state.training.report.is_some() && state.train_status() != TrainStatus::Training;
    html! {
        <main class="graft">
            <header>
                <h1>{ "Graft" }</h1>
                <p class="tagline">{ "Transfer learning in your browser. Nothing leaves this machine." }</p>
            </header>
            <ModelStatusBar status={ state.model.clone() } />
            if let Some(message) = &state.error {
                <div class="error" role="alert" data-testid="error">{ message }</div>
            }
            if !state.skipped.is_empty() {
                <div class="warning" role="status" data-testid="skipped">
                    { format!("{} file(s) skipped: {}", state.skipped.len(), state.skipped[0]) }
                </div>
            }
            <WebcamPanel video_ref={ video_ref.clone() } camera_on={ *camera_on } cameras={ (*cameras).clone() }
                fps={ *fps } live={ *live } can_predict={ trained } on_toggle={ on_camera_toggle }
                on_camera={ on_camera } on_fps={ on_fps } on_live={ on_live } />
            <section class="classes">
                { for state.classes.iter().map(|class| html! {
                    <ClassCard key={ class.id } class={ ClassStateProp(class.clone()) } on_rename={ on_rename.clone() }
                        on_delete={ on_delete.clone() } on_files={ on_files.clone() }
                        on_remove_sample={ on_remove_sample.clone() } on_record={ on_record.clone() }
                        camera_on={ *camera_on } recording={ *recording == Some(class.id) } disabled={ !ready } />
                }) }
                <button class="add-class" data-testid="add-class" onclick={ on_add_class }>{ "+ Add a class" }</button>
            </section>
            <TrainPanel settings={ state.settings.clone() } status={ state.train_status() }
                pending_samples={ state.pending_samples() } on_settings={ on_settings }
                on_train={ on_train } on_stop={ on_stop } disabled={ !ready } />
            <Metrics training={ state.training.clone() } />
            <PredictPanel class_names={ state.training.class_names.clone() } prediction={ state.prediction.clone() }
                on_file={ on_predict_file } ready={ trained } stale={ state.training.stale } />
            <details class="smoke">
                <summary>{ "What does the pretrained model see? (ImageNet top 5)" }</summary>
                <ImageDrop on_file={ on_smoke_file } disabled={ !ready } />
                <div class="result" aria-busy={ state.busy.to_string() }>
                    if let (Some(chosen), Some(result)) = (&state.chosen, &state.result) {
                        if !state.busy && state.error.is_none() {
                            <img class="preview" src={ chosen.preview_url.to_string() } alt={ chosen.file_name.clone() } />
                        }
                        <TopPredictions file_name={ result.file_name.clone() } top5={ result.top5.clone() } millis={ result.millis } />
                    }
                    if state.busy {
                        <p class="busy" data-testid="busy">{ "Classifying…" }</p>
                    }
                </div>
            </details>
        </main>
    }
}
