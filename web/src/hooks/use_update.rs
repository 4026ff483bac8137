//! A new version of the app: the service worker (`sw.js`) installs it beside the running one
//! and waits. This hook notices a waiting worker (now, or when one finishes installing) and,
//! when the person asks, tells it to take over, then reloads the page once it has. When another
//! tab made the new version take over, this page runs old code under it: it offers to reload.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ServiceWorker, ServiceWorkerRegistration, ServiceWorkerState};
use yew::prelude::*;

/// The message `sw.js` takes over on.
const TAKE_OVER: &str = "graft-update";

#[derive(Clone)]
pub struct UpdateHandle {
    /// A new version is installed and waits.
    pub ready: bool,
    /// Switches to it (the page reloads once it has taken over).
    pub apply: Callback<()>,
}

/// Calls `found` with the registration's waiting worker now and whenever a new one has
/// installed while this page is controlled by an older one.
fn watch(registration: ServiceWorkerRegistration, found: Callback<ServiceWorker>) {
    if let Some(waiting) = registration.waiting() {
        found.emit(waiting);
    }
    let on_update = Closure::<dyn FnMut()>::new({
        let registration = registration.clone();
        move || {
            let Some(installing) = registration.installing() else { return };
            let (found, watched) = (found.clone(), installing.clone());
            let on_state = Closure::<dyn FnMut()>::new(move || {
                let controlled = gloo::utils::window().navigator().service_worker().controller().is_some();
                if watched.state() == ServiceWorkerState::Installed && controlled {
                    found.emit(watched.clone());
                }
            });
            installing.set_onstatechange(Some(on_state.as_ref().unchecked_ref()));
            on_state.forget();
        }
    });
    registration.set_onupdatefound(Some(on_update.as_ref().unchecked_ref()));
    on_update.forget();
}

fn reload() {
    let _ = gloo::utils::window().location().reload();
}

#[hook]
pub fn use_update() -> UpdateHandle {
    let waiting = use_state(|| None::<ServiceWorker>);
    // A new version took over without this page asking (another tab did).
    let taken_over = use_state(|| false);
    let asked = use_mut_ref(|| false);
    {
        let (waiting, taken_over, asked) = (waiting.clone(), taken_over.clone(), asked.clone());
        use_effect_with((), move |_| {
            let container = gloo::utils::window().navigator().service_worker();
            // Only a page already controlled sees a change of version (not the first install).
            let controlled = container.controller().is_some();
            let on_change = Closure::<dyn FnMut()>::new(move || match *asked.borrow() {
                true => reload(),
                false => taken_over.set(controlled),
            });
            container.set_oncontrollerchange(Some(on_change.as_ref().unchecked_ref()));
            on_change.forget();
            let found = Callback::from(move |worker: ServiceWorker| waiting.set(Some(worker)));
            if let Ok(ready) = container.ready() {
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(registration) = wasm_bindgen_futures::JsFuture::from(ready).await {
                        watch(registration.unchecked_into(), found);
                    }
                });
            }
        });
    }
    let apply = {
        let (waiting, asked) = (waiting.clone(), asked.clone());
        Callback::from(move |()| match (*waiting).clone() {
            Some(worker) => {
                *asked.borrow_mut() = true;
                let _ = worker.post_message(&TAKE_OVER.into());
            }
            None => reload(),
        })
    };
    UpdateHandle { ready: waiting.is_some() || *taken_over, apply }
}
