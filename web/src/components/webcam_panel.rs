//! The webcam preview with its controls: camera on/off, which camera, capture rate, and live
//! prediction with the trained head.

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::i18n::use_lang;
use crate::t;
use crate::webcam::Camera;

#[derive(Properties, PartialEq)]
pub struct WebcamPanelProps {
    pub video_ref: NodeRef,
    pub camera_on: bool,
    pub cameras: Vec<Camera>,
    pub fps: u32,
    pub live: bool,
    pub can_predict: bool,
    pub on_toggle: Callback<()>,
    pub on_camera: Callback<String>,
    /// The rear camera is in use (asked for).
    pub rear: bool,
    pub on_flip: Callback<()>,
    pub on_fps: Callback<u32>,
    pub on_live: Callback<bool>,
}

#[function_component(WebcamPanel)]
pub fn webcam_panel(props: &WebcamPanelProps) -> Html {
    let on_toggle = props.on_toggle.reform(|_: MouseEvent| ());
    let on_camera = props.on_camera.reform(|e: Event| e.target_unchecked_into::<HtmlSelectElement>().value());
    let on_flip = props.on_flip.reform(|_: MouseEvent| ());
    let on_fps = {
        let on_fps = props.on_fps.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Ok(fps) = input.value().parse::<u32>() {
                on_fps.emit(fps.clamp(1, 30));
            }
        })
    };
    let on_live = {
        let on_live = props.on_live.clone();
        let live = props.live;
        Callback::from(move |_: MouseEvent| on_live.emit(!live))
    };
    let lang = use_lang();
    html! {
        <section class="webcam" aria-label={ t!(lang, "webcam-label") }>
            <video ref={ props.video_ref.clone() } class={ classes!("preview", (!props.camera_on).then_some("off")) }
                autoplay=true playsinline=true muted=true data-testid="webcam-video" aria-label={ t!(lang, "webcam-video") } />
            <div class="webcam-controls">
                <button data-testid="camera-toggle" onclick={ on_toggle }>
                    { if props.camera_on { t!(lang, "camera-off") } else { t!(lang, "camera-on") } }
                </button>
                if props.camera_on {
                    <button data-testid="camera-facing" data-rear={ props.rear.to_string() } onclick={ on_flip }>
                        { if props.rear { t!(lang, "camera-front") } else { t!(lang, "camera-rear") } }
                    </button>
                }
                if props.cameras.len() > 1 {
                    <select data-testid="camera-select" aria-label={ t!(lang, "camera-label") } onchange={ on_camera }>
                        { for props.cameras.iter().map(|c| html! { <option value={ c.device_id.clone() }>{ &c.label }</option> }) }
                    </select>
                }
                <label class="setting">{ t!(lang, "fps-label") }
                    <input type="number" min="1" max="30" value={ props.fps.to_string() } data-testid="fps" onchange={ on_fps } />
                </label>
                <button data-testid="live-predict" disabled={ !props.camera_on || !props.can_predict } onclick={ on_live }>
                    { if props.live { t!(lang, "live-stop") } else { t!(lang, "live-start") } }
                </button>
            </div>
            if props.camera_on {
                <p class="hint">{ t!(lang, "record-hint") }</p>
            }
        </section>
    }
}
