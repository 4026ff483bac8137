//! Model download progress, then which model is loaded and where it computes: the backend
//! badge (`WebGPU · <adapter>` or the CPU path, with the reason when the CPU runs although
//! WebGPU was wanted) and the backend choice.

use graft::exec::{BackendKind, BackendStatus};
use graft::gpu::BackendChoice;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::i18n::{use_lang, Lang};
use crate::state::ModelStatus;
use crate::t;

#[derive(Properties, PartialEq)]
pub struct ModelStatusProps {
    pub status: ModelStatus,
    pub backend: Option<BackendStatus>,
    pub choice: BackendChoice,
    pub on_choose: Callback<BackendChoice>,
    /// The last project is open (its samples and model are back): only then is the page ready.
    #[prop_or_default]
    pub project_open: bool,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// What each choice means, for the options' labels.
fn choice_label(lang: Lang, choice: BackendChoice) -> String {
    match choice {
        BackendChoice::Auto => t!(lang, "backend-auto"),
        BackendChoice::Cpu => t!(lang, "backend-cpu"),
        BackendChoice::Webgpu => t!(lang, "backend-webgpu"),
    }
}

#[function_component(BackendPicker)]
fn backend_picker(props: &ModelStatusProps) -> Html {
    let on_change = props.on_choose.reform(|e: Event| {
        let value = e.target_unchecked_into::<HtmlSelectElement>().value();
        BackendChoice::parse(&value).unwrap_or_default()
    });
    let busy = matches!(props.status, ModelStatus::Loading { .. });
    let lang = use_lang();
    html! {
        <label class="backend-choice">{ t!(lang, "backend-label") }{ " " }
            <select data-testid="backend-select" onchange={ on_change } disabled={ busy }>
                { for BackendChoice::ALL.into_iter().map(|choice| html! {
                    <option value={ choice.name() } selected={ choice == props.choice }>{ choice_label(lang, choice) }</option>
                }) }
            </select>
        </label>
    }
}

fn badge(lang: Lang, backend: &Option<BackendStatus>) -> Html {
    let Some(status) = backend else {
        return html! { <span class="backend" data-testid="backend" data-kind="none">{ t!(lang, "backend-starting") }</span> };
    };
    let kind = match status.kind {
        BackendKind::Cpu => "cpu",
        BackendKind::Webgpu => "webgpu",
    };
    html! {
        <>
            <span class="backend" data-testid="backend" data-kind={ kind } title={ t!(lang, "backend-title") }>
                { &status.description }
            </span>
            if let Some(reason) = &status.cpu_reason {
                <span class="backend-reason" data-testid="backend-reason">{ lang.text(&reason.user_message()) }</span>
            }
        </>
    }
}

#[function_component(ModelStatusBar)]
pub fn model_status_bar(props: &ModelStatusProps) -> Html {
    let picker = html! { <BackendPicker status={ props.status.clone() } backend={ props.backend.clone() }
    choice={ props.choice } on_choose={ props.on_choose.clone() } /> };
    let lang = use_lang();
    match &props.status {
        ModelStatus::Loading { loaded_bytes, total_bytes } => html! {
            <section class="model-status loading">
                <label for="load-progress">{ t!(lang, "model-loading") }{ " " }
                    <span class="bytes">{ format!("{} / {}", megabytes(*loaded_bytes), megabytes(*total_bytes)) }</span>
                </label>
                <progress id="load-progress" data-testid="load-progress"
                    max={ total_bytes.max(&1).to_string() } value={ loaded_bytes.to_string() }
                    data-loaded={ loaded_bytes.to_string() } data-total={ total_bytes.to_string() } />
                { badge(lang, &None) }
                { picker }
            </section>
        },
        ModelStatus::Ready { model_name, load_millis } => html! {
            <section class="model-status ready" data-ready={ props.project_open.to_string() }>
                <progress data-testid="load-progress" max="1" value="1" />
                <span class="model-name">{ model_name }</span>
                { badge(lang, &props.backend) }
                <span class="load-time">{ t!(lang, "model-ready-in", seconds = format!("{:.1}", load_millis / 1000.0)) }</span>
                { picker }
            </section>
        },
        ModelStatus::Failed { .. } => html! {
            <section class="model-status failed">
                <span class="backend" data-testid="backend">{ t!(lang, "model-none") }</span>
            </section>
        },
    }
}
