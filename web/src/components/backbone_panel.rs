//! Which pretrained model: the backbone picker (download size, published ImageNet top-1, and the
//! time per image measured in this browser), the progress of embedding the stored images again
//! after a switch, and "Which model fits?": each backbone's LogME on the labelled samples, with
//! the suggestion to switch when another one scores clearly higher.

use std::collections::HashMap;

use graft::backbone::Architecture;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::i18n::{use_lang, Lang};
use crate::protocol::{BackboneOption, BackboneScore};
use crate::t;

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

fn option_label(lang: Lang, option: &BackboneOption, ms: Option<f64>) -> String {
    let speed = match ms {
        Some(ms) => t!(lang, "backbone-speed", millis = format!("{ms:.0}")),
        None => t!(lang, "backbone-speed-unknown"),
    };
    let megabytes = format!("{:.1}", option.weights_bytes as f64 / 1e6);
    let top1 = format!("{:.1}", option.imagenet_top1);
    t!(lang, "backbone-option", name = &option.name, megabytes = megabytes, top1 = top1, speed = speed)
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
    let lang = use_lang();
    html! {
        <section class="backbone-panel">
            <h2>{ t!(lang, "backbone-heading") }</h2>
            <p class="explain">{ t!(lang, "backbone-explain") }</p>
            <label>{ t!(lang, "backbone-label") }{ " " }
                <select data-testid="backbone-select" onchange={ on_change } disabled={ props.disabled }>
                    { for props.options.iter().map(|option| html! {
                        <option value={ option.architecture.id() } selected={ option.architecture == current }>
                            { option_label(lang, option, props.ms_per_image.get(&option.architecture).copied()) }
                        </option>
                    }) }
                </select>
            </label>
            if let Some((done, total)) = props.reembedding {
                <label class="reembed">{ t!(lang, "reembedding", done = done, total = total) }{ " " }
                    <progress data-testid="reembed-progress" max={ total.to_string() } value={ done.to_string() } />
                </label>
            }
            <div class="rank">
                <button data-testid="rank-backbones" onclick={ on_rank }
                    disabled={ props.disabled || props.ranking || props.samples < 2 }>{ t!(lang, "rank-button") }</button>
                if props.ranking {
                    <span class="busy" data-testid="ranking">{ t!(lang, "ranking") }</span>
                }
                { scores(lang, props, current) }
            </div>
        </section>
    }
}

fn scores(lang: Lang, props: &BackbonePanelProps, current: Architecture) -> Html {
    if props.scores.is_empty() {
        return html! {};
    }
    let suggested = suggestion(&props.scores, Some(current));
    let switch = suggested.map(|s| s.architecture);
    let on_switch = props.on_switch.reform(move |_: MouseEvent| switch.unwrap_or(Architecture::DEFAULT));
    html! {
        <>
            <p class="explain">{ t!(lang, "logme-explain") }</p>
            <ol class="scores">
                { for props.scores.iter().map(|score| html! {
                    <li data-testid="backbone-score" data-backbone={ score.architecture.id() }
                        data-score={ format!("{:.4}", score.logme) }>
                        { t!(lang, "backbone-score", name = display_name(score.architecture), logme = format!("{:.3}", score.logme),
                            images = score.images, seconds = format!("{:.1}", score.millis / 1000.0)) }
                    </li>
                }) }
            </ol>
            if let Some(best) = suggested {
                <p class="suggestion" data-testid="backbone-suggestion">
                    { t!(lang, "backbone-suggestion", best = display_name(best.architecture), current = display_name(current)) }{ " " }
                    <button data-testid="switch-suggested" onclick={ on_switch } disabled={ props.disabled }>
                        { t!(lang, "backbone-switch", name = display_name(best.architecture)) }</button>
                </p>
            } else {
                <p class="suggestion" data-testid="backbone-suggestion-none">
                    { t!(lang, "backbone-no-suggestion", name = display_name(current)) }</p>
            }
        </>
    }
}
