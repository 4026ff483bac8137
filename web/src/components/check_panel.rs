//! The check set of domain adaptation: per class, labelled images of the new domain that no
//! run trains on, and the last runs' accuracy on them with adaptation and without, so that
//! the benefit of adapting is measured rather than assumed.

use graft::project::{CheckScore, CheckScores};
use web_sys::File;
use yew::prelude::*;

use crate::file_input::take_files;
use crate::i18n::{use_lang, Lang};
use crate::t;

/// One class's check bin as the panel shows it.
#[derive(Clone, PartialEq)]
pub struct CheckRow {
    pub bin_id: u64,
    pub class_name: String,
    pub images: usize,
    /// Images still being embedded.
    pub pending: usize,
}

#[derive(Properties, PartialEq)]
pub struct CheckPanelProps {
    pub rows: Vec<CheckRow>,
    pub scores: CheckScores,
    /// Whether the next run adapts (for the hint on how to compare).
    pub adapting: bool,
    pub on_files: Callback<(u64, Vec<File>)>,
    pub disabled: bool,
}

#[function_component(CheckPanel)]
pub fn check_panel(props: &CheckPanelProps) -> Html {
    let images: usize = props.rows.iter().map(|r| r.images).sum();
    let lang = use_lang();
    html! {
        <section class="check-set" data-testid="check-set">
            <h3>{ t!(lang, "check-heading") }</h3>
            <p class="explain">{ t!(lang, "check-explain") }</p>
            <ul class="check-rows">
                { for props.rows.iter().map(|row| html! {
                    <CheckRowView key={ row.bin_id } row={ row.clone() } on_files={ props.on_files.clone() }
                        disabled={ props.disabled } />
                }) }
            </ul>
            if images > 0 {
                { scores_view(lang, &props.scores, props.adapting) }
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct CheckRowProps {
    row: CheckRow,
    on_files: Callback<(u64, Vec<File>)>,
    disabled: bool,
}

#[function_component(CheckRowView)]
fn check_row_view(props: &CheckRowProps) -> Html {
    let upload = use_node_ref();
    let row = &props.row;
    let on_change = {
        let (upload, on_files, bin_id) = (upload.clone(), props.on_files.clone(), row.bin_id);
        Callback::from(move |_: Event| on_files.emit((bin_id, take_files(&upload))))
    };
    let lang = use_lang();
    let label = t!(lang, "check-upload-label", name = &row.class_name);
    html! {
        <li>
            <span class="check-class">{ &row.class_name }</span>
            <span class="count"><span data-testid="check-count">{ row.images }</span>{ " " }{ t!(lang, "images-unit", count = row.images) }</span>
            if row.pending > 0 { <span class="pending">{ t!(lang, "samples-embedding", pending = row.pending) }</span> }
            <label class="upload">
                <input type="file" accept="image/*" multiple=true ref={ upload } data-testid="check-upload"
                    aria-label={ label } disabled={ props.disabled } onchange={ on_change } />
                <span>{ t!(lang, "check-add") }</span>
            </label>
        </li>
    }
}

/// The accuracies with and without adaptation, and how to get the one that is missing.
fn scores_view(lang: Lang, scores: &CheckScores, adapting: bool) -> Html {
    let shown = |score: Option<CheckScore>, testid: &'static str| match score {
        Some(s) => html! { <strong data-testid={ testid }>{ format!("{:.0}%", 100.0 * s.accuracy) }</strong> },
        None => html! { <span class="muted" data-testid={ testid }>{ t!(lang, "check-not-measured") }</span> },
    };
    let hint = match (scores.adapted, scores.source_only) {
        (None, None) => Some(t!(lang, "check-train-to-measure")),
        (None, Some(_)) if !adapting => Some(t!(lang, "check-turn-on")),
        (Some(_), None) if adapting => Some(t!(lang, "check-turn-off")),
        _ => None,
    };
    let verdict = match (scores.adapted, scores.source_only) {
        (Some(a), Some(s)) if a.accuracy > s.accuracy => Some(t!(lang, "check-helps")),
        (Some(a), Some(s)) if a.accuracy < s.accuracy => Some(t!(lang, "check-hurts")),
        (Some(_), Some(_)) => Some(t!(lang, "check-same")),
        _ => None,
    };
    html! {
        <div class="check-scores" data-testid="check-accuracy" aria-live="polite">
            <p>
                { t!(lang, "check-with") }{ " " }{ shown(scores.adapted, "check-adapted") }
                { t!(lang, "check-without") }{ shown(scores.source_only, "check-source-only") }
            </p>
            if let Some(verdict) = verdict { <p data-testid="check-verdict">{ verdict }</p> }
            if let Some(hint) = hint { <p class="hint" data-testid="check-hint">{ hint }</p> }
        </div>
    }
}
