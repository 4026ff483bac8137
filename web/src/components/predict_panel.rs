//! Prediction with the trained head: classify an uploaded image; one confidence bar per class.

use web_sys::File;
use yew::prelude::*;

use crate::file_input::emit_first_file;
use crate::i18n::use_lang;
use crate::state::PredictionView;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct PredictPanelProps {
    pub class_names: Vec<String>,
    pub prediction: Option<PredictionView>,
    pub on_file: Callback<File>,
    pub ready: bool,
    pub stale: bool,
}

#[function_component(PredictPanel)]
pub fn predict_panel(props: &PredictPanelProps) -> Html {
    let input_ref = use_node_ref();
    let on_change = emit_first_file(&input_ref, &props.on_file);
    let lang = use_lang();
    html! {
        <section class="predict-panel">
            <h2>{ t!(lang, "predict-heading") }</h2>
            if props.stale {
                <p class="stale">{ t!(lang, "predict-stale") }</p>
            }
            <label class="upload">
                <input ref={ input_ref } type="file" accept="image/*" data-testid="predict-upload"
                    disabled={ !props.ready } onchange={ on_change } />
                <span>{ if props.ready { t!(lang, "predict-upload") } else { t!(lang, "predict-train-first") } }</span>
            </label>
            if let Some(p) = &props.prediction {
                <p class="timing" data-testid="prediction-source">
                    { if p.label == "webcam" {
                        t!(lang, "predict-webcam-rate", fps = format!("{:.1}", 1000.0 / p.millis.max(1.0)))
                    } else {
                        t!(lang, "predict-file-time", file = &p.label, millis = format!("{:.0}", p.millis))
                    } }
                </p>
                <ul class="bars">
                    { for props.class_names.iter().zip(&p.probs).map(|(name, prob)| html! {
                        <li data-testid="prediction" data-class-name={ name.clone() } data-prob={ prob.to_string() }>
                            <span class="label">{ name }</span>
                            <span class="bar"><span style={ format!("width: {:.1}%", prob * 100.0) } /></span>
                            <span class="prob">{ format!("{:.0}%", prob * 100.0) }</span>
                        </li>
                    }) }
                </ul>
            }
        </section>
    }
}
