//! The ranked classes of the last classified image, with probability bars.

use graft::classify::Prediction;
use yew::prelude::*;

use crate::i18n::use_lang;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct TopPredictionsProps {
    pub file_name: AttrValue,
    pub top5: Vec<Prediction>,
    pub millis: f64,
}

#[function_component(TopPredictions)]
pub fn top_predictions(props: &TopPredictionsProps) -> Html {
    let lang = use_lang();
    html! {
        <section class="predictions">
            <h2>{ t!(lang, "top5-heading") }{ " " }<em>{ &props.file_name }</em></h2>
            <ol data-testid="top5">
                { for props.top5.iter().map(|p| html! {
                    <li data-label={ p.label.clone() } data-prob={ p.prob.to_string() }>
                        <span class="label">{ &p.label }</span>
                        <span class="bar"><span style={ format!("width: {:.1}%", p.prob * 100.0) } /></span>
                        <span class="prob">{ format!("{:.1}%", p.prob * 100.0) }</span>
                    </li>
                }) }
            </ol>
            <p class="timing">{ t!(lang, "top5-time", millis = format!("{:.0}", props.millis)) }</p>
        </section>
    }
}
