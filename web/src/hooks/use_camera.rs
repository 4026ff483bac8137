//! The camera: open (a chosen device or the default), close, and the list of cameras.

use std::rc::Rc;

use web_sys::{HtmlVideoElement, MediaStream};
use yew::prelude::*;

use crate::state::{Action, AppState, Cause};
use crate::webcam;

#[derive(Clone)]
pub struct CameraHandle {
    pub video: NodeRef,
    pub on: bool,
    pub cameras: Vec<webcam::Camera>,
    /// Turns the camera on (default device) or off.
    pub toggle: Callback<()>,
    /// Switches to the camera with this device id.
    pub choose: Callback<String>,
}

#[hook]
pub fn use_camera(state: UseReducerHandle<AppState>) -> CameraHandle {
    let video = use_node_ref();
    let stream = use_mut_ref(|| None::<MediaStream>);
    let on = use_state(|| false);
    let cameras = use_state(Vec::<webcam::Camera>::new);
    let open = {
        let (video, stream, on, cameras) = (video.clone(), stream.clone(), on.clone(), cameras.clone());
        Rc::new(move |device_id: Option<String>| {
            let Some(element) = video.cast::<HtmlVideoElement>() else {
                return;
            };
            let (state, stream, on, cameras) = (state.clone(), stream.clone(), on.clone(), cameras.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match webcam::open(&element, device_id.as_deref()).await {
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
                open(None);
            }
        })
    };
    let choose = Callback::from(move |device_id: String| open(Some(device_id)));
    CameraHandle { video, on: *on, cameras: (*cameras).clone(), toggle, choose }
}
