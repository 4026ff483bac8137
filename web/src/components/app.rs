//! The page: model status, image picker, ImageNet top 5 and errors. All computing happens
//! in the worker (`GraftWorker`), reached through a reactor bridge.

use std::rc::Rc;

use gloo::file::{Blob, ObjectUrl};
use web_sys::File;
use yew::prelude::*;
use yew_agent::reactor::{use_reactor_bridge, ReactorEvent, ReactorProvider};

use super::image_drop::ImageDrop;
use super::model_status::ModelStatusBar;
use super::top_predictions::TopPredictions;
use crate::protocol::ToWorker;
use crate::state::{Action, AppState, ChosenImage, ModelStatus};
use crate::worker::GraftWorker;

/// The worker's wasm-bindgen script (`no-modules` output; gloo-worker loads it with
/// `importScripts` and finds `graft-worker_bg.wasm` beside it), and the model manifest.
const WORKER_PATH: &str = "graft-worker.js";
const MANIFEST_URL: &str = "models/mobilenet_v2.json";

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

#[function_component(Graft)]
fn graft() -> Html {
    let state = use_reducer(AppState::default);
    let next_request = use_mut_ref(|| 0u64);
    let worker = {
        let state = state.clone();
        use_reactor_bridge::<GraftWorker, _>(move |event| {
            if let ReactorEvent::Output(message) = event {
                state.dispatch(Action::Worker(message));
            }
        })
    };
    {
        let worker = worker.clone();
        use_effect_with((), move |_| {
            worker.send(ToWorker::LoadModel {
                manifest_url: page_url(MANIFEST_URL),
            });
        });
    }

    let on_file = {
        let state = state.clone();
        let worker = worker.clone();
        Callback::from(move |file: File| {
            let request_id = {
                let mut next = next_request.borrow_mut();
                *next += 1;
                *next
            };
            let blob = Blob::from(file.clone());
            let file_name = file.name();
            state.dispatch(Action::Chose(ChosenImage {
                request_id,
                file_name: file_name.clone(),
                preview_url: Rc::new(ObjectUrl::from(blob.clone())),
            }));
            let state = state.clone();
            let worker = worker.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match gloo::file::futures::read_as_bytes(&blob).await {
                    Ok(bytes) => worker.send(ToWorker::Classify {
                        request_id,
                        file_name,
                        bytes,
                    }),
                    Err(e) => state.dispatch(Action::Error {
                        message: format!("{file_name} could not be read: {e}"),
                    }),
                }
            });
        })
    };

    let ready = matches!(state.model, ModelStatus::Ready { .. });
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
            <ImageDrop on_file={ on_file } disabled={ !ready } />
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
        </main>
    }
}
