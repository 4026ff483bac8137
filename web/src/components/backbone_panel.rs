//! Which pretrained model: the backbone picker (download size, published ImageNet top-1, and the
//! time per image measured in this browser), the progress of embedding the stored images again
//! after a switch, and "Which model fits?": each backbone's LogME on the labelled samples, with
//! the suggestion to switch when another one scores clearly higher.

use std::collections::HashMap;

use graft::backbone::Architecture;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::protocol::{BackboneOption, BackboneScore};

/// How much higher another backbone's LogME must be for the page to suggest it. LogME is a
/// mean log evidence per sample and class; on the README's datasets the backbone with the
/// better accuracy led by 0.04 or more, and ties were within 0.01.
pub const CLEAR_MARGIN: f64 = 0.03;

#[derive(Properties, PartialEq)]
pub struct BackbonePanelProps {
    pub options: Vec<BackboneOption>,
    /// The loaded backbone.
    pub current: Option<Architecture>,
    pub ms_per_image: HashMap<Architecture, f64>,
    pub reembedding: Option<(usize, usize)>,
    pub ranking: bool,
    pub scores: Vec<BackboneScore>,
    /// Labelled samples (ranking needs two classes with samples).
    pub samples: usize,
    pub disabled: bool,
    pub on_switch: Callback<Architecture>,
    pub on_rank: Callback<()>,
}

fn option_label(option: &BackboneOption, ms: Option<f64>) -> String {
    let speed = match ms {
        Some(ms) => format!("{ms:.0} ms per image here"),
        None => "speed not measured yet".into(),
    };
    let megabytes = option.weights_bytes as f64 / 1e6;
    format!("{} · {megabytes:.1} MB · ImageNet top-1 {:.1}% · {speed}", option.name, option.imagenet_top1)
}

fn display_name(architecture: Architecture) -> &'static str {
    architecture.display_name()
}

/// The backbone to suggest: the best score when it is clearly above the loaded backbone's.
pub fn suggestion(scores: &[BackboneScore], current: Option<Architecture>) -> Option<&BackboneScore> {
    let best = scores.first()?;
    let loaded = scores.iter().find(|s| Some(s.architecture) == current)?;
    (best.architecture != loaded.architecture && best.logme - loaded.logme >= CLEAR_MARGIN).then_some(best)
}

#[function_component(BackbonePanel)]
pub fn backbone_panel(props: &BackbonePanelProps) -> Html {
    let on_change = props.on_switch.reform(|e: Event| {
        let value = e.target_unchecked_into::<HtmlSelectElement>().value();
        Architecture::from_id(&value).unwrap_or(Architecture::DEFAULT)
    });
    let on_rank = props.on_rank.reform(|_: MouseEvent| ());
    let current = props.current.unwrap_or(Architecture::DEFAULT);
    html! {
        <section class="backbone-panel">
            <h2>{ "Pretrained model" }</h2>
            <p class="explain">{ "The backbone turns each image into features. The closer the images it learned \
                from are to yours, the better what it learned transfers: try another one, or ask which fits." }</p>
            <label>{ "Backbone " }
                <select data-testid="backbone-select" onchange={ on_change } disabled={ props.disabled }>
                    { for props.options.iter().map(|option| html! {
                        <option value={ option.architecture.id() } selected={ option.architecture == current }>
                            { option_label(option, props.ms_per_image.get(&option.architecture).copied()) }
                        </option>
                    }) }
                </select>
            </label>
            if let Some((done, total)) = props.reembedding {
                <label class="reembed">{ format!("Embedding your images with the new backbone: {done} / {total} ") }
                    <progress data-testid="reembed-progress" max={ total.to_string() } value={ done.to_string() } />
                </label>
            }
            <div class="rank">
                <button data-testid="rank-backbones" onclick={ on_rank }
                    disabled={ props.disabled || props.ranking || props.samples < 2 }>{ "Which model fits?" }</button>
                if props.ranking {
                    <span class="busy" data-testid="ranking">{ "Scoring every backbone on your labelled images…" }</span>
                }
                { scores(props, current) }
            </div>
        </section>
    }
}

fn scores(props: &BackbonePanelProps, current: Architecture) -> Html {
    if props.scores.is_empty() {
        return html! {};
    }
    let suggested = suggestion(&props.scores, Some(current));
    let switch = suggested.map(|s| s.architecture);
    let on_switch = props.on_switch.reform(move |_: MouseEvent| switch.unwrap_or(Architecture::DEFAULT));
    html! {
        <>
            <p class="explain">{ "LogME (higher is better): how well a simple model on each backbone's features \
                can explain your labels, computed without training." }</p>
            <ol class="scores">
                { for props.scores.iter().map(|score| html! {
                    <li data-testid="backbone-score" data-backbone={ score.architecture.id() }
                        data-score={ format!("{:.4}", score.logme) }>
                        { format!("{}: LogME {:.3} ({} images, {:.1} s)", display_name(score.architecture), score.logme,
                            score.images, score.millis / 1000.0) }
                    </li>
                }) }
            </ol>
            if let Some(best) = suggested {
                <p class="suggestion" data-testid="backbone-suggestion">
                    { format!("{} fits your images clearly better than {}. ", display_name(best.architecture),
                        display_name(current)) }
                    <button data-testid="switch-suggested" onclick={ on_switch } disabled={ props.disabled }>
                        { format!("Switch to {}", display_name(best.architecture)) }</button>
                </p>
            } else {
                <p class="suggestion" data-testid="backbone-suggestion-none">
                    { format!("{} is as good a fit as any here.", display_name(current)) }</p>
            }
        </>
    }
}
