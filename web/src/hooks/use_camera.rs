//! The camera: open (a chosen device, the default, or the one facing front or back), close,
//! and the list of cameras.

use std::rc::Rc;

use web_sys::{HtmlVideoElement, MediaStream};
use yew::prelude::*;

use crate::state::{Action, AppState, Cause};
use crate::webcam::{self, CameraSource};

#[derive(Clone)]
pub struct CameraHandle {
    pub video: NodeRef,
    pub on: bool,
    pub cameras: Vec<webcam::Camera>,
    /// Turns the camera on (default device) or off.
    pub toggle: Callback<()>,
    /// Switches to the camera with this device id.
    pub choose: Callback<String>,
    /// The rear camera was asked for (phones and tablets).
    pub rear: bool,
    /// Switches between the rear and the front camera.
    pub flip: Callback<()>,
}

#[hook]
pub fn use_camera(state: UseReducerHandle<AppState>) -> CameraHandle {
    let video = use_node_ref();
    let stream = use_mut_ref(|| None::<MediaStream>);
    let on = use_state(|| false);
    let cameras = use_state(Vec::<webcam::Camera>::new);
    let rear = use_state(|| false);
    let open = {
        let (video, stream, on, cameras) = (video.clone(), stream.clone(), on.clone(), cameras.clone());
        Rc::new(move |source: CameraSource| {
            let Some(element) = video.cast::<HtmlVideoElement>() else {
                return;
            };
            let (state, stream, on, cameras) = (state.clone(), stream.clone(), on.clone(), cameras.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match webcam::open(&element, &source).await {
                    Ok(opened) => {
                        if let Some(old) = stream.borrow_mut().replace(opened) {
                            webcam::close(&old);
                        }
                        on.set(true);
                        cameras.set(webcam::cameras().await);
                    }
                    Err(message) => state.dispatch(Action::Error { cause: Cause::Input, message }),
                }
            });
        })
    };
    let toggle = {
        let (stream, on, open) = (stream.clone(), on.clone(), open.clone());
        Callback::from(move |()| {
            if *on {
                if let Some(old) = stream.borrow_mut().take() {
                    webcam::close(&old);
                }
                on.set(false);
            } else {
                open(CameraSource::Default);
            }
        })
    };
    let choose = {
        let open = open.clone();
        Callback::from(move |device_id: String| open(CameraSource::Device(device_id)))
    };
    let flip = {
        let rear = rear.clone();
        Callback::from(move |()| {
            open(CameraSource::Facing(if *rear { "user" } else { "environment" }));
            rear.set(!*rear);
        })
    };
    CameraHandle { video, on: *on, cameras: (*cameras).clone(), toggle, choose, rear: *rear, flip }
}
